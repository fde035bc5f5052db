#ifndef IMBRIDGE_BRIDGE_EVENT_VALIDATION_H_
#define IMBRIDGE_BRIDGE_EVENT_VALIDATION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

// Checks a published event before the router commits it: it has a key, a
// channel with platform and account (and chat_id unless it is presence), a
// kind, and a message_id for message events; and its rich text is sound:
// valid UTF-8, each span's offset and offset + length within the text and on
// UTF-8 character boundaries (offsets count bytes of UTF-8, see
// events.proto). Returns OK or kInvalidArgument whose message says what is
// wrong, for the publisher's PublishAck (REJECTED). Pure; thread-safe.
absl::Status ValidateEvent(const v1::Event& event);

// The rich-text part of ValidateEvent for one RichText; `field` names it in
// the message ("posted.text").
absl::Status ValidateRichText(const v1::RichText& text,
                              absl::string_view field);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_EVENT_VALIDATION_H_
