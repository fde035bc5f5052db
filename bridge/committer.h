#ifndef IMBRIDGE_BRIDGE_COMMITTER_H_
#define IMBRIDGE_BRIDGE_COMMITTER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bridge/chat_commands.h"
#include "bridge/delivery_policy.h"
#include "bridge/link_table.h"
#include "bridge/store.h"
#include "bridge/thread_roots.h"
#include "common/executor.h"
#include "common/metrics.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// What the router remembers about a delivery it handed to an adapter, so
// that the adapter's answer can be recorded.
struct SentDelivery {
  int64_t id = 0;
  // The event's id; for a MessagePosted also the mirrored message's group.
  int64_t event_id = 0;
  // Outbox queue of the target (ChannelKey with thread).
  std::string target_key;
  // Message-map key of the target chat (ChannelKey without thread).
  std::string target_chat_key;
  int previous_attempts = 0;
  absl::Time created_at = absl::InfinitePast();
  // True for MessagePosted: the native ids returned are copies to record.
  bool records_copies = false;
  // For logs: the link that produced it and its event's key.
  std::string link;
  std::string event_key;
};

// A delivery whose fate was committed.
struct FinishedDelivery {
  int64_t id = 0;
  std::string target_key;
  DeliveryDecision decision;
  // When the delivery was written (for the latency metric); InfinitePast
  // when unknown.
  absl::Time created_at = absl::InfinitePast();
};

// Hears about committed work. Called on the committer's sync thread, in
// commit order, once the commit is durable; implementations must not block
// for long.
class CommitListener {
 public:
  virtual ~CommitListener() = default;
  // New deliveries, in id order, each with its event.
  virtual void OnDeliveriesWritten(std::vector<DeliveryRecord> deliveries) = 0;
  // Deliveries whose outcome (completed, retry, dead letter, resend) is now
  // durable.
  virtual void OnDeliveriesFinished(std::vector<FinishedDelivery> finished) = 0;
  // Queues that received pending deliveries from a parked queue (a thread
  // root resolved; CommitBatch::moves), each once.
  virtual void OnDeliveriesMoved(std::vector<std::string> target_keys) {}
};

// A thread root (LinkMember.pending_thread_root) whose fate was committed:
// its copy was made (kThread) or cannot be made (kWholeChat).
struct ResolvedThreadRoot {
  int64_t root_event = 0;
  // ChannelKey of the member's chat, without thread.
  std::string chat_key;
  ThreadRootState state;
};

