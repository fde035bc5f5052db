// Unit tests of the committer (dedupe, echo detection, link resolution into
// deliveries) and the dispatcher (per-channel order, the edit barrier,
// detached targets), on the real SQLite store in a temporary directory; and
// deliveries parked for a thread whose root's copy is not made yet.

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bridge/adapter_links.h"
#include "bridge/chat_commands.h"
#include "bridge/committer.h"
#include "bridge/dispatcher.h"
#include "bridge/link_catalog.h"
#include "bridge/link_table.h"
#include "bridge/publish_sequencer.h"
#include "bridge/sqlite_store.h"
#include "bridge/thread_roots.h"
#include "common/config_loader.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bridge/visitor_link_request.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAre;

constexpr char kLinks[] = R"(links:
- name: trio
  members:
  - {platform: alpha, account: a, chat_id: A1}
  - {platform: beta, account: b, chat_id: B1}
  - {platform: gamma, account: g, chat_id: G1, direction: out}
)";

v1::Event Posted(const std::string& key, const std::string& platform,
                 const std::string& account, const std::string& chat,
                 const std::string& id, const std::string& text = "hi") {
  v1::Event e;
  e.set_key(key);
  e.mutable_channel()->set_platform(platform);
  e.mutable_channel()->set_account(account);
  e.mutable_channel()->set_chat_id(chat);
  e.mutable_posted()->set_message_id(id);
  e.mutable_posted()->mutable_sender()->set_display_name("Ada");
  e.mutable_posted()->mutable_text()->set_text(text);
  return e;
}

v1::Event Edited(const std::string& key, const std::string& platform,
                 const std::string& account, const std::string& chat,
                 const std::string& id) {
  v1::Event e = Posted(key, platform, account, chat, id);
  e.clear_posted();
  e.mutable_edited()->set_message_id(id);
  e.mutable_edited()->mutable_text()->set_text("edited");
  return e;
}

