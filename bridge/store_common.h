#ifndef IMBRIDGE_BRIDGE_STORE_COMMON_H_
#define IMBRIDGE_BRIDGE_STORE_COMMON_H_

// What the store backends (sqlite_store.cc, postgres_store.cc) share: how
// times are stored, router ids, reading a delivery's serialized columns, and
// the pool of read connections.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/store.h"

namespace imbridge::bridge {

// Times are stored as Unix milliseconds; InfinitePast/InfiniteFuture as the
// smallest/largest int64.
int64_t ToStoreMillis(absl::Time t);
absl::Time FromStoreMillis(int64_t ms);

// A new store's router id: 32 random lower-case hex digits.
std::string NewStoreRouterId();

// Fills `record`'s target and event from their serialized columns;
// `payload` is nullopt when the event row is missing. kInternal, naming
// the delivery, if either is corrupt or missing.
absl::Status ParseDeliveryColumns(absl::string_view target,
                                  std::optional<absl::string_view> payload,
                                  DeliveryRecord& record);

// A fixed set of read connections that threads borrow one at a time.
// Thread-safe.
template <typename Connection>
class ConnectionPool {
 public:
  // A borrowed connection, given back when the lease is destroyed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, Connection* conn) : pool_(pool), conn_(conn) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_->Release(conn_); }
    Connection* operator->() const { return conn_; }
    Connection& operator*() const { return *conn_; }

   private:
    ConnectionPool* pool_;
    Connection* conn_;
  };

  // Adds a connection; only before the first Acquire().
  void Add(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&mu_);
    free_.push_back(conn.get());
    all_.push_back(std::move(conn));
  }

  // Borrows a free connection, waiting for one if all are in use.
  Lease Acquire() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::vector<Connection*>* free) { return !free->empty(); },
        &free_));
    Connection* conn = free_.back();
    free_.pop_back();
    return Lease(this, conn);
  }

 private:
  void Release(Connection* conn) {
    absl::MutexLock lock(&mu_);
    free_.push_back(conn);
  }

  absl::Mutex mu_;
  // Every connection; each one is either borrowed or in `free_`.
  std::vector<std::unique_ptr<Connection>> all_ ABSL_GUARDED_BY(mu_);
  std::vector<Connection*> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_STORE_COMMON_H_