// Holds the current link table; links can be replaced at runtime.
// Thread-safe.
class LinkRegistry {
 public:
  explicit LinkRegistry(std::shared_ptr<const LinkTable> table)
      : table_(std::move(table)) {}
  // The current table. Keep the returned pointer while reading the table:
  // Set() frees the old one when nobody else holds it, so a reference into
  // a temporary's table dangles (`for (auto& l : registry.Get()->links())`
  // reads freed memory if the links change meanwhile).
  std::shared_ptr<const LinkTable> Get() const {
    absl::MutexLock lock(&mu_);
    return table_;
  }
  void Set(std::shared_ptr<const LinkTable> table) {
    absl::MutexLock lock(&mu_);
    table_ = std::move(table);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const LinkTable> table_ ABSL_GUARDED_BY(mu_);
};

// The router's single writer. Everything that changes the store goes through
// its queue and is applied by one thread in group commits: the publishes,
// results and skips queued while the previous commit ran become one
// CommitBatch, written by one Store::Apply, in arrival order; an operator
// task runs in a transaction of its own at its place in the order.
// Publishes are acknowledged, tasks answered and listeners told only once
// their commit is durable: a second thread runs Store::Sync for every
// commit made while the previous Sync ran, then delivers their effects in
// commit order, while the writer already applies the next batch (the
// writer never waits for the disk). A batch the store refuses is applied
// again one operation at a time, so that one bad operation fails alone;
// but a publish queued behind a publish of its origin chat that failed,
// before that failure was answered, is answered FAILED without being
// stored, so that a chat's events are never stored out of order.
//
// For a publish, the caller's thread (a gRPC thread) validates the event,
// resolves its links, renders the sender's name per target and serializes
// it, so that the writer only decides and writes. The writer drops echoes
// (events about copies the bridge made) and events about messages it never
// relayed, and the store deduplicates by event key while writing the event,
// its original's message-map row and one delivery per target in the batch.
//
// Thread-safety: the public methods are thread-safe and never block on I/O;
// callbacks run on the sync thread.
//
// Thread roots: a link member whose thread is rooted at a copy not made yet
// (LinkMember.pending_thread_root) gets its deliveries in a parked queue
// (bridge/thread_roots.h). The writer watches those roots: the commit that
// records the root's copy moves the parked deliveries to the thread's queue,
// and the commit that dead-letters the root's delivery moves them to the
// whole chat's; publishes prepared with a link table older than that
// commit are written to where the parked ones went. Once such a commit is
// durable, the resolution listener is told (to rewrite the links). An event
// of the member's own chat prepared while the member still waited (the link
// table has it pending until that rewrite) also gets the deliveries it
// would have with the member narrowed to the event's thread
// (LinkTable::TargetsOnceRooted); the writer keeps them if and only if the
// root, as this commit sees it, resolved to that thread (or to the whole
// chat), so that an answer posted in the thread right after its root's copy
// was recorded is relayed once, whichever table it was prepared with. The
// root's copy must be recorded (RecordResult) before such an event is
// published: an adapter answers a delivery before publishing what happened
// after it. A resolved root is watched until the link table no longer waits
// on it; later, it is looked up in the store again if needed.
//
// Test-only fault injection, off unless the environment variable
// IMBRIDGE_TEST_CRASH_AT is set: "after_commit" kills the process (SIGKILL,
// as kill -9) right after the first commit of an accepted publish, before
// its Sync; "after_sync" right after that commit's Sync, before its acks.
// The crash tests use them to hit those windows exactly.
class Committer {
 public:
  using PublishDone = std::function<void(const v1::PublishAck& ack)>;
  using StoreTask = std::function<absl::Status(Store& store)>;

  // The fault injection points named by IMBRIDGE_TEST_CRASH_AT.
  enum class CrashPoint { kNone, kAfterCommit, kAfterSync };

  struct Options {
    int max_batch = 1024;
    // Queued operations above which adapter streams stop being read.
    size_t high_water = 4096;
  };

  // `store`, `links` and `listener` must outlive the committer.
  Committer(Store* store, const LinkRegistry* links, DeliveryPolicy policy,
            CommitListener* listener, Options options);
  ~Committer();

  // Optional; set before Start(). Told, on the sync thread and in commit
  // order, of thread roots whose fate was committed; must not block.
  using ThreadRootsResolved =
      std::function<void(std::vector<ResolvedThreadRoot> resolved)>;
  void SetThreadRootsResolved(ThreadRootsResolved resolved) {
    roots_resolved_ = std::move(resolved);
  }

  // For a StoreTask only (it runs on the writer thread): what became of the
  // thread rooted at the copy of mirrored message `root_event` in `chat`,
  // as committed; while it is pending, the writer watches it from now on.
  // `store` is the task's.
  absl::StatusOr<ThreadRootState> WatchThreadRoot(Store& store,
                                                  int64_t root_event,
                                                  const v1::ChannelRef& chat);

  // Optional; set before Start(). Messages that are chat commands are
  // answered in their own chat instead of being relayed. The answer is
  // worked out (reading the store) on a thread of the committer's own before
  // the command is queued, so a command never holds the writer.
  void SetChatCommands(const ChatCommands* commands) { commands_ = commands; }

  void Start();
  // Answers the chat commands published so far, applies everything queued,
  // delivers its effects, then stops the threads. Work queued after Stop()
  // is dropped without callbacks.
  void Stop();

  // Queues a publish; `done` gets the ack after the commit (ack.seq is 0;
  // the caller fills it in).
  void Publish(v1::Event event, PublishDone done);

  // Whether Publish answers `event` (a chat command) before it queues it:
  // a publish of its chat handed over later but before its ack may then be
  // stored first (PublishSequencer holds those back).
  bool AnswersFirst(const v1::Event& event) const {
    return commands_ != nullptr && commands_->IsCommand(event);
  }