// Records what the committer reports and lets tests wait for it.
class Recorder : public CommitListener {
 public:
  void OnDeliveriesWritten(std::vector<DeliveryRecord> d) override {
    absl::MutexLock lock(&mu_);
    for (auto& r : d) written_.push_back(std::move(r));
  }
  void OnDeliveriesFinished(std::vector<FinishedDelivery> f) override {
    absl::MutexLock lock(&mu_);
    for (auto& r : f) finished_.push_back(std::move(r));
  }
  // Waits until at least `n` deliveries were reported (acks may arrive
  // before the listener is told).
  std::vector<DeliveryRecord> written(size_t n = 0) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return written_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return written_;
  }
  size_t finished() {
    absl::MutexLock lock(&mu_);
    return finished_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<DeliveryRecord> written_ ABSL_GUARDED_BY(mu_);
  std::vector<FinishedDelivery> finished_ ABSL_GUARDED_BY(mu_);
};

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/committer-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    auto store = OpenSqliteStore(dir_, v1::NORMAL);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    v1::RouterConfig config;
    ASSERT_TRUE(LoadConfigYaml(kLinks, "test", &config).ok());
    links_ = std::make_unique<LinkRegistry>(
        *LinkTable::Build(config.links(), "test"));
    v1::DispatchOptions dispatch;
    dispatch.set_initial_backoff_ms(10);
    dispatch.set_max_backoff_ms(10);
    dispatch.set_delivery_ttl_seconds(60);
    committer_ = std::make_unique<Committer>(store_.get(), links_.get(),
                                             DeliveryPolicy(dispatch),
                                             &recorder_, Committer::Options());
    committer_->Start();
  }
  void TearDown() override { committer_->Stop(); }

  v1::PublishAck Publish(v1::Event e) {
    absl::Notification done;
    v1::PublishAck result;
    committer_->Publish(std::move(e), [&](const v1::PublishAck& ack) {
      result = ack;
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  // Answers delivery `d` as its adapter would, with `native_id` created.
  void Deliver(const DeliveryRecord& d, const std::string& native_id) {
    SentDelivery sent;
    sent.id = d.id;
    sent.event_id = d.event_id;
    sent.target_key = d.target_key;
    sent.target_chat_key = ChannelKey(d.target, false);
    sent.created_at = d.created_at;
    sent.records_copies = d.event->has_posted();
    v1::DeliveryResult result;
    result.set_id(d.id);
    result.add_native_ids(native_id);
    size_t before = recorder_.finished();
    committer_->RecordResult(sent, result);
    while (recorder_.finished() == before)
      absl::SleepFor(absl::Milliseconds(1));
  }

  // Publishes `!bridge status` in A1 with `commands`, whose answer notifies
  // `answering` and then waits for `release`; meanwhile a post must be
  // committed (the writer does not wait for the answer). Then releases the
  // answer, which is stored after the post's copies.
  void ExpectPostCommittedWhileStatusIsAnswered(ChatCommands* commands,
                                                absl::Notification* answering,
                                                absl::Notification* release) {
    committer_->Stop();
    v1::DispatchOptions dispatch;
    committer_ = std::make_unique<Committer>(store_.get(), links_.get(),
                                             DeliveryPolicy(dispatch),
                                             &recorder_, Committer::Options());
    committer_->SetChatCommands(commands);
    committer_->Start();

    absl::Notification command_acked;
    v1::PublishAck command_ack;
    committer_->Publish(
        Posted("c1", "alpha", "a", "A1", "cmd", "!bridge status"),
        [&](const v1::PublishAck& ack) {
          command_ack = ack;
          command_acked.Notify();
        });
    ASSERT_TRUE(answering->WaitForNotificationWithTimeout(absl::Seconds(60)));
    absl::Notification post_acked;
    v1::PublishAck post_ack;
    committer_->Publish(Posted("k1", "alpha", "a", "A1", "m1", "hello"),
                        [&](const v1::PublishAck& ack) {
                          post_ack = ack;
                          post_acked.Notify();
                        });
    bool committed_meanwhile =
        post_acked.WaitForNotificationWithTimeout(absl::Seconds(60));
    // Checked before the answer is released (after it, the command may be
    // acknowledged at any moment).
    bool command_acked_meanwhile = command_acked.HasBeenNotified();
    release->Notify();
    ASSERT_TRUE(committed_meanwhile) << "the writer waited for the command";
    EXPECT_EQ(post_ack.outcome(), v1::PublishAck::ACCEPTED);
    EXPECT_FALSE(command_acked_meanwhile);

    ASSERT_TRUE(
        command_acked.WaitForNotificationWithTimeout(absl::Seconds(60)));
    EXPECT_EQ(command_ack.outcome(), v1::PublishAck::ACCEPTED);
    // Two copies of the post (beta, gamma), then the answer in A1 itself.
    std::vector<DeliveryRecord> written = recorder_.written(3);
    ASSERT_EQ(written.size(), 3u);
    EXPECT_EQ(written[2].target.chat_id(), "A1");
    const std::string& answer = written[2].event->posted().text().text();
    EXPECT_THAT(answer, ::testing::HasSubstr("Link trio: 3 members"));
    EXPECT_THAT(answer, ::testing::HasSubstr("1 queued"));
    committer_->Stop();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LinkRegistry> links_;
  Recorder recorder_;
  std::unique_ptr<Committer> committer_;
};

TEST_F(CommitterTest, WritesOneDeliveryPerReceivingMemberInOrder) {
  EXPECT_EQ(Publish(Posted("k1", "alpha", "a", "A1", "m1", "first")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(Posted("k2", "alpha", "a", "A1", "m2", "second")).outcome(),
            v1::PublishAck::ACCEPTED);
  std::vector<DeliveryRecord> w = recorder_.written(4);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].target_key, "beta/b/B1");
  EXPECT_EQ(w[1].target_key, "gamma/g/G1");
  EXPECT_EQ(w[0].sender_name, "Ada (alpha)");
  EXPECT_LT(w[0].id, w[2].id);
  EXPECT_EQ(w[2].event->posted().text().text(), "second");
  // gamma only receives: its own messages feed nothing.
  EXPECT_EQ(Publish(Posted("k3", "gamma", "g", "G1", "g1")).outcome(),
            v1::PublishAck::DROPPED);
  // Nothing is relayed from a chat outside every link.
  EXPECT_EQ(Publish(Posted("k4", "alpha", "a", "A9", "x")).outcome(),
            v1::PublishAck::DROPPED);
}

TEST_F(CommitterTest, DeduplicatesByEventKey) {
  EXPECT_EQ(Publish(Posted("same", "alpha", "a", "A1", "m1")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(Posted("same", "alpha", "a", "A1", "m1")).outcome(),
            v1::PublishAck::DUPLICATE);
  v1::Event edit = Edited("e1", "alpha", "a", "A1", "m1");
  EXPECT_EQ(Publish(edit).outcome(), v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(edit).outcome(), v1::PublishAck::DUPLICATE);
  EXPECT_EQ(recorder_.written(4).size(), 4u);
}

TEST_F(CommitterTest, DropsEchoesOfCopiesAndEditsOfUnknownMessages) {
  ASSERT_EQ(Publish(Posted("k1", "alpha", "a", "A1", "m1")).outcome(),
            v1::PublishAck::ACCEPTED);
  DeliveryRecord to_beta = recorder_.written(2)[0];
  ASSERT_EQ(to_beta.target_key, "beta/b/B1");
  Deliver(to_beta, "b-copy-1");

  // Beta reports the bridge's copy as a new message, then as edited.
  v1::PublishAck echo = Publish(Posted("b1", "beta", "b", "B1", "b-copy-1"));
  EXPECT_EQ(echo.outcome(), v1::PublishAck::DROPPED);
  EXPECT_EQ(echo.detail(), "echo of a copy the bridge made");
  EXPECT_EQ(Publish(Edited("b2", "beta", "b", "B1", "b-copy-1")).outcome(),
            v1::PublishAck::DROPPED);
  EXPECT_EQ(
      Publish(Edited("a2", "alpha", "a", "A1", "never-relayed")).outcome(),
      v1::PublishAck::DROPPED);
  // Only the original post produced deliveries.
  EXPECT_EQ(recorder_.written(2).size(), 2u);

  // The message map knows both the original and the copy.
  auto original = store_->FindMessage("alpha/a/A1", "m1");
  ASSERT_TRUE(original.ok() && original->has_value());
  EXPECT_FALSE((*original)->is_copy);
  EXPECT_THAT(
      *store_->FindMessagesInChannel((*original)->group_id, "beta/b/B1"),
      ElementsAre("b-copy-1"));
}

TEST_F(CommitterTest, RejectsInvalidEventsAndRecordsPresence) {
  v1::Event no_key = Posted("", "alpha", "a", "A1", "m1");
  EXPECT_EQ(Publish(no_key).outcome(), v1::PublishAck::REJECTED);
  v1::Event no_kind;
  no_kind.set_key("k");
  no_kind.mutable_channel()->set_platform("alpha");
  no_kind.mutable_channel()->set_account("a");
  EXPECT_EQ(Publish(no_kind).outcome(), v1::PublishAck::REJECTED);

  v1::Event presence;
  presence.set_key("p1");
  presence.mutable_channel()->set_platform("alpha");
  presence.mutable_channel()->set_account("a");
  presence.mutable_presence()->mutable_user()->set_id("u7");
  presence.mutable_presence()->mutable_user()->set_display_name("Ivan");
  presence.mutable_presence()->set_presence(v1::AWAY);
  EXPECT_EQ(Publish(presence).outcome(), v1::PublishAck::ACCEPTED);
  auto roster = store_->ListRoster("alpha");
  ASSERT_TRUE(roster.ok());
  ASSERT_EQ(roster->size(), 1u);
  EXPECT_EQ((*roster)[0].display_name, "Ivan");
  EXPECT_EQ((*roster)[0].presence, v1::AWAY);
}

// `!bridge status` reads the store and asks which adapters are attached;
// while it is being answered (held here inside the attached check), other
// events are still committed: the answer is worked out off the writer.
TEST_F(CommitterTest, ChatCommandIsAnsweredOffTheWriter) {
  ChatCommands commands(v1::ChatCommandOptions(), store_.get());
  absl::Notification answering, release;
  commands.SetAttachedFn([&](const v1::ChannelRef&) {
    if (!answering.HasBeenNotified()) answering.Notify();
    release.WaitForNotification();
    return true;
  });
  ExpectPostCommittedWhileStatusIsAnswered(&commands, &answering, &release);
}

// The real store, except that Apply fails for any batch holding an event
// whose key starts with "poison" (as a full disk would for that write).
class PoisonedStore : public Store {
 public:
  explicit PoisonedStore(std::unique_ptr<Store> store)
      : store_(std::move(store)) {}

  absl::Status Apply(CommitBatch& batch) override {
    for (const NewEvent& e : batch.events) {
      if (absl::StartsWith(e.event->key(), "poison")) {
        return absl::UnavailableError("injected: disk full");
      }
    }
    return store_->Apply(batch);
  }
  absl::Status Sync() override { return store_->Sync(); }
  absl::Status Begin() override { return store_->Begin(); }
  absl::Status Commit() override { return store_->Commit(); }
  void Rollback() override { store_->Rollback(); }
  absl::Status RetryDeadLetter(int64_t id, absl::Time now) override {
    return store_->RetryDeadLetter(id, now);
  }
  absl::Status DropDeadLetter(int64_t id) override {
    return store_->DropDeadLetter(id);
  }
  absl::Status RecordBlob(const BlobInfo& blob) override {
    return store_->RecordBlob(blob);
  }
  absl::StatusOr<bool> DeleteBlob(absl::string_view blob_id,
                                  absl::Time unused_before) override {
    return store_->DeleteBlob(blob_id, unused_before);
  }
  absl::StatusOr<int64_t> PruneEvents(absl::Time before) override {
    return store_->PruneEvents(before);
  }
  absl::Status PutRecord(absl::string_view kind, absl::string_view name,
                         absl::string_view payload) override {
    return store_->PutRecord(kind, name, payload);
  }
  absl::Status DeleteRecord(absl::string_view kind,
                            absl::string_view name) override {
    return store_->DeleteRecord(kind, name);
  }
  std::string router_id() const override { return store_->router_id(); }
  absl::StatusOr<std::vector<std::string>> ListPendingTargets() override {
    return store_->ListPendingTargets();
  }
  absl::StatusOr<std::vector<DeliveryRecord>> LoadPendingDeliveries(
      absl::string_view target_key, int64_t after_id, int limit) override {
    return store_->LoadPendingDeliveries(target_key, after_id, limit);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> ListDeadLetters(
      int64_t before_id, int limit) override {
    return store_->ListDeadLetters(before_id, limit);
  }
  absl::StatusOr<int64_t> CountDeadLetters() override {
    return store_->CountDeadLetters();
  }
  absl::StatusOr<std::vector<DeadLetterRef>> ListDeadLetterRefs(
      int64_t after_id, int limit) override {
    return store_->ListDeadLetterRefs(after_id, limit);
  }
  absl::StatusOr<std::optional<DeadLetterRef>> FindDeadLetter(
      int64_t id) override {
    return store_->FindDeadLetter(id);
  }
  absl::StatusOr<std::vector<std::pair<std::string, v1::ChannelRef>>>
  ListDeadLetterTargets() override {
    return store_->ListDeadLetterTargets();
  }
  absl::StatusOr<TargetCounts> CountDeliveries(
      absl::string_view target_key) override {
    return store_->CountDeliveries(target_key);
  }
  absl::StatusOr<std::optional<MessageLocation>> FindMessage(
      absl::string_view channel_key, absl::string_view native_id) override {
    return store_->FindMessage(channel_key, native_id);
  }
  absl::StatusOr<std::vector<std::optional<MessageLocation>>> FindMessages(
      absl::Span<const std::pair<std::string, std::string>> messages) override {
    return store_->FindMessages(messages);
  }
  absl::StatusOr<std::vector<std::string>> FindMessagesInChannel(
      int64_t group_id, absl::string_view channel_key) override {
    return store_->FindMessagesInChannel(group_id, channel_key);
  }
  absl::StatusOr<std::vector<RosterEntry>> ListRoster(
      absl::string_view platform) override {
    return store_->ListRoster(platform);
  }
  absl::StatusOr<std::optional<BlobInfo>> FindBlob(
      absl::string_view blob_id) override {
    return store_->FindBlob(blob_id);
  }
  absl::StatusOr<std::vector<std::string>> ListCollectableBlobs(
      absl::Time before) override {
    return store_->ListCollectableBlobs(before);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListRecords(
      absl::string_view kind) override {
    return store_->ListRecords(kind);
  }
  absl::StatusOr<std::vector<Participant>> ListParticipants(
      absl::string_view channel_key) override {
    return store_->ListParticipants(channel_key);
  }

 private:
  std::unique_ptr<Store> store_;
};

// The real store (PoisonedStore poisons nothing these tests publish), except
// that a read `!bridge status` makes, CountDeliveries, notifies `reading`
// and then waits for `release`: a read held open.
class HeldReadStore : public PoisonedStore {
 public:
  HeldReadStore(std::unique_ptr<Store> store, absl::Notification* reading,
                absl::Notification* release)
      : PoisonedStore(std::move(store)), reading_(reading), release_(release) {}

  absl::StatusOr<TargetCounts> CountDeliveries(
      absl::string_view target_key) override {
    if (!reading_->HasBeenNotified()) reading_->Notify();
    release_->WaitForNotification();
    return PoisonedStore::CountDeliveries(target_key);
  }

 private:
  absl::Notification* const reading_;
  absl::Notification* const release_;
};

// While `!bridge status` is held inside its read of the store, other events
// are still committed: the command's reads are made off the writer, outside
// its transaction, so a chat user cannot stall it.
TEST_F(CommitterTest, ChatCommandsReadHeldOpenDoesNotStallTheWriter) {
  absl::Notification reading, release;
  committer_->Stop();
  store_ =
      std::make_unique<HeldReadStore>(std::move(store_), &reading, &release);
  ChatCommands commands(v1::ChatCommandOptions(), store_.get());
  commands.SetAttachedFn([](const v1::ChannelRef&) { return true; });
  ExpectPostCommittedWhileStatusIsAnswered(&commands, &reading, &release);
}

// A publish the committer answers later; the test waits for it.
class PendingAck {
 public:
  Committer::PublishDone Callback() {
    return [this](const v1::PublishAck& ack) {
      ack_ = ack;
      done_.Notify();
    };
  }
  v1::PublishAck Wait() {
    EXPECT_TRUE(done_.WaitForNotificationWithTimeout(absl::Seconds(60)));
    return ack_;
  }

 private:
  absl::Notification done_;
  v1::PublishAck ack_;
};

// A store failure makes the committer apply a group commit's operations one
// at a time. A chat's publish queued behind one of it that failed (handed
// over in one group by the PublishSequencer) must not be stored ahead of
// it: it is answered FAILED too, and the adapter publishes both again in
// their order. Other chats are not held back.
class CommitterStoreFailureTest : public CommitterTest {
 protected:
  void SetUp() override {
    CommitterTest::SetUp();
    committer_->Stop();
    store_ = std::make_unique<PoisonedStore>(std::move(store_));
    v1::DispatchOptions dispatch;
    committer_ = std::make_unique<Committer>(store_.get(), links_.get(),
                                             DeliveryPolicy(dispatch),
                                             &recorder_, Committer::Options());
    committer_->Start();
  }

  // Holds the writer in a task until `release` is notified, so that what
  // is published meanwhile is applied as one batch.
  void HoldWriter(absl::Notification* release) {
    absl::Notification holding;
    committer_->Execute(
        [&holding, release](Store&) {
          holding.Notify();
          release->WaitForNotification();
          return absl::OkStatus();
        },
        nullptr);
    ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(60)));
  }

  // The keys of the events that got deliveries, once `n` were written.
  std::vector<std::string> KeysWritten(size_t n) {
    std::vector<std::string> keys;
    for (const DeliveryRecord& d : recorder_.written(n)) {
      if (keys.empty() || keys.back() != d.event->key()) {
        keys.push_back(d.event->key());
      }
    }
    return keys;
  }
};

TEST_F(CommitterStoreFailureTest, AChatsLaterPublishIsNotStoredAheadOfAFailed) {
  absl::Notification release;
  HoldWriter(&release);
  PendingAck a1, a2, b1;
  committer_->Publish(Posted("poison-a1", "alpha", "a", "A1", "m1"),
                      a1.Callback());
  committer_->Publish(Posted("a2", "alpha", "a", "A1", "m2"), a2.Callback());
  committer_->Publish(Posted("b1", "beta", "b", "B1", "n1"), b1.Callback());
  release.Notify();

  EXPECT_EQ(a1.Wait().outcome(), v1::PublishAck::FAILED);
  v1::PublishAck refused = a2.Wait();
  EXPECT_EQ(refused.outcome(), v1::PublishAck::FAILED);
  EXPECT_EQ(refused.detail(), kBehindFailed);
  EXPECT_EQ(b1.Wait().outcome(), v1::PublishAck::ACCEPTED);

  // The adapter publishes the chat again from the failed one.
  EXPECT_EQ(Publish(Posted("a1", "alpha", "a", "A1", "m1")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(Posted("a2", "alpha", "a", "A1", "m2")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_THAT(KeysWritten(6), ElementsAre("b1", "a1", "a2"));
}

// The rest of the group may be in a later run of relay operations (behind
// an operator task, or past Options::max_batch): it is refused there too.
TEST_F(CommitterStoreFailureTest, TheRefusalReachesPastATaskInBetween) {
  absl::Notification release;
  HoldWriter(&release);
  PendingAck a1, a2;
  absl::Notification task_done;
  committer_->Publish(Posted("poison-a1", "alpha", "a", "A1", "m1"),
                      a1.Callback());
  committer_->Execute([](Store&) { return absl::OkStatus(); },
                      [&](absl::Status) { task_done.Notify(); });
  committer_->Publish(Posted("a2", "alpha", "a", "A1", "m2"), a2.Callback());
  release.Notify();

  EXPECT_EQ(a1.Wait().outcome(), v1::PublishAck::FAILED);
  EXPECT_EQ(a2.Wait().outcome(), v1::PublishAck::FAILED);
  EXPECT_TRUE(task_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  // Published after the failure was answered: stored.
  EXPECT_EQ(Publish(Posted("a1", "alpha", "a", "A1", "m1")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(Posted("a2", "alpha", "a", "A1", "m2")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_THAT(KeysWritten(4), ElementsAre("a1", "a2"));
}

// Collects what the dispatcher sends to an adapter.
class FakeStream : public FrameSink {
 public:
  void Send(v1::RouterFrame frame) override {
    absl::MutexLock lock(&mu_);
    for (auto& d : frame.deliveries()) sent_.push_back(d);
  }
  void ResumeReading() override {}
  void Detach(absl::string_view) override {}
  std::vector<v1::Delivery> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return sent_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return sent_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Delivery> sent_ ABSL_GUARDED_BY(mu_);
};

class DispatcherTest : public CommitterTest {
 protected:
  void SetUp() override {
    CommitterTest::SetUp();
    committer_->Stop();
    StartDispatcher(Dispatcher::Options());
  }

  // Starts a dispatcher with `options` (sending only queues granted to it
  // if `leased`) and a committer feeding it (the previous ones, if any, must
  // be stopped).
  void StartDispatcher(Dispatcher::Options options, bool leased = false) {
    dispatcher_ =
        std::make_unique<Dispatcher>(store_.get(), links_.get(), options);
    if (leased) dispatcher_->UseLeases();
    v1::DispatchOptions dispatch;
    dispatch.set_initial_backoff_ms(10);
    dispatch.set_max_backoff_ms(10);
    dispatch.set_delivery_ttl_seconds(60);
    committer_ = std::make_unique<Committer>(
        store_.get(), links_.get(), DeliveryPolicy(dispatch), dispatcher_.get(),
        Committer::Options());
    dispatcher_->SetCommitter(committer_.get());
    ASSERT_TRUE(dispatcher_->Start().ok());
    committer_->Start();
  }
  void TearDown() override {
    committer_->Stop();
    dispatcher_->Stop();
  }

  std::shared_ptr<AdapterSession> AttachBeta(FakeStream* stream) {
    v1::Hello hello;
    hello.set_platform("beta");
    hello.add_accounts("b");
    hello.add_capabilities("edits");
    auto session = std::make_shared<AdapterSession>(1, hello, 64, "test");
    session->SetSink(stream);
    dispatcher_->Attach(session);
    return session;
  }

  void Answer(AdapterSession& session, const v1::Delivery& d,
              const std::string& id) {
    std::optional<SentDelivery> sent = session.TakeSent(d.id());
    ASSERT_TRUE(sent.has_value());
    v1::DeliveryResult result;
    result.set_id(d.id());
    if (!id.empty()) result.add_native_ids(id);
    committer_->RecordResult(*sent, result);
  }

  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, PostsPipelineButAnEditWaitsForItsOriginal) {
  // Queued while beta is detached; alpha's other target is unaffected.
  Publish(Posted("k1", "alpha", "a", "A1", "m1", "one"));
  Publish(Posted("k2", "alpha", "a", "A1", "m2", "two"));
  Publish(Edited("k3", "alpha", "a", "A1", "m1"));
  FakeStream stream;
  auto beta = AttachBeta(&stream);
  // Both posts go out at once; the edit is held back.
  std::vector<v1::Delivery> sent = stream.WaitFor(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].event().posted().text().text(), "one");
  EXPECT_EQ(sent[1].event().posted().text().text(), "two");
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(stream.WaitFor(2).size(), 2u);

  Answer(*beta, sent[0], "b-1");
  Answer(*beta, sent[1], "b-2");
  sent = stream.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(sent[2].event().has_edited());
  // Translated to beta's copy of m1.
  EXPECT_THAT(sent[2].target_message_ids(), ElementsAre("b-1"));
  beta->Close();
}

TEST_F(DispatcherTest, RetryableFailureHoldsTheQueueAndKeepsOrder) {
  Publish(Posted("k1", "alpha", "a", "A1", "m1", "one"));
  Publish(Posted("k2", "alpha", "a", "A1", "m2", "two"));
  FakeStream stream;
  auto beta = AttachBeta(&stream);
  std::vector<v1::Delivery> sent = stream.WaitFor(2);
  ASSERT_EQ(sent.size(), 2u);
  // "one" fails retryably; the adapter did not attempt "two".
  auto fail = [&](const v1::Delivery& d, bool not_attempted) {
    std::optional<SentDelivery> s = beta->TakeSent(d.id());
    ASSERT_TRUE(s.has_value());
    v1::DeliveryResult r;
    r.set_id(d.id());
    r.mutable_error()->set_retryable(true);
    r.mutable_error()->set_not_attempted(not_attempted);
    committer_->RecordResult(*s, r);
  };
  fail(sent[0], false);
  fail(sent[1], true);
  sent = stream.WaitFor(4);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[2].event().posted().text().text(), "one");
  EXPECT_EQ(sent[2].attempt(), 2u);
  EXPECT_EQ(sent[3].event().posted().text().text(), "two");
  EXPECT_EQ(sent[3].attempt(), 1u);
  beta->Close();
}

// A queue whose memory part is empty but whose store part is not, found
// with the adapter's window full (another queue took the free slot first),
// is sent to again once the window frees: it does not wait forever.
TEST_F(DispatcherTest, AQueueLeftInTheStoreResumesWhenTheWindowFrees) {
  committer_->Stop();
  dispatcher_->Stop();
  v1::RouterConfig config;
  ASSERT_TRUE(LoadConfigYaml(R"(links:
- name: one
  members:
  - {platform: alpha, account: a, chat_id: A1}
  - {platform: beta, account: b, chat_id: B1}
- name: two
  members:
  - {platform: alpha, account: a, chat_id: A2}
  - {platform: beta, account: b, chat_id: B2}
)",
                             "test", &config)
                  .ok());
  links_ =
      std::make_unique<LinkRegistry>(*LinkTable::Build(config.links(), "test"));
  Dispatcher::Options options;
  options.memory_queue_per_target = 1;
  StartDispatcher(options);

  // B2 has x1 in memory and x2 in the store; beta takes one at a time.
  Publish(Posted("x1", "alpha", "a", "A2", "x1", "x1"));
  Publish(Posted("x2", "alpha", "a", "A2", "x2", "x2"));
  FakeStream stream;
  v1::Hello hello;
  hello.set_platform("beta");
  hello.add_accounts("b");
  auto beta = std::make_shared<AdapterSession>(1, hello, 1, "test");
  beta->SetSink(&stream);
  dispatcher_->Attach(beta);
  std::vector<v1::Delivery> sent = stream.WaitFor(1);
  ASSERT_EQ(sent.size(), 1u);
  // B1 gets y1 while x1 is out; x1's answer frees the slot, which B1 takes.
  Publish(Posted("y1", "alpha", "a", "A1", "y1", "y1"));
  Answer(*beta, sent[0], "c-x1");
  sent = stream.WaitFor(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].event().posted().text().text(), "y1");
  // y1's answer frees it again: x2, left in the store, is sent.
  Answer(*beta, sent[1], "c-y1");
  sent = stream.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[2].event().posted().text().text(), "x2");
  beta->Close();
}

// With leases (several routers on one database), a queue is sent only
// while this router holds it and its leases are valid: a revoked queue stops
// at once (an answer to what was in flight is recorded, not acted on), and
// a queue granted again resumes from the store, in order.
TEST_F(DispatcherTest, LeasedQueueIsSentOnlyWhileHeld) {
  committer_->Stop();
  dispatcher_->Stop();
  StartDispatcher(Dispatcher::Options(), /*leased=*/true);
  FakeStream stream;
  auto beta = AttachBeta(&stream);
  const std::vector<std::string> b1 = {"beta/b/B1"};
  auto nothing_more_sent = [&](size_t n) {
    // A negative: given time to go wrong, on an otherwise idle queue.
    absl::SleepFor(absl::Milliseconds(300));
    return stream.WaitFor(n).size() == n;
  };

  Publish(Posted("k1", "alpha", "a", "A1", "m1", "one"));
  EXPECT_TRUE(nothing_more_sent(0)) << "sent before the lease was granted";
  EXPECT_EQ(dispatcher_->owned_queues(), 0u);
  dispatcher_->OnLeasesValidUntil(absl::Now() + absl::Hours(1));
  dispatcher_->OnQueuesGranted(b1);
  std::vector<v1::Delivery> sent = stream.WaitFor(1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(dispatcher_->owned_queues(), 1u);
  Answer(*beta, sent[0], "b-1");
  Publish(Posted("k2", "alpha", "a", "A1", "m2", "two"));
  sent = stream.WaitFor(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].event().posted().text().text(), "two");

  // Revoked with "two" in flight: its retryable failure and "three" stay
  // with the queue's next holder.
  dispatcher_->OnQueuesRevoked(b1);
  EXPECT_EQ(dispatcher_->owned_queues(), 0u);
  Publish(Posted("k3", "alpha", "a", "A1", "m3", "three"));
  std::optional<SentDelivery> two = beta->TakeSent(sent[1].id());
  ASSERT_TRUE(two.has_value());
  v1::DeliveryResult failed;
  failed.set_id(sent[1].id());
  failed.mutable_error()->set_retryable(true);
  committer_->RecordResult(*two, failed);
  EXPECT_TRUE(nothing_more_sent(2)) << "sent a queue it no longer holds";

  // Granted again: from the store, in order.
  dispatcher_->OnQueuesGranted(b1);
  sent = stream.WaitFor(4);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[2].event().posted().text().text(), "two");
  EXPECT_EQ(sent[2].attempt(), 2u);
  EXPECT_EQ(sent[3].event().posted().text().text(), "three");
  Answer(*beta, sent[2], "b-2");
  Answer(*beta, sent[3], "b-3");

  // Leases no longer renewed: nothing is sent until they are.
  dispatcher_->OnLeasesValidUntil(absl::Now() - absl::Seconds(1));
  Publish(Posted("k4", "alpha", "a", "A1", "m4", "four"));
  EXPECT_TRUE(nothing_more_sent(4)) << "sent on an expired lease";
  dispatcher_->OnLeasesValidUntil(absl::Now() + absl::Hours(1));
  sent = stream.WaitFor(5);
  ASSERT_EQ(sent.size(), 5u);
  EXPECT_EQ(sent[4].event().posted().text().text(), "four");
  beta->Close();
}

// A link member whose thread is rooted at a copy not made yet (issue 13):
// the router-level flow on the real SQLite store, with the real committer,
// dispatcher and link catalog. The support chat's adapter is detached when
// the visitor's link is created and the visitor writes.
constexpr char kNoticeLinks[] = R"(links:
- name: notices
  members:
  - {platform: chatlio, account: main, chat_id: notices, direction: in}
  - {platform: teamspirit, account: main, chat_id: c42}
)";

class ParkedThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/parked-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    Open();
  }
  void TearDown() override { Close(); }

  // Starts the router's parts as Router::Create does.
  void Open() {
    auto store = OpenSqliteStore(dir_, v1::FULL);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    v1::RouterConfig config;
    ASSERT_TRUE(LoadConfigYaml(kNoticeLinks, "test", &config).ok());
    links_ = std::make_unique<LinkRegistry>(
        *LinkTable::Build(config.links(), "test"));
    dispatcher_ = std::make_unique<Dispatcher>(store_.get(), links_.get(),
                                               Dispatcher::Options());
    v1::DispatchOptions dispatch;
    dispatch.set_initial_backoff_ms(10);
    dispatch.set_max_backoff_ms(10);
    committer_ = std::make_unique<Committer>(
        store_.get(), links_.get(), DeliveryPolicy(dispatch), dispatcher_.get(),
        Committer::Options());
    dispatcher_->SetCommitter(committer_.get());
    catalog_ = std::make_unique<LinkCatalog>(
        store_.get(), committer_.get(), links_.get(),
        std::vector<v1::Link>(config.links().begin(), config.links().end()));
    if (rewrite_links_) {
      committer_->SetThreadRootsResolved(
          [catalog = catalog_.get()](std::vector<ResolvedThreadRoot> resolved) {
            catalog->OnThreadRootsResolved(std::move(resolved));
          });
    }
    committer_->Start();
    ASSERT_TRUE(catalog_->Load().ok());
    ASSERT_TRUE(dispatcher_->Start().ok());
  }

  // Stops them as Router::Shutdown does; the store is closed.
  void Close() {
    if (catalog_ == nullptr) return;
    if (session_ != nullptr) session_->Close();
    session_.reset();
    catalog_->StopRewrites();
    committer_->Stop();
    dispatcher_->Stop();
    catalog_.reset();
    committer_.reset();
    dispatcher_.reset();
    store_.reset();
  }

  v1::PublishAck Publish(v1::Event e) {
    absl::Notification done;
    v1::PublishAck result;
    committer_->Publish(std::move(e), [&](const v1::PublishAck& ack) {
      result = ack;
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  // The Chatlio adapter's request for the visitor's link: Slack's C1, the
  // thread of notice n-1's copy in c42, and the conversation's channel.
  v1::LinkReply RequestVisitorLink() {
    v1::LinkRequest request = VisitorLinkRequest("n-1");
    request.set_id(1);
    request.mutable_create()->mutable_members(2)->set_direction(v1::OUT);
    v1::Hello hello;
    hello.set_platform("chatlio");
    hello.add_accounts("main");
    ThreadRootLookup lookup;
    lookup.store = store_.get();
    return HandleLinkRequest(*catalog_, hello, request, lookup);
  }

  void AttachTeamSpirit() {
    v1::Hello hello;
    hello.set_platform("teamspirit");
    hello.add_accounts("main");
    hello.add_capabilities("threads");
    session_ = std::make_shared<AdapterSession>(1, hello, 64, "test");
    session_->SetSink(&stream_);
    dispatcher_->Attach(session_);
  }

  // Answers delivery `d`: with a copy `native_id`, or a permanent error
  // when it is empty.
  void Answer(const v1::Delivery& d, const std::string& native_id) {
    std::optional<SentDelivery> sent = session_->TakeSent(d.id());
    ASSERT_TRUE(sent.has_value());
    v1::DeliveryResult result;
    result.set_id(d.id());
    if (native_id.empty()) {
      result.mutable_error()->set_message("chat_not_found");
    } else {
      result.add_native_ids(native_id);
    }
    committer_->RecordResult(*sent, result);
  }

  // Waits until the visitor link's support member is narrowed as expected.
  v1::LinkMember SupportMemberOnceResolved() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      absl::StatusOr<v1::LinkInfo> info = catalog_->GetLink("chatlio-u-1");
      EXPECT_TRUE(info.ok()) << info.status();
      if (!info.ok()) return v1::LinkMember();
      const v1::LinkMember& m = info->link().members(1);
      if (m.pending_thread_root() == 0 || absl::Now() > deadline) return m;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  // Queues a publish; the returned ack is filled in when it is answered.
  struct AckWait {
    absl::Notification done;
    v1::PublishAck ack;
  };
  std::shared_ptr<AckWait> PublishLater(v1::Event e) {
    auto wait = std::make_shared<AckWait>();
    committer_->Publish(std::move(e), [wait](const v1::PublishAck& ack) {
      wait->ack = ack;
      wait->done.Notify();
    });
    return wait;
  }

  // Holds the committer's writer (a task that waits) until the returned
  // notification is notified: what is queued meanwhile is one batch.
  std::unique_ptr<absl::Notification> HoldWriter() {
    auto release = std::make_unique<absl::Notification>();
    auto held = std::make_shared<absl::Notification>();
    committer_->Execute(
        [held, release = release.get()](Store&) {
          held->Notify();
          release->WaitForNotification();
          return absl::OkStatus();
        },
        nullptr);
    held->WaitForNotification();
    return release;
  }

  // An agent's message `id` in TeamSpirit's c42, in thread `thread` (or
  // none).
  static v1::Event AgentWrites(const std::string& id,
                               const std::string& thread) {
    v1::Event e = Posted(id, "teamspirit", "main", "c42", id, "Yes");
    e.mutable_channel()->set_thread_id(thread);
    return e;
  }

  // The messages waiting to be sent to outbox queue `target_key`, in order
  // (the visitor's channel "slack/main/C1" has no adapter attached).
  std::vector<std::string> PendingTo(const std::string& target_key) {
    absl::StatusOr<std::vector<DeliveryRecord>> pending =
        store_->LoadPendingDeliveries(target_key, 0, 1000);
    EXPECT_TRUE(pending.ok()) << pending.status();
    std::vector<std::string> ids;
    if (!pending.ok()) return ids;
    for (const DeliveryRecord& d : *pending) {
      ids.push_back(d.event->posted().message_id());
    }
    return ids;
  }

  static double RootsWatched() {
    return metrics::Registry::Default()
        .GetGauge("imbridge_router_thread_roots_watched", "")
        .value();
  }

  // Waits until the copy `native_id` of the notice is recorded in c42.
  void WaitForNoticesCopy(const std::string& native_id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (
        !store_->FindMessage("teamspirit/main/c42", native_id)->has_value() &&
        absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  bool HasParkedQueue() {
    absl::StatusOr<std::vector<std::string>> targets =
        store_->ListPendingTargets();
    EXPECT_TRUE(targets.ok());
    for (const std::string& key : *targets) {
      if (IsParkedQueue(key)) return true;
    }
    return false;
  }

  // The notice, the link (pending: TeamSpirit's adapter is detached) and
  // the visitor's two messages.
  void VisitorWritesBeforeTheNoticesCopy() {
    ASSERT_EQ(Publish(Posted("n1", "chatlio", "main", "notices", "n-1",
                             "New conversation"))
                  .outcome(),
              v1::PublishAck::ACCEPTED);
    v1::LinkReply reply = RequestVisitorLink();
    ASSERT_EQ(reply.code(), 0) << reply.message();
    EXPECT_EQ(reply.link().members(1).thread_id(), "");
    EXPECT_GT(reply.link().members(1).pending_thread_root(), 0);
    for (const char* id : {"v-1", "v-2"}) {
      ASSERT_EQ(Publish(Posted(id, "slack", "main", "C1", id, id)).outcome(),
                v1::PublishAck::ACCEPTED);
    }
    EXPECT_TRUE(HasParkedQueue());
    // Asked again (the adapter's retry after a lost reply): the same link.
    v1::LinkReply again = RequestVisitorLink();
    EXPECT_EQ(again.code(), 0) << again.message();
  }

  // Attaches TeamSpirit's adapter: only the notice is sent, the visitor's
  // messages stay parked.
  v1::Delivery OnlyTheNoticeIsSent() {
    AttachTeamSpirit();
    std::vector<v1::Delivery> sent = stream_.WaitFor(1);
    EXPECT_EQ(sent.size(), 1u);
    if (sent.empty()) return v1::Delivery();
    EXPECT_EQ(sent[0].event().posted().message_id(), "n-1");
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_EQ(stream_.WaitFor(1).size(), 1u) << "a parked delivery was sent";
    return sent[0];
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LinkRegistry> links_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<LinkCatalog> catalog_;
  FakeStream stream_;
  std::shared_ptr<AdapterSession> session_;
  // Whether the catalog hears of resolved roots (false: as if the router
  // died between the resolving commit and the link's rewrite).
  bool rewrite_links_ = true;
};

TEST_F(ParkedThreadTest, ParkedDeliveriesFollowTheRootsCopyIntoItsThread) {
  VisitorWritesBeforeTheNoticesCopy();
  Answer(OnlyTheNoticeIsSent(), "m-77");

  // The visitor's messages, in order, in the thread of the notice's copy.
  std::vector<v1::Delivery> sent = stream_.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].event().posted().message_id(), "v-1");
  EXPECT_EQ(sent[2].event().posted().message_id(), "v-2");
  EXPECT_EQ(sent[1].target().thread_id(), "m-77");
  EXPECT_EQ(sent[2].target().thread_id(), "m-77");
  EXPECT_FALSE(HasParkedQueue());

  // The link now names the thread: an agent's answer there reaches the
  // visitor's channel, and the visitor's next message goes to the thread.
  v1::LinkMember support = SupportMemberOnceResolved();
  EXPECT_EQ(support.thread_id(), "m-77");
  EXPECT_EQ(support.pending_thread_root(), 0);
  v1::Event answer = Posted("a1", "teamspirit", "main", "c42", "a-1", "hi");
  answer.mutable_channel()->set_thread_id("m-77");
  EXPECT_EQ(Publish(answer).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_EQ(Publish(Posted("v3", "slack", "main", "C1", "v-3")).outcome(),
            v1::PublishAck::ACCEPTED);
  sent = stream_.WaitFor(4);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[3].event().posted().message_id(), "v-3");
  EXPECT_EQ(sent[3].target().thread_id(), "m-77");
}

TEST_F(ParkedThreadTest, ADeadLetteredRootSendsParkedDeliveriesToTheChat) {
  VisitorWritesBeforeTheNoticesCopy();
  Answer(OnlyTheNoticeIsSent(), "");

  std::vector<v1::Delivery> sent = stream_.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].event().posted().message_id(), "v-1");
  EXPECT_EQ(sent[2].event().posted().message_id(), "v-2");
  EXPECT_EQ(sent[1].target().thread_id(), "");
  EXPECT_EQ(sent[1].target().chat_id(), "c42");
  v1::LinkMember support = SupportMemberOnceResolved();
  EXPECT_EQ(support.thread_id(), "");
  EXPECT_EQ(support.pending_thread_root(), 0);
  EXPECT_EQ(*store_->CountDeadLetters(), 1);
}

TEST_F(ParkedThreadTest, ParkedDeliveriesAndTheWatchSurviveARestart) {
  VisitorWritesBeforeTheNoticesCopy();
  Close();
  Open();
  Answer(OnlyTheNoticeIsSent(), "m-77");
  std::vector<v1::Delivery> sent = stream_.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].event().posted().message_id(), "v-1");
  EXPECT_EQ(sent[2].event().posted().message_id(), "v-2");
  EXPECT_EQ(sent[2].target().thread_id(), "m-77");
  EXPECT_EQ(SupportMemberOnceResolved().thread_id(), "m-77");
}

TEST_F(ParkedThreadTest, ALinkNotRewrittenBeforeARestartIsRewrittenAtStart) {
  Close();
  rewrite_links_ = false;
  Open();
  VisitorWritesBeforeTheNoticesCopy();
  Answer(OnlyTheNoticeIsSent(), "m-77");
  std::vector<v1::Delivery> sent = stream_.WaitFor(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[2].target().thread_id(), "m-77");
  ASSERT_GT(
      catalog_->GetLink("chatlio-u-1")->link().members(1).pending_thread_root(),
      0);
  // The router dies before the link's rewrite; at start it is rewritten.
  Close();
  rewrite_links_ = true;
  Open();
  absl::StatusOr<v1::LinkInfo> info = catalog_->GetLink("chatlio-u-1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->link().members(1).thread_id(), "m-77");
  EXPECT_EQ(info->link().members(1).pending_thread_root(), 0);
  v1::Event answer = Posted("a1", "teamspirit", "main", "c42", "a-1", "hi");
  answer.mutable_channel()->set_thread_id("m-77");
  EXPECT_EQ(Publish(answer).outcome(), v1::PublishAck::ACCEPTED);
}

// The hole of issue 13: the support chat's adapter answers the notice's
// delivery and, right behind it, publishes an agent's answer in the
// notice's thread, before the router rewrote the link (the answer is
// prepared with the link still waiting for its thread). The answer reaches
// the visitor's channel once; one after the rewrite too.
TEST_F(ParkedThreadTest, AnAnswerRightBehindTheRootsCopyReachesTheVisitor) {
  VisitorWritesBeforeTheNoticesCopy();
  v1::Delivery notice = OnlyTheNoticeIsSent();
  std::unique_ptr<absl::Notification> release = HoldWriter();
  Answer(notice, "m-77");
  std::shared_ptr<AckWait> answer = PublishLater(AgentWrites("a-1", "m-77"));
  // Another visitor's thread, and the chat outside threads: not this one's.
  std::shared_ptr<AckWait> elsewhere = PublishLater(AgentWrites("a-x", "m-99"));
  std::shared_ptr<AckWait> unthreaded = PublishLater(AgentWrites("a-y", ""));
  release->Notify();
  answer->done.WaitForNotification();
  EXPECT_EQ(answer->ack.outcome(), v1::PublishAck::ACCEPTED)
      << answer->ack.detail();
  elsewhere->done.WaitForNotification();
  EXPECT_EQ(elsewhere->ack.outcome(), v1::PublishAck::DROPPED);
  unthreaded->done.WaitForNotification();
  EXPECT_EQ(unthreaded->ack.outcome(), v1::PublishAck::DROPPED);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1"));
  // (The conversation's own channel hears the whole link.)
  EXPECT_THAT(PendingTo("chatlio/main/conversation:u-1"),
              ElementsAre("v-1", "v-2", "a-1"));

  // Once the link names the thread, nothing is doubled.
  EXPECT_EQ(SupportMemberOnceResolved().thread_id(), "m-77");
  EXPECT_EQ(Publish(AgentWrites("a-2", "m-77")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1", "a-2"));
  // The root is no longer watched: the link no longer waits on it.
  EXPECT_EQ(RootsWatched(), 0);
}

// The same answer published after the copy's commit (an earlier batch) but
// prepared before the link's rewrite (here: the rewrite never comes, as if
// the router died first): the writer's watch of the root says it is this
// thread. After the restart the link names the thread; no double either.
TEST_F(ParkedThreadTest, AnAnswerBeforeTheLinksRewriteReachesTheVisitor) {
  Close();
  rewrite_links_ = false;
  Open();
  VisitorWritesBeforeTheNoticesCopy();
  Answer(OnlyTheNoticeIsSent(), "m-77");
  WaitForNoticesCopy("m-77");
  EXPECT_EQ(Publish(AgentWrites("a-1", "m-77")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(AgentWrites("a-x", "m-99")).outcome(),
            v1::PublishAck::DROPPED);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1"));
  // Still waited on by the link: still watched.
  EXPECT_EQ(RootsWatched(), 1);

  Close();
  rewrite_links_ = true;
  Open();
  EXPECT_EQ(Publish(AgentWrites("a-2", "m-77")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1", "a-2"));
  EXPECT_EQ(RootsWatched(), 0);
}

// A root no longer watched (its link was rewritten) is looked up in the
// store for a publish prepared with the table from before the rewrite.
TEST_F(ParkedThreadTest, AForgottenRootIsLookedUpAgain) {
  VisitorWritesBeforeTheNoticesCopy();
  const std::shared_ptr<const LinkTable> waiting = links_->Get();
  Answer(OnlyTheNoticeIsSent(), "m-77");
  EXPECT_EQ(SupportMemberOnceResolved().thread_id(), "m-77");
  const std::shared_ptr<const LinkTable> rewritten = links_->Get();
  ASSERT_NE(waiting, rewritten);
  EXPECT_EQ(Publish(Posted("v3", "slack", "main", "C1", "v-3")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(RootsWatched(), 0);

  links_->Set(waiting);
  EXPECT_EQ(Publish(AgentWrites("a-1", "m-77")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_EQ(Publish(AgentWrites("a-x", "m-99")).outcome(),
            v1::PublishAck::DROPPED);
  links_->Set(rewritten);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1"));
}

// The notice's delivery is dead-lettered right before an agent writes in
// the chat: the member is the whole chat, and the message reaches the
// visitor once.
TEST_F(ParkedThreadTest,
       AMessageRightBehindADeadLetteredRootReachesTheVisitor) {
  VisitorWritesBeforeTheNoticesCopy();
  v1::Delivery notice = OnlyTheNoticeIsSent();
  std::unique_ptr<absl::Notification> release = HoldWriter();
  Answer(notice, "");
  std::shared_ptr<AckWait> message = PublishLater(AgentWrites("a-1", ""));
  release->Notify();
  message->done.WaitForNotification();
  EXPECT_EQ(message->ack.outcome(), v1::PublishAck::ACCEPTED)
      << message->ack.detail();
  EXPECT_EQ(SupportMemberOnceResolved().thread_id(), "");
  EXPECT_EQ(Publish(AgentWrites("a-2", "")).outcome(),
            v1::PublishAck::ACCEPTED);
  EXPECT_THAT(PendingTo("slack/main/C1"), ElementsAre("a-1", "a-2"));
}

TEST_F(ParkedThreadTest, ACopyMadeBeforeTheLinkIsItsThreadAtOnce) {
  ASSERT_EQ(Publish(Posted("n1", "chatlio", "main", "notices", "n-1",
                           "New conversation"))
                .outcome(),
            v1::PublishAck::ACCEPTED);
  Answer(OnlyTheNoticeIsSent(), "m-77");
  WaitForNoticesCopy("m-77");
  v1::LinkReply reply = RequestVisitorLink();
  ASSERT_EQ(reply.code(), 0) << reply.message();
  EXPECT_EQ(reply.link().members(1).thread_id(), "m-77");
  EXPECT_EQ(reply.link().members(1).pending_thread_root(), 0);
}

}  // namespace
}  // namespace imbridge::bridge
