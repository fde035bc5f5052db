// Fuzzes Bitrix24's BB-code reader (BbCodeToRichText) on any bytes.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "adapters/bitrix24/format.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imbridge::v1::RichText text = imbridge::adapters::bitrix24::BbCodeToRichText(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  imbridge::fuzz::CheckSpansInRange(text, "BbCodeToRichText");
  return 0;
}