  // Queues an adapter's answer to a delivery it was sent.
  void RecordResult(SentDelivery sent, v1::DeliveryResult result);

  // Queues removal of deliveries that need no sending (superseded presence,
  // an edit with no copy in the target, a kind the target cannot show).
  void Skip(int64_t delivery_id, std::string target_key);

  // Runs `task` inside a transaction on the writer thread; `done` (optional)
  // gets its status after the commit (or the failure).
  void Execute(StoreTask task, std::function<void(absl::Status)> done);

  // Backpressure for readers of adapter streams: returns true if the queue
  // is below `Options::high_water`. Otherwise returns false and runs
  // `resume` once (on the committer thread) when the queue has drained to
  // half of it; the caller stops reading until then.
  bool AdmitOrWait(std::function<void()> resume);

 private:
  // What Publish works out on the caller's thread, before the event is
  // queued.
  struct PreparedPublish {
    // ValidateEvent's verdict; nothing below is filled when it failed.
    absl::Status valid;
    // ChannelKey of the origin chat, without thread.
    std::string chat_key;
    // The links relayed on, each once, for imbridge_router_link_events_total.
    std::vector<std::string> links;
    // Deliveries the event has only if a thread root (of a member of the
    // origin's chat that waited on it) turned out to be the event's thread:
    // one entry per root (LinkTable::TargetsOnceRooted).
    struct Rooted {
      // The root's parked queue key.
      std::string root_key;
      std::vector<std::string> links;
      std::vector<DeliveryRecord> deliveries;
    };
    std::vector<Rooted> rooted;
  };
  // Ops are applied again, one by one, if their batch fails, so applying
  // one must not consume what a second try needs: events and preparations
  // are shared and callbacks copied; what is moved into the batch is moved
  // back (Restore).
  struct PublishOp {
    std::shared_ptr<const v1::Event> event;
    PublishDone done;
    // For a chat command: its answer, worked out before it was queued.
    std::shared_ptr<const CommandAnswer> answer;
    std::shared_ptr<const PreparedPublish> prepared;
    // The event serialized (empty: the store serializes it).
    std::string payload;
    // One delivery per target (target, link, rendered sender name); ids,
    // event and times are filled in on the writer.
    std::vector<DeliveryRecord> deliveries;
  };
  struct ResultOp {
    SentDelivery sent;
    v1::DeliveryResult result;
  };
  struct SkipOp {
    int64_t id;
    std::string target_key;
  };
  struct TaskOp {
    StoreTask task;
    std::function<void(absl::Status)> done;
  };
  using Op = std::variant<PublishOp, ResultOp, SkipOp, TaskOp>;

  // A publish whose event is in the batch: its ack depends on whether the
  // store found the event key new.
  struct AcceptedPublish {
    // The op, whose payload and deliveries are in the batch; its `done` is
    // moved into the ack once the batch is applied (not before: a batch
    // applied again one op at a time needs it).
    PublishOp* op = nullptr;
    // Index in CommitBatch::events of the event, and of a chat command's
    // answer (or -1).
    size_t event_index = 0;
    ptrdiff_t answer_index = -1;
    std::string detail;
    std::shared_ptr<const PreparedPublish> prepared;
    // How many of the event's deliveries are the op's own (the rest are
    // PreparedPublish::rooted ones the writer kept), and the links of those
    // kept.
    size_t own_deliveries = 0;
    std::vector<std::string> rooted_links;
  };
  // Results of applying one op, delivered after the commit.
  struct Effects {
    std::vector<std::pair<PublishDone, v1::PublishAck>> acks;
    std::vector<AcceptedPublish> accepted;
    std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>>
        task_results;
    std::vector<DeliveryRecord> written;
    std::vector<FinishedDelivery> finished;
    // Each accepted event once per link it is relayed on: (link, kind).
    std::vector<std::pair<std::string, v1::Event::KindCase>> relayed;
    // Thread roots resolved, and the queues parked deliveries moved to.
    std::vector<ResolvedThreadRoot> resolved;
    std::vector<std::string> moved_to;
  };

