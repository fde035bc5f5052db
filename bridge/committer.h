#ifndef IMBRIDGE_BRIDGE_COMMITTER_H_
#define IMBRIDGE_BRIDGE_COMMITTER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/chat_commands.h"
#include "bridge/delivery_policy.h"
#include "bridge/link_table.h"
#include "bridge/store.h"
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

// Hears about committed work. Called on the committer thread, after the
// commit; implementations must not block for long.
class CommitListener {
 public:
  virtual ~CommitListener() = default;
  // New deliveries, in id order, each with its event.
  virtual void OnDeliveriesWritten(std::vector<DeliveryRecord> deliveries) = 0;
  // Deliveries whose outcome (completed, retry, dead letter, resend) is now
  // durable.
  virtual void OnDeliveriesFinished(std::vector<FinishedDelivery> finished) = 0;
};

// Holds the current link table; links can be replaced at runtime.
// Thread-safe.
class LinkRegistry {
 public:
  explicit LinkRegistry(std::shared_ptr<const LinkTable> table)
      : table_(std::move(table)) {}
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
// its queue and is applied by one thread in group commits: all operations
// queued while the previous commit ran are applied in one transaction, in
// arrival order. Publishes are acknowledged, and listeners told, only after
// their commit.
//
// For a publish it validates the event, drops echoes (events about copies
// the bridge made) and events about messages it never relayed, deduplicates
// by event key, resolves the links and writes the event, its origin in the
// message map and one delivery per target, all in the transaction.
//
// Thread-safety: the public methods are thread-safe and never block on I/O;
// callbacks run on the committer thread.
class Committer {
 public:
  using PublishDone = std::function<void(const v1::PublishAck& ack)>;
  using StoreTask = std::function<absl::Status(Store& store)>;

  struct Options {
    int max_batch = 1024;
    // Queued operations above which adapter streams stop being read.
    size_t high_water = 4096;
  };

  // `store`, `links` and `listener` must outlive the committer.
  Committer(Store* store, const LinkRegistry* links, DeliveryPolicy policy,
            CommitListener* listener, Options options);
  ~Committer();

  // Optional; set before Start(). Messages that are chat commands are
  // answered in their own chat instead of being relayed. The answer is
  // worked out (reading the store) on a thread of the committer's own before
  // the command is queued, so a command never holds the writer.
  void SetChatCommands(const ChatCommands* commands) { commands_ = commands; }

  void Start();
  // Answers the chat commands published so far, applies everything queued,
  // then stops the thread. Work queued after Stop() is dropped without
  // callbacks.
  void Stop();

  // Queues a publish; `done` gets the ack after the commit (ack.seq is 0;
  // the caller fills it in).
  void Publish(v1::Event event, PublishDone done);

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
  // Ops are applied again, one by one, if their batch fails, so applying
  // one must not consume it: events are shared and callbacks copied.
  struct PublishOp {
    std::shared_ptr<const v1::Event> event;
    PublishDone done;
    // For a chat command: its answer, worked out before it was queued.
    std::shared_ptr<const std::string> answer;
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

  // Results of applying one op, delivered after the commit.
  struct Effects {
    std::vector<std::pair<PublishDone, v1::PublishAck>> acks;
    std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>>
        task_results;
    std::vector<DeliveryRecord> written;
    std::vector<FinishedDelivery> finished;
    // Each accepted event once per link it is relayed on: (link, kind).
    std::vector<std::pair<std::string, v1::Event::KindCase>> relayed;
  };

  void Run();
  void Enqueue(Op op);
  // Applies a batch in one transaction; on failure retries each op alone so
  // that one bad op cannot hold the others back.
  void ApplyBatch(std::vector<Op>& batch);
  absl::Status ApplyOp(Op& op, absl::Time now, Effects* effects);
  absl::Status ApplyPublish(PublishOp& op, absl::Time now, Effects* effects);
  absl::Status ApplyResult(ResultOp& op, absl::Time now, Effects* effects);
  // Stores a chat command and queues its answer to the command's own chat.
  absl::Status ApplyCommand(PublishOp& op, absl::Time now, Effects* effects);
  // Notes the sender of a posted message as a participant of its chat, at
  // most once a minute per person and chat.
  absl::Status NoteParticipant(const v1::Event& event,
                               const std::string& chat_key, absl::Time now);
  void FailOp(Op& op, const absl::Status& status, Effects* effects);
  void Deliver(Effects& effects);

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
  // Committer thread: when each (chat, user) was last written as a
  // participant, and under which name.
  absl::flat_hash_map<std::string, std::pair<absl::Time, std::string>>
      participants_written_;
  // Committer thread: delivery metrics per target platform.
  absl::flat_hash_map<std::string, DeliveryMetrics> delivery_metrics_;
  // Committer thread: relayed-events counters per (link, kind).
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
  // Works out chat commands' answers off the writer. Declared last: its
  // destructor runs the answers still posted, which queue their ops.
  Executor answers_{1};
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_COMMITTER_H_
