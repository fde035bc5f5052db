#ifndef IMBRIDGE_COMMON_UTF8_H_
#define IMBRIDGE_COMMON_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace imbridge {

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). When it is not and `error_offset` is
// not null, sets it to the byte offset of the first bad sequence.
bool IsValidUtf8(absl::string_view text, size_t* error_offset = nullptr);

// Whether byte offset `offset` of UTF-8 `text` falls between two characters:
// 0, text.size(), or an offset whose byte is not a continuation byte. False
// past the end.
bool IsUtf8Boundary(absl::string_view text, size_t offset);

// `text` with each bad byte sequence (see IsValidUtf8) replaced by U+FFFD,
// for text that must go out as UTF-8 whatever came in (error messages).
std::string ToValidUtf8(absl::string_view text);

// The dotted path of the first string field of `message`, searched
// recursively in field-number order, that is not valid UTF-8
// ("posted.text.text", "attachments[2].name"); empty when there is none.
// protobuf refuses to parse such a message, so a peer would reject the
// whole frame that carries it.
std::string FindInvalidUtf8Field(const google::protobuf::Message& message);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_UTF8_H_
