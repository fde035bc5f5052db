// Fuzzes Bitrix24's webhook bodies: application/x-www-form-urlencoded with
// PHP-style nested keys (ParsePhpForm), then the message text of an event
// as BB-code (BbCodeToRichText), as the webhook handler and the event
// conversion read them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/bitrix24/format.h"
#include "common/http/php_form.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace bitrix24 = imbridge::adapters::bitrix24;
  absl::StatusOr<nlohmann::json> form = imbridge::ParsePhpForm(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!form.ok()) return 0;
  imbridge::fuzz::Check(form->is_object(), "a form is an object");
  // The event conversion reads data[message][text] as BB-code.
  const nlohmann::json* node = &*form;
  for (const char* key : {"data", "message", "text"}) {
    if (!node->is_object() || !node->contains(key)) return 0;
    node = &(*node)[key];
  }
  if (!node->is_string()) return 0;
  imbridge::fuzz::CheckSpansInRange(
      bitrix24::BbCodeToRichText(node->get<std::string>()), "BbCodeToRichText");
  return 0;
}
