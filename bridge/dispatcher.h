#ifndef IMBRIDGE_BRIDGE_DISPATCHER_H_
#define IMBRIDGE_BRIDGE_DISPATCHER_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "bridge/adapter_session.h"
#include "bridge/committer.h"
#include "bridge/queue_leases.h"
#include "bridge/store.h"

namespace imbridge::bridge {

// Hands committed deliveries to attached adapters.
//
// Parked queues (bridge/thread_roots.h) are never sent; their deliveries
// are read again from the queue they are moved to.
//
// There is one ordered queue per target channel. A queue sends only to the
// adapter attached for its platform and account; without one it keeps its
// deliveries (in the store and, up to a bound, in memory) while every other
// queue proceeds. Plain posts are pipelined up to the adapter's window; an
// edit, delete, reply or thread message waits until everything before it in
// its queue is finished, so that it is translated through the message map
// only once its original's copy is recorded. After a retryable failure the
// queue waits until the delivery's next attempt time. Of several presence
// deliveries for one person queued for one target, only the newest is sent.
//
// Several routers on one database (UseLeases()): the dispatcher sends only
// the queues this router holds a lease of (bridge/queue_leases.h), and only
// while the leases are valid. A queue granted is read from the store from
// its lowest pending id; a queue revoked is dropped from memory at once
// (answers to what was in flight are still recorded). Deliveries committed
// here or by another router (NOTIFY) are read from the store after the
// queue's cursor, never taken from the commit directly: delivery ids follow
// commit order across routers (postgres_store.cc), but another router's
// commit of lower ids may not have been read yet when this router's commit
// is heard of.
//
// Threading: one internal thread owns all queues; the public methods only
// post work to it and never block on I/O, except OnQueuesRevoked, which
// waits until the dispatcher thread dropped the queues.
class Dispatcher : public CommitListener, public QueueLeaseListener {
 public:
  struct Options {
    // Deliveries in flight per adapter unless it asks for fewer.
    uint32_t window = 256;
    // Deliveries per target kept in memory; the rest stay in the store.
    uint32_t memory_queue_per_target = 512;
  };

  // `store` and `links` must outlive the dispatcher.
  Dispatcher(Store* store, const LinkRegistry* links, Options options);
  ~Dispatcher() override;

  // Must be called before Start(): where skipped deliveries are removed.
  void SetCommitter(Committer* committer) { committer_ = committer; }

  // Before Start(): queues are sent only once granted (QueueLeaseListener);
  // without it this router owns every queue.
  void UseLeases() { leased_ = true; }

  // Queues this router sends now: every queue with something to send
  // without leases, the queues granted with them.
  size_t owned_queues() const { return owned_count_.load(); }

  // Loads the targets with pending deliveries and starts the thread.
  absl::Status Start();
  void Stop();

  void Attach(std::shared_ptr<AdapterSession> session);
  void Detach(std::shared_ptr<AdapterSession> session);

  // Reads `target_key`'s pending deliveries from the store again from the
  // start (for dead letters put back in their queue with their old ids).
  void Reload(std::string target_key);

  // CommitListener.
  void OnDeliveriesWritten(std::vector<DeliveryRecord> deliveries) override;
  void OnDeliveriesFinished(std::vector<FinishedDelivery> finished) override;
  void OnDeliveriesMoved(std::vector<std::string> target_keys) override;

  // QueueLeaseListener.
  void OnQueuesGranted(std::vector<std::string> target_keys) override;
  void OnQueuesRevoked(std::vector<std::string> target_keys) override;
  void OnLeasesValidUntil(absl::Time until) override;
  void OnQueueWork(const QueueWork& work) override;

 private:
  struct InFlight {
    DeliveryRecord record;
    uint64_t session_id = 0;
  };
  struct TargetQueue {
    std::string key;
    v1::ChannelRef target;
    std::string chat_key;
    std::string route;                   // platform/account
    std::deque<DeliveryRecord> pending;  // sorted by id
    std::map<int64_t, InFlight> in_flight;
    bool more_in_store = false;
    int64_t last_loaded_id = 0;
    absl::Time blocked_until = absl::InfinitePast();
    // Newest queued presence delivery per person.
    absl::flat_hash_map<std::string, int64_t> latest_presence;
    // With leases: whether this router holds the queue's lease. A queue
    // not held keeps only its in-flight deliveries (for the window).
    bool owned = true;
  };
  struct AttachInput {
    std::shared_ptr<AdapterSession> session;
  };
  struct DetachInput {
    std::shared_ptr<AdapterSession> session;
  };
  struct ReloadInput {
    std::string target_key;
  };
  struct GrantInput {
    std::vector<std::string> target_keys;
  };
  struct RevokeInput {
    std::vector<std::string> target_keys;
    std::shared_ptr<absl::Notification> done;
  };
  struct ValidUntilInput {
    absl::Time until;
  };
  using Input =
      std::variant<std::vector<DeliveryRecord>, std::vector<FinishedDelivery>,
                   AttachInput, DetachInput, ReloadInput, GrantInput,
                   RevokeInput, ValidUntilInput, QueueWork>;

  void Post(Input input);
  void Run();
  void Handle(Input& input);
  void HandleWritten(std::vector<DeliveryRecord>& deliveries);
  void HandleFinished(std::vector<FinishedDelivery>& finished);
  void HandleAttach(std::shared_ptr<AdapterSession> session);
  void HandleDetach(const std::shared_ptr<AdapterSession>& session);
  void HandleRevoke(const std::vector<std::string>& target_keys);
  void HandleWork(const QueueWork& work);
  // Marks the queue to be read from the store after its cursor (or, with
  // `reload`, from its start).
  void ReadAgain(TargetQueue& q, bool reload);
  TargetQueue& Queue(const std::string& key, const v1::ChannelRef* target);
  void Enqueue(TargetQueue& q, DeliveryRecord record);
  void InsertSorted(TargetQueue& q, DeliveryRecord record);
  void LoadMore(TargetQueue& q);
  void Pump(TargetQueue& q, absl::Time now);
  // Builds the delivery for `r`; returns false (after queueing its removal)
  // if it must be skipped in this target.
  bool Resolve(TargetQueue& q, const DeliveryRecord& r,
               const AdapterSession& session, v1::Delivery* out);
  void SkipDelivery(TargetQueue& q, const DeliveryRecord& r,
                    absl::string_view why);
  // Frees a window slot of session `session_id`, which had sent a delivery
  // to `target`.
  void Release(uint64_t session_id, const v1::ChannelRef& target);

  Store* const store_;
  const LinkRegistry* const links_;
  const Options options_;
  Committer* committer_ = nullptr;
  std::string router_id_;
  bool leased_ = false;
  std::atomic<size_t> owned_count_{0};

  absl::Mutex mu_;
  std::vector<Input> inputs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // Dispatcher-thread state.
  absl::flat_hash_map<std::string, std::unique_ptr<TargetQueue>> queues_;
  absl::flat_hash_map<std::string, std::shared_ptr<AdapterSession>> routes_;
  absl::flat_hash_map<uint64_t, uint32_t> session_in_flight_;
  std::set<std::string> dirty_;
  std::multimap<absl::Time, std::string> timers_;
  // With leases: until when the queues held may be sent.
  absl::Time leases_valid_until_ = absl::InfinitePast();
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_DISPATCHER_H_
