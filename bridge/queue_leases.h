#ifndef IMBRIDGE_BRIDGE_QUEUE_LEASES_H_
#define IMBRIDGE_BRIDGE_QUEUE_LEASES_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/postgres_store.h"

namespace imbridge::bridge {

// The NOTIFY channel on which a commit names the queues it gave work to.
inline constexpr char kQueueWorkChannel[] = "imbridge_queues";
// The NOTIFY channel on which a commit says that operator records (runtime
// links, webhooks) changed; the payload is the record kind.
inline constexpr char kRecordsChannel[] = "imbridge_records";

// Work committed for queues, as a NOTIFY payload carries it.
struct QueueWork {
  // Queues that got new deliveries (read after the queue's cursor).
  std::vector<std::string> written;
  // Queues that got deliveries with old ids (a dead letter retried, parked
  // deliveries moved): read again from the start.
  std::vector<std::string> reload;
  // The payload was too long for NOTIFY: every queue may have new work
  // (reload says whether from the start).
  bool all = false;
};

// The payload naming `work` (JSON; {"all":true,...} when the list would
// not fit in a NOTIFY payload).
std::string QueueWorkPayload(const QueueWork& work);
// Reads a payload; a payload it cannot read means "every queue, from the
// start" (never lose a wake-up).
QueueWork ParseQueueWork(absl::string_view payload);

// Told what the leases decide. Called on the lease thread (or the caller of
// QueueLeases::Tick); implementations must not block for long.
class QueueLeaseListener {
 public:
  virtual ~QueueLeaseListener() = default;
  // This router now holds these queues: dispatch them from the committed
  // state (their pending deliveries, from the lowest id).
  virtual void OnQueuesGranted(std::vector<std::string> target_keys) = 0;
  // This router no longer holds these queues: stop sending them before
  // returning (what is already in flight is only recorded when answered).
  virtual void OnQueuesRevoked(std::vector<std::string> target_keys) = 0;
  // Every held queue may be sent until `until` (this router's clock); after
  // it none may be, unless a later call extends it. Called after each
  // renewal.
  virtual void OnLeasesValidUntil(absl::Time until) = 0;
  // Another commit (maybe another router's) gave work to held queues.
  virtual void OnQueueWork(const QueueWork& work) = 0;
};

// Leases of the outbox's target queues in a PostgreSQL database shared by
// several routers: each queue is dispatched by exactly one live router.
//
// Design (docs/scaling.md): lease rows with an expiry, not session advisory
// locks, so that a router cut off by the network loses its queues by the
// clock, within the TTL, rather than when the server notices its dead TCP
// connection (minutes). Each router has a `routers` row it renews with its
// leases; expiries are the database server's time, so routers' clocks need
// not agree. Each round (every `renew_every`), on one connection:
//   1. the router's row and its unexpired leases get expires_at = now + ttl;
//      a lease that expired before is lost (another router may hold it);
//   2. the queues are the targets the router knows (`known_queues`, the
//      linked channels) and every target with pending deliveries; the live
//      routers are the unexpired `routers` rows; each router may hold
//      ceil(queues / live routers);
//   3. a router above that gives back its surplus (after the listener
//      stopped sending them); one below it claims queues whose lease is
//      missing or expired (INSERT ... ON CONFLICT DO UPDATE ... WHERE
//      expired: of two claimants one wins).
// A router sends a queue only while its own clock is before
// (the send time of the last successful renewal + ttl), which is never
// after the expiry the server wrote, so two routers never send one queue at
// once (deliveries already in flight excepted; they carry their
// idempotency key). A dead router's queues are claimed at the first round
// after their expiry: within ttl + renew_every (1.25 s + 0.5 s) of its last
// renewal. The same connection LISTENs on kQueueWorkChannel and hands what
// arrives to the listener, and on kRecordsChannel for `records_changed`.
//
// Thread-safety: Start()/Stop() from one thread; owned() from any;
// Tick() is for tests that drive rounds themselves (without Start()).
class QueueLeases {
 public:
  struct Options {
    // This router's name in the `routers` table: unique among the routers
    // sharing the database (MakeRouterInstanceName()).
    std::string router_name;
    absl::Duration renew_every = absl::Milliseconds(500);
    absl::Duration ttl = absl::Milliseconds(1250);
    // The queues this router knows besides those with pending deliveries
    // (the linked channels); called each round. Optional.
    std::function<std::vector<std::string>()> known_queues;
    // Whether a queue is dispatched at all (parked queues are not); queues
    // it refuses are never leased. Optional: all are.
    std::function<bool(const std::string&)> dispatchable;
    // Called when another commit (maybe another router's) changed operator
    // records (kRecordsChannel), and whenever the LISTEN connection is made
    // (the first time included): notifications sent while nobody listened
    // are gone, so the records must be read again. Called on the lease
    // thread; must not block. Optional.
    std::function<void()> records_changed;
  };

  // Connects (the connection of `store`'s options, with the store's schema
  // already migrated by OpenPostgresStore). Does not run a round.
  static absl::StatusOr<std::unique_ptr<QueueLeases>> Open(
      const PostgresStoreOptions& store, Options options,
      QueueLeaseListener* listener);
  ~QueueLeases();

  // Runs rounds every renew_every on a thread of its own until Stop().
  void Start();
  // Stops the rounds and gives every lease back (revoking them first), so
  // that the other routers take the queues over at their next round.
  void Stop();

  // One round (see the class comment); then the notifications that arrived.
  absl::Status Tick();
  // Gives every lease back and deletes this router's row (Stop() does it).
  absl::Status ReleaseAll();

  // The queues held after the last round, sorted.
  std::vector<std::string> owned() const;

  // Who holds each leased queue now, as the database says: target key ->
  // router name (unexpired leases only). Thread-safe; reads on a connection
  // of its own (one round trip), for the Admin API.
  absl::StatusOr<std::map<std::string, std::string>> Holders();
  const std::string& router_name() const { return options_.router_name; }

 private:
  class Impl;
  QueueLeases(Options options, std::unique_ptr<Impl> impl);
  void Run();

  const Options options_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A name for this router process among those sharing a database:
// "<host>:<pid>:<random>".
std::string MakeRouterInstanceName();

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_QUEUE_LEASES_H_
