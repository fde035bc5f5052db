#ifndef IMBRIDGE_ADAPTERS_COMMON_ATTACHMENT_KIND_H_
#define IMBRIDGE_ADAPTERS_COMMON_ATTACHMENT_KIND_H_

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters {

// The attachment kind a file of MIME type `mime_type` is shown as, for
// messengers that describe a file by its MIME type only (Slack, TeamSpirit):
// "image/gif" -> ANIMATION, "image/*" -> IMAGE, "video/*" -> VIDEO,
// "audio/*" -> AUDIO, anything else (empty, unknown, malformed) -> FILE.
// Case-insensitive; parameters ("; charset=...") are ignored. Pure;
// thread-safe.
v1::Attachment::Kind AttachmentKindForMime(absl::string_view mime_type);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_ATTACHMENT_KIND_H_
