// A link request's member thread roots (router.proto MemberThreadRoot)
// resolved against a real SQLite store: the copy's native id when the copy
// exists, a pending thread root (the message's event id) while its delivery
// is pending, FAILED_PRECONDITION once it is dead-lettered, NOT_FOUND for a
// message the map does not know, the whole chat for an adapter without
// threads, INVALID_ARGUMENT for bad requests.

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bridge/adapter_links.h"
#include "bridge/sqlite_store.h"
#include "bridge/store.h"
#include "bridge/thread_roots.h"
#include "gtest/gtest.h"
#include "tests/bridge/visitor_link_request.h"

namespace imbridge::bridge {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

v1::ChannelRef Chat(const std::string& platform, const std::string& chat) {
  v1::ChannelRef channel;
  channel.set_platform(platform);
  channel.set_account("main");
  channel.set_chat_id(chat);
  return channel;
}

class MemberThreadRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/imbridge_thread_roots_",
                        getpid(), "_", info->name());
    std::filesystem::remove_all(dir_);
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore(dir_ + "/data", v1::FULL);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    lookup_.store = store_.get();
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Commits the notice "n-1" posted in chatlio/main/notices with a delivery
  // to teamspirit/main/c42; returns the delivery's id.
  int64_t PublishNotice() {
    auto event = std::make_shared<v1::Event>();
    event->set_key("chatlio:main:u-1:new-conversation");
    *event->mutable_channel() = Chat("chatlio", "notices");
    event->set_occurred_at_ms(absl::ToUnixMillis(kT0));
    event->mutable_posted()->set_message_id("n-1");
    event->mutable_posted()->mutable_text()->set_text("New conversation");
    NewEvent entry;
    entry.event = event;
    entry.original_chat_key = ChannelKey(event->channel(), false);
    entry.original_message_id = "n-1";
    DeliveryRecord delivery;
    delivery.target = Chat("teamspirit", "c42");
    delivery.target_key = ChannelKey(delivery.target, true);
    delivery.link = "notices";
    delivery.sender_name = "Chatlio";
    delivery.created_at = kT0;
    delivery.next_attempt_at = kT0;
    entry.deliveries.push_back(delivery);
    CommitBatch batch;
    batch.now = kT0;
    batch.events.push_back(std::move(entry));
    EXPECT_TRUE(store_->Apply(batch).ok());
    group_ = batch.events[0].id;
    return batch.events[0].deliveries[0].id;
  }

  // Records the copy "m-77" of the notice in c42 and completes `delivery`
  // (one commit, as the committer does).
  void CompleteWithCopy(int64_t delivery) {
    CommitBatch batch;
    batch.now = kT0;
    MessageRows rows;
    rows.group_id = group_;
    rows.channel_key = ChannelKey(Chat("teamspirit", "c42"), false);
    rows.native_ids = {"m-77", "m-78"};
    rows.is_copy = true;
    batch.messages.push_back(rows);
    batch.completed.push_back(delivery);
    ASSERT_TRUE(store_->Apply(batch).ok());
  }

  // A create of {slack C1, teamspirit c42, chatlio conversation:u-1} with
  // member 1 narrowed to the thread of the notice's copy.
  static v1::LinkRequest Request(const std::string& message_id = "n-1") {
    return VisitorLinkRequest(message_id);
  }

  absl::StatusOr<v1::Link> Resolve(const v1::LinkRequest& request) {
    v1::Link link = request.create();
    absl::Status s = ResolveMemberThreadRoots(lookup_, request, &link);
    if (!s.ok()) return s;
    return link;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  ThreadRootLookup lookup_;
  int64_t group_ = 0;
};

TEST_F(MemberThreadRootsTest, TheCopysIdOnceItExistsAPendingRootBefore) {
  const int64_t delivery = PublishNotice();
  absl::StatusOr<v1::Link> pending = Resolve(Request());
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->members(1).thread_id(), "");
  EXPECT_EQ(pending->members(1).pending_thread_root(), group_);
  EXPECT_EQ(pending->members(0).pending_thread_root(), 0);

  CompleteWithCopy(delivery);
  absl::StatusOr<v1::Link> link = Resolve(Request());
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->members(1).thread_id(), "m-77");
  EXPECT_EQ(link->members(1).pending_thread_root(), 0);
  EXPECT_EQ(link->members(0).thread_id(), "");
  EXPECT_EQ(link->members(2).thread_id(), "");
}

TEST_F(MemberThreadRootsTest, AnUnknownMessageIsNotFound) {
  PublishNotice();
  absl::StatusOr<v1::Link> link = Resolve(Request("n-unknown"));
  EXPECT_TRUE(absl::IsNotFound(link.status())) << link.status();
}

