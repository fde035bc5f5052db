#include "bridge/event_validation.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace imbridge::bridge {
namespace {

std::string SpanName(const v1::RichText& text, int index) {
  return absl::StrCat("span ", index, " (",
                      v1::Span::Kind_Name(text.spans(index).kind()), ")");
}

}  // namespace

absl::Status ValidateRichText(const v1::RichText& text,
                              absl::string_view field) {
  const std::string& s = text.text();
  size_t bad = 0;
  if (!IsValidUtf8(s, &bad)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is not valid UTF-8 (bad byte sequence at byte ", bad, ")"));
  }
  for (int i = 0; i < text.spans_size(); ++i) {
    const v1::Span& span = text.spans(i);
    uint64_t start = span.offset();
    uint64_t end = start + span.length();
    if (end > s.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", SpanName(text, i), " covers bytes ", start,
                       "..", end, " but the text has ", s.size(),
                       " bytes (offsets count bytes of "
                       "UTF-8)"));
    }
    if (!IsUtf8Boundary(s, start) || !IsUtf8Boundary(s, end)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " ", SpanName(text, i), " ",
          IsUtf8Boundary(s, start) ? "ends" : "starts", " at byte ",
          IsUtf8Boundary(s, start) ? end : start,
          ", inside a UTF-8 character (offsets count bytes of UTF-8 and must "
          "fall between characters)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateEvent(const v1::Event& e) {
  if (e.key().empty()) return absl::InvalidArgumentError("event key is empty");
  if (e.channel().platform().empty() || e.channel().account().empty()) {
    return absl::InvalidArgumentError(
        "event channel has no platform or account");
  }
  if (e.kind_case() == v1::Event::KIND_NOT_SET) {
    return absl::InvalidArgumentError("event has no kind");
  }
  if (e.kind_case() != v1::Event::kPresence && e.channel().chat_id().empty()) {
    return absl::InvalidArgumentError("event channel has no chat_id");
  }
  switch (e.kind_case()) {
    case v1::Event::kPosted:
      if (e.posted().message_id().empty()) break;
      return ValidateRichText(e.posted().text(), "posted.text");
    case v1::Event::kEdited:
      if (e.edited().message_id().empty()) break;
      return ValidateRichText(e.edited().text(), "edited.text");
    case v1::Event::kDeleted:
      if (e.deleted().message_id().empty()) break;
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("message event has no message_id");
}

}  // namespace imbridge::bridge
