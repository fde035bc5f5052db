#include "adapters/common/attachment_kind.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace imbridge::adapters {

v1::Attachment::Kind AttachmentKindForMime(absl::string_view mime_type) {
  std::string type = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(mime_type.substr(0, mime_type.find(';'))));
  if (type == "image/gif") return v1::Attachment::ANIMATION;
  if (absl::StartsWith(type, "image/")) return v1::Attachment::IMAGE;
  if (absl::StartsWith(type, "video/")) return v1::Attachment::VIDEO;
  if (absl::StartsWith(type, "audio/")) return v1::Attachment::AUDIO;
  return v1::Attachment::FILE;
}

}  // namespace imbridge::adapters