  void Run();
  void Enqueue(Op op);
  // Works out a publish's PreparedPublish and payload (caller's thread).
  PublishOp Prepare(std::shared_ptr<const v1::Event> event, PublishDone done,
                    bool command);
  // Applies a batch whose first op has queue position `first`: each run of
  // relay ops as one Store::Apply, each task in its own transaction, in
  // order.
  void ApplyBatch(std::vector<Op>& batch, uint64_t first);
  // Writes relay ops (no tasks; the first at queue position `first`) with
  // one Store::Apply; on failure retries each op alone so that one bad op
  // cannot hold the others back, except a publish behind a failed one of
  // its chat (FollowsFailedPublish).
  void CommitRelayOps(absl::Span<Op> ops, uint64_t first, absl::Time now);
  // Whether `op`, at queue position `position`, is a publish that was queued
  // behind a publish of its chat that failed to be stored, before that
  // failure was known: it must not be stored ahead of the failed one.
  bool FollowsFailedPublish(const Op& op, uint64_t position) const;
  // Notes that publish `op` failed to be stored (see failed_chats_).
  void NoteFailedPublish(const Op& op);
  // Runs a task between Begin and Commit; rolls back if it fails.
  void RunTask(TaskOp& task);
  // Adds an op's writes to `batch` and its consequences to `effects`.
  absl::Status AddOp(Op& op, CommitBatch* batch, Effects* effects);
  absl::Status AddPublish(PublishOp& op, CommitBatch* batch, Effects* effects);
  void AddResult(ResultOp& op, CommitBatch* batch, Effects* effects);
  // Stores a chat command and queues its answer to the command's own chat.
  void AddCommand(PublishOp& op, CommitBatch* batch, Effects* effects);
  // Looks up, in one read, the committed message-map rows of the messages
  // that `ops`' publishes are about.
  absl::Status Prefetch(absl::Span<Op> ops);
  // Gives the ops of a failed batch back what was moved into it.
  static void Restore(CommitBatch& batch, Effects& effects);
  // Forgets the batch's overlays; keeps its resolved roots if it committed.
  void EndBatch(bool committed);
  // The state of the thread root of parked queue `key`: this batch's, the
  // watched one, or (watching it from now on) the store's; the store's, if
  // resolved, is added to `effects` for the listener.
  absl::StatusOr<ThreadRootState> RootOf(const std::string& key,
                                         Effects* effects);
  // Writes a parked delivery to where its root's deliveries go now (its
  // queue stays parked while the root is pending).
  absl::Status Unpark(DeliveryRecord& delivery, Effects* effects);
  // The PreparedPublish::rooted deliveries of `event` whose root resolved to
  // the event's thread (or the whole chat), appended to `deliveries`, their
  // links to `links`.
  absl::Status KeepRooted(const v1::Event& event,
                          const PreparedPublish& prepared,
                          std::vector<DeliveryRecord>* deliveries,
                          std::vector<std::string>* links, Effects* effects);
  // Stops watching resolved roots that the link table no longer waits on,
  // and updates imbridge_router_thread_roots_watched.
  void ForgetSettledRoots();
  // After the outcome of a copy's delivery: resolves the root waiting on it
  // and moves its parked deliveries, in `batch`.
  void ResolveRootOf(const SentDelivery& sent, const DeliveryDecision& d,
                     const v1::DeliveryResult& result, CommitBatch* batch,
                     Effects* effects);
  // Whether the message is in the map: in this batch (the overlay) or
  // committed; and whether it is a copy.
  absl::StatusOr<std::optional<bool>> FindMessage(const std::string& chat_key,
                                                  const std::string& native_id);
  // Notes the sender of a posted message as a participant of its chat, at
  // most once a minute per person and chat.
  void NoteParticipant(const v1::Event& event, const std::string& chat_key,
                       CommitBatch* batch);
  // After a successful Apply: the acks of accepted publishes and the
  // deliveries written.
  void Resolve(CommitBatch& batch, Effects& effects);
  void FailOp(Op& op, const absl::Status& status, Effects* effects);
  // Hands committed effects to the sync thread.
  void Complete(Effects effects);
  // The sync thread: Sync, then Deliver, batch after batch.
  void RunSyncer();
  void Deliver(Effects& effects);
  void MaybeCrash(CrashPoint point, const Effects& effects) const;

