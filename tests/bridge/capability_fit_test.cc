#include "bridge/capability_fit.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

constexpr TargetCapabilities kEverything{true, true};
constexpr TargetCapabilities kNoFiles{false, true};
constexpr TargetCapabilities kNoThreads{true, false};

v1::Delivery PostedWithFiles(const std::string& text) {
  v1::Delivery d;
  d.set_id(7);
  v1::MessagePosted* posted = d.mutable_event()->mutable_posted();
  posted->set_message_id("m1");
  posted->mutable_text()->set_text(text);
  v1::Span* bold = posted->mutable_text()->add_spans();
  bold->set_kind(v1::Span::BOLD);
  bold->set_offset(0);
  bold->set_length(static_cast<uint32_t>(text.size()));
  v1::Attachment* report = posted->add_attachments();
  report->set_blob_id("abc");
  report->set_name("report.pdf");
  report->set_size(2202010);  // 2.1 MB
  v1::Attachment* photo = posted->add_attachments();
  photo->set_blob_id("def");
  photo->set_name("photo.jpg");
  photo->set_size(14 * 1024);
  photo->set_kind(v1::Attachment::IMAGE);
  return d;
}

TEST(FitToTargetTest, FilesBecomeANoticeWithNameAndSize) {
  v1::Delivery d = PostedWithFiles("see these");
  FitToTarget(kNoFiles, &d);
  const v1::MessagePosted& posted = d.event().posted();
  EXPECT_EQ(posted.text().text(),
            "see these\n\xF0\x9F\x93\x8E report.pdf (2.1 MB)\n"
            "\xF0\x9F\x93\x8E photo.jpg (14 KB)");
  EXPECT_EQ(posted.attachments_size(), 0);
  // The text's own spans are untouched.
  ASSERT_EQ(posted.text().spans_size(), 1);
  EXPECT_EQ(posted.text().spans(0).length(), 9u);
}

TEST(FitToTargetTest, AFileAloneIsJustTheNotice) {
  v1::Delivery d = PostedWithFiles("");
  d.mutable_event()->mutable_posted()->mutable_attachments()->RemoveLast();
  v1::Attachment* unknown =
      d.mutable_event()->mutable_posted()->add_attachments();
  unknown->set_unavailable_reason("over the download limit");
  FitToTarget(kNoFiles, &d);
  EXPECT_EQ(d.event().posted().text().text(),
            "\xF0\x9F\x93\x8E report.pdf (2.1 MB)\n\xF0\x9F\x93\x8E file");
}

TEST(FitToTargetTest, ATargetWithFilesGetsThem) {
  v1::Delivery d = PostedWithFiles("see these");
  v1::Delivery before = d;
  FitToTarget(kEverything, &d);
  EXPECT_EQ(d.SerializeAsString(), before.SerializeAsString());
  FitToTarget(kNoThreads, &d);
  EXPECT_EQ(d.event().posted().attachments_size(), 2);
}

TEST(FitToTargetTest, AThreadMessageBecomesAPlainReplyToTheRoot) {
  v1::Delivery d;
  d.mutable_event()->mutable_posted()->set_message_id("m2");
  d.mutable_event()->mutable_posted()->set_thread_root_id("origin-root");
  d.set_thread_root_target_id("target-root");
  FitToTarget(kNoThreads, &d);
  EXPECT_EQ(d.thread_root_target_id(), "");
  EXPECT_EQ(d.reply_to_target_id(), "target-root");

  // A reply inside a thread stays a reply to its own message.
  v1::Delivery reply;
  reply.mutable_event()->mutable_posted()->set_message_id("m3");
  reply.set_thread_root_target_id("target-root");
  reply.set_reply_to_target_id("target-m2");
  FitToTarget(kNoThreads, &reply);
  EXPECT_EQ(reply.thread_root_target_id(), "");
  EXPECT_EQ(reply.reply_to_target_id(), "target-m2");

  // A target with threads keeps the thread.
  v1::Delivery threaded;
  threaded.mutable_event()->mutable_posted()->set_message_id("m4");
  threaded.set_thread_root_target_id("target-root");
  FitToTarget(kEverything, &threaded);
  EXPECT_EQ(threaded.thread_root_target_id(), "target-root");
  EXPECT_EQ(threaded.reply_to_target_id(), "");
}

TEST(FitToTargetTest, OtherKindsAreLeftAlone) {
  v1::Delivery edit;
  edit.mutable_event()->mutable_edited()->set_message_id("m1");
  edit.mutable_event()->mutable_edited()->mutable_text()->set_text("x");
  edit.set_thread_root_target_id("root");
  v1::Delivery before = edit;
  FitToTarget({false, false}, &edit);
  EXPECT_EQ(edit.SerializeAsString(), before.SerializeAsString());
}

}  // namespace
}  // namespace imbridge::bridge
