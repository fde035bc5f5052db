#include "bridge/event_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

using ::testing::HasSubstr;

// "a é 📎": bytes a(0) space(1) é(2-3) space(4) 📎(5-8), 9 bytes.
const char kText[] = "a \xC3\xA9 \xF0\x9F\x93\x8E";

v1::Event Posted(const std::string& text) {
  v1::Event e;
  e.set_key("slack:main:C1:1");
  e.mutable_channel()->set_platform("slack");
  e.mutable_channel()->set_account("main");
  e.mutable_channel()->set_chat_id("C1");
  e.mutable_posted()->set_message_id("1");
  e.mutable_posted()->mutable_text()->set_text(text);
  return e;
}

void AddSpan(v1::RichText* text, v1::Span::Kind kind, uint32_t offset,
             uint32_t length) {
  v1::Span* span = text->add_spans();
  span->set_kind(kind);
  span->set_offset(offset);
  span->set_length(length);
}

TEST(ValidateEventTest, AcceptsSpansOnCharacterBoundaries) {
  v1::Event e = Posted(kText);
  v1::RichText* text = e.mutable_posted()->mutable_text();
  AddSpan(text, v1::Span::BOLD, 2, 2);    // é
  AddSpan(text, v1::Span::ITALIC, 5, 4);  // 📎, up to the end
  AddSpan(text, v1::Span::CODE, 0, 9);    // everything
  AddSpan(text, v1::Span::LINK, 9, 0);    // empty, at the end
  EXPECT_TRUE(ValidateEvent(e).ok()) << ValidateEvent(e);
}

TEST(ValidateEventTest, RejectsASpanInsideACharacter) {
  v1::Event starts = Posted(kText);
  AddSpan(starts.mutable_posted()->mutable_text(), v1::Span::BOLD, 3, 1);
  absl::Status s = ValidateEvent(starts);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("posted.text span 0 (BOLD) starts at "
                                     "byte 3, inside a UTF-8 character"));

  v1::Event ends = Posted(kText);
  v1::RichText* text = ends.mutable_posted()->mutable_text();
  AddSpan(text, v1::Span::BOLD, 0, 1);
  AddSpan(text, v1::Span::STRIKE, 5, 2);
  s = ValidateEvent(ends);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("span 1 (STRIKE) ends at byte 7"));
}

TEST(ValidateEventTest, RejectsASpanOutOfRange) {
  v1::Event e = Posted(kText);
  AddSpan(e.mutable_posted()->mutable_text(), v1::Span::LINK, 5, 5);
  absl::Status s = ValidateEvent(e);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("span 0 (LINK) covers bytes 5..10 but "
                                     "the text has 9 bytes"));

  // offset + length does not wrap around.
  v1::Event huge = Posted(kText);
  AddSpan(huge.mutable_posted()->mutable_text(), v1::Span::BOLD, 0xFFFFFFFFu,
          2);
  EXPECT_EQ(ValidateEvent(huge).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateEventTest, RejectsTextThatIsNotUtf8) {
  v1::Event e = Posted(std::string("ok \xC3(", 5));
  absl::Status s = ValidateEvent(e);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("posted.text is not valid UTF-8 (bad byte sequence "
                        "at byte 3)"));
}

TEST(ValidateEventTest, ChecksEditedTextToo) {
  v1::Event e = Posted("");
  e.mutable_edited()->set_message_id("1");
  e.mutable_edited()->mutable_text()->set_text(kText);
  AddSpan(e.mutable_edited()->mutable_text(), v1::Span::BOLD, 6, 1);
  absl::Status s = ValidateEvent(e);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("edited.text span 0"));
}

TEST(ValidateEventTest, KeepsTheEnvelopeChecks) {
  v1::Event no_key = Posted("x");
  no_key.clear_key();
  EXPECT_THAT(ValidateEvent(no_key).message(), HasSubstr("key is empty"));
  v1::Event no_chat = Posted("x");
  no_chat.mutable_channel()->clear_chat_id();
  EXPECT_THAT(ValidateEvent(no_chat).message(), HasSubstr("no chat_id"));
  v1::Event no_id = Posted("x");
  no_id.mutable_posted()->clear_message_id();
  EXPECT_THAT(ValidateEvent(no_id).message(), HasSubstr("no message_id"));
  v1::Event deleted = Posted("x");
  deleted.mutable_deleted();
  EXPECT_THAT(ValidateEvent(deleted).message(), HasSubstr("no message_id"));
  v1::Event presence = Posted("x");
  presence.mutable_channel()->clear_chat_id();
  presence.mutable_presence()->set_presence(v1::ONLINE);
  EXPECT_TRUE(ValidateEvent(presence).ok());
  v1::Event none = Posted("x");
  none.clear_posted();
  EXPECT_THAT(ValidateEvent(none).message(), HasSubstr("no kind"));
}

}  // namespace
}  // namespace imbridge::bridge
