// Fuzzes the Markdown reader shared by TeamSpirit and the webhook adapter
// (markup::MarkdownToRichText), and TeamSpirit's message splitting
// (SplitMessage) of the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/teamspirit/format.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  imbridge::v1::RichText text =
      imbridge::adapters::markup::MarkdownToRichText(input);
  imbridge::fuzz::CheckSpansInRange(text, "MarkdownToRichText");

  namespace teamspirit = imbridge::adapters::teamspirit;
  const size_t limit = 1 + size % 97;
  std::vector<std::string> pieces = teamspirit::SplitMessage(input, limit);
  imbridge::fuzz::Check(!pieces.empty(), "SplitMessage returns a piece");
  for (const std::string& piece : pieces) {
    imbridge::fuzz::Check(teamspirit::CountCharacters(piece) <= limit,
                          "SplitMessage: piece over the limit");
  }
  return 0;
}