  // The router's delivery metrics of one target platform, looked up once.
  struct DeliveryMetrics {
    metrics::Counter* ok;
    metrics::Counter* retry;
    metrics::Counter* dead_letter;
    metrics::Counter* resend;
    metrics::Histogram* latency;
  };
  DeliveryMetrics& MetricsFor(absl::string_view platform);
  // Counts committed delivery outcomes (skips are not counted).
  void CountFinished(const std::vector<FinishedDelivery>& finished);
  // Counts committed relays in imbridge_router_link_events_total.
  void CountRelayed(
      const std::vector<std::pair<std::string, v1::Event::KindCase>>& relayed);

  Store* const store_;
  const LinkRegistry* const links_;
  const DeliveryPolicy policy_;
  CommitListener* const listener_;
  const Options options_;
  const ChatCommands* commands_ = nullptr;
  // A message-map row's chat (ChannelKey without thread) and native id, as
  // views into the ops of the batch being built: the ops outlive the maps
  // below (EndBatch clears them before the batch's ops are dropped).
  using MessageKey = std::pair<absl::string_view, absl::string_view>;
  // Committer thread: the message-map rows of the batch being built
  // (-> is a copy), seen by echo and edit checks before they are committed.
  absl::flat_hash_map<MessageKey, bool> batch_messages_;
  // Committer thread: the committed rows Prefetch found for the batch being
  // built (nullopt: not in the map).
  absl::flat_hash_map<MessageKey, std::optional<bool>> committed_messages_;
  // Committer thread: when each (chat, user) was last written as a
  // participant, and under which name.
  absl::flat_hash_map<std::string, std::pair<absl::Time, std::string>>
      participants_written_;
  // Committer thread: how many ops were taken from the queue so far. Ops
  // are numbered by queue position, from 1, in the order they were queued.
  uint64_t taken_ = 0;
  // Committer thread: origin chats (PreparedPublish::chat_key) of publishes
  // that failed to be stored, each with the queue position of the last op
  // queued when the failure was known. The chat's publishes queued up to
  // there were handed over before the adapter could hear of the failure
  // (the PublishSequencer's group) and are refused, not stored ahead of the
  // failed one; entries are dropped once the writer is past their position.
  absl::flat_hash_map<std::string, uint64_t> failed_chats_;
  // Writer thread: watched thread roots by parked queue key, as committed
  // (a pending one until it resolves, a resolved one until the link table
  // no longer waits on it: ForgetSettledRoots), and those the batch being
  // built resolves; the keys of the resolved ones in roots_.
  absl::flat_hash_map<std::string, ThreadRootState> roots_;
  absl::flat_hash_map<std::string, ThreadRootState> batch_roots_;
  absl::flat_hash_set<std::string> settled_roots_;
  metrics::Gauge* const roots_watched_;
  ThreadRootsResolved roots_resolved_;
  const CrashPoint crash_at_;
  // Sync thread: delivery metrics per target platform.
  absl::flat_hash_map<std::string, DeliveryMetrics> delivery_metrics_;
  // Sync thread: relayed-events counters per (link, kind).
  absl::flat_hash_map<std::pair<std::string, v1::Event::KindCase>,
                      metrics::Counter*>
      link_events_;

  mutable absl::Mutex mu_;
  std::vector<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> drain_waiters_ ABSL_GUARDED_BY(mu_);
  // Chat commands handed to `answers_` and not yet queued.
  int answers_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
  // Effects of commits not yet synced, in commit order; at most
  // kMaxUnsynced (the sync thread takes them all at once).
  static constexpr size_t kMaxUnsynced = 2;
  absl::Mutex sync_mu_;
  std::vector<Effects> committed_ ABSL_GUARDED_BY(sync_mu_);
  bool writer_done_ ABSL_GUARDED_BY(sync_mu_) = false;
  std::thread syncer_;
  // Works out chat commands' answers off the writer. Declared last: its
  // destructor runs the answers still posted, which queue their ops.
  Executor answers_{1};
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_COMMITTER_H_