TEST_F(MemberThreadRootsTest, ADeadLetteredCopyIsAFailedPrecondition) {
  const int64_t delivery = PublishNotice();
  CommitBatch batch;
  batch.now = kT0;
  batch.dead_letters.push_back({delivery, "chat_not_found"});
  ASSERT_TRUE(store_->Apply(batch).ok());
  absl::StatusOr<v1::Link> link = Resolve(Request());
  EXPECT_TRUE(absl::IsFailedPrecondition(link.status())) << link.status();
}

TEST_F(MemberThreadRootsTest,
       AChatTheMessageWasNotRoutedToIsAFailedPrecondition) {
  PublishNotice();
  v1::LinkRequest request = Request();
  request.mutable_create()->mutable_members(1)->set_chat_id("c-other");
  absl::StatusOr<v1::Link> link = Resolve(request);
  EXPECT_TRUE(absl::IsFailedPrecondition(link.status())) << link.status();
}

TEST_F(MemberThreadRootsTest, AnAdapterWithoutThreadsKeepsTheWholeChat) {
  CompleteWithCopy(PublishNotice());
  lookup_.member_threads = [](const v1::LinkMember& m) -> std::optional<bool> {
    return m.platform() != "teamspirit";
  };
  absl::StatusOr<v1::Link> link = Resolve(Request());
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->members(1).thread_id(), "");

  // No adapter of the chat attached: taken as threading.
  lookup_.member_threads = [](const v1::LinkMember&) -> std::optional<bool> {
    return std::nullopt;
  };
  link = Resolve(Request());
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->members(1).thread_id(), "m-77");
}

TEST_F(MemberThreadRootsTest, BadRequestsAreInvalidArguments) {
  CompleteWithCopy(PublishNotice());
  v1::LinkRequest out_of_range = Request();
  out_of_range.mutable_member_thread_roots(0)->set_member(3);
  EXPECT_TRUE(absl::IsInvalidArgument(Resolve(out_of_range).status()));

  v1::LinkRequest threaded = Request();
  threaded.mutable_create()->mutable_members(1)->set_thread_id("t-1");
  EXPECT_TRUE(absl::IsInvalidArgument(Resolve(threaded).status()));

  v1::LinkRequest pending = Request();
  pending.mutable_create()->mutable_members(1)->set_pending_thread_root(9);
  EXPECT_TRUE(absl::IsInvalidArgument(Resolve(pending).status()));

  v1::LinkRequest no_origin = Request();
  no_origin.mutable_member_thread_roots(0)->clear_origin();
  EXPECT_TRUE(absl::IsInvalidArgument(Resolve(no_origin).status()));

  v1::LinkRequest deletes;
  deletes.set_delete_name("chatlio-u-1");
  *deletes.add_member_thread_roots() = Request().member_thread_roots(0);
  v1::Link ignored;
  EXPECT_TRUE(absl::IsInvalidArgument(
      ResolveMemberThreadRoots(lookup_, deletes, &ignored)));
}

TEST_F(MemberThreadRootsTest, WithoutAStoreRootsAreUnimplemented) {
  CompleteWithCopy(PublishNotice());
  lookup_.store = nullptr;
  EXPECT_TRUE(absl::IsUnimplemented(Resolve(Request()).status()));
  // A request without roots needs no store.
  v1::LinkRequest plain = Request();
  plain.clear_member_thread_roots();
  EXPECT_TRUE(Resolve(plain).ok());
}

TEST(ParkedQueueTest, KeysNameTheRootAndTheChat) {
  const std::string key = ParkedQueueKey(17, "teamspirit/main/c/42");
  EXPECT_TRUE(IsParkedQueue(key));
  std::optional<ParkedQueue> parked = ParseParkedQueue(key);
  ASSERT_TRUE(parked.has_value());
  EXPECT_EQ(parked->root_event, 17);
  EXPECT_EQ(parked->chat_key, "teamspirit/main/c/42");
  v1::ChannelRef chat = ChatOfKey(parked->chat_key);
  EXPECT_EQ(chat.platform(), "teamspirit");
  EXPECT_EQ(chat.account(), "main");
  EXPECT_EQ(chat.chat_id(), "c/42");
  // A channel's queue is not parked; a malformed parked key names nothing.
  EXPECT_FALSE(IsParkedQueue("teamspirit/main/c42#m-1"));
  EXPECT_FALSE(ParseParkedQueue("teamspirit/main/c42").has_value());
  EXPECT_FALSE(ParseParkedQueue("~parked/x/teamspirit/main/c42").has_value());
}

}  // namespace
}  // namespace imbridge::bridge
