// Fuzzes Slack mrkdwn parsing (markup::MrkdwnToRichText), as it arrives in
// Slack events and in the webhook adapter's Slack-compatible payloads.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "adapters/common/markup/slack_mrkdwn.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  imbridge::adapters::markup::UserNameResolver resolve =
      [](absl::string_view id) { return std::string(id.substr(0, 3)); };
  for (bool styles : {true, false}) {
    imbridge::v1::RichText text =
        imbridge::adapters::markup::MrkdwnToRichText(input, resolve, styles);
    imbridge::fuzz::CheckSpansInRange(text, "MrkdwnToRichText");
  }
  return 0;
}
