#include "common/utf8.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace imbridge {

bool IsValidUtf8(absl::string_view text, size_t* error_offset) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    uint8_t c = static_cast<uint8_t>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Length of the sequence and the allowed range of its second byte
    // (which rules out overlong forms, surrogates and > U+10FFFF).
    size_t length = 0;
    uint8_t low = 0x80;
    uint8_t high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    }
    bool ok = length != 0 && n - i >= length;
    for (size_t k = 1; ok && k < length; ++k) {
      uint8_t b = static_cast<uint8_t>(text[i + k]);
      ok = k == 1 ? (b >= low && b <= high) : (b & 0xC0) == 0x80;
    }
    if (!ok) {
      if (error_offset != nullptr) *error_offset = i;
      return false;
    }
    i += length;
  }
  return true;
}

bool IsUtf8Boundary(absl::string_view text, size_t offset) {
  if (offset == text.size()) return true;
  if (offset > text.size()) return false;
  return (static_cast<uint8_t>(text[offset]) & 0xC0) != 0x80;
}

std::string ToValidUtf8(absl::string_view text) {
  std::string out;
  size_t bad = 0;
  while (!IsValidUtf8(text, &bad)) {
    out.append(text.data(), bad);
    out.append("\xEF\xBF\xBD");  // U+FFFD
    // Skip the lead byte and any continuation bytes after it.
    size_t skip = 1;
    while (bad + skip < text.size() &&
           (static_cast<uint8_t>(text[bad + skip]) & 0xC0) == 0x80) {
      ++skip;
    }
    text.remove_prefix(bad + skip);
  }
  out.append(text.data(), text.size());
  return out;
}

std::string FindInvalidUtf8Field(const google::protobuf::Message& message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          if (!IsValidUtf8(reflection->GetRepeatedString(message, field, i))) {
            return absl::StrCat(field->name(), "[", i, "]");
          }
        }
      } else if (!IsValidUtf8(reflection->GetString(message, field))) {
        return field->name();
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          std::string inner = FindInvalidUtf8Field(
              reflection->GetRepeatedMessage(message, field, i));
          if (!inner.empty()) {
            return absl::StrCat(field->name(), "[", i, "].", inner);
          }
        }
      } else {
        std::string inner =
            FindInvalidUtf8Field(reflection->GetMessage(message, field));
        if (!inner.empty()) return absl::StrCat(field->name(), ".", inner);
      }
    }
  }
  return "";
}

}  // namespace imbridge
