#ifndef IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_DIRECTORY_H_
#define IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_DIRECTORY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/bounded_cache.h"
#include "grpcpp/grpcpp.h"
#include "imbridge/v1/admin.grpc.pb.h"

namespace imbridge::adapters::webhook {

// What the webhook adapter asks the router about webhooks: whether an
// incoming request's API key is valid, and where (and with which secret) an
// outgoing webhook posts. The router keeps the webhooks (created with
// `imbridgectl webhook create`); this is the adapter's view of them.
//
// Thread-safe.
class WebhookDirectory {
 public:
  virtual ~WebhookDirectory() = default;

  // Asks whether `key` is the API key of the incoming webhook `id`. A
  // revoked key fails from the moment the router answered the revoke call.
  // Does not block: `done` runs once, inside this call or on another
  // thread, with the webhook or with kPermissionDenied (an unknown id, a
  // wrong key and a revoked webhook look the same),
  // kUnavailable/kDeadlineExceeded (the router is unreachable), or another
  // error.
  using CheckDone = std::function<void(absl::StatusOr<v1::WebhookInfo>)>;
  virtual void CheckIncomingKey(const std::string& id, const std::string& key,
                                CheckDone done) = 0;

  // The URL and signing secret of outgoing webhook `id`. May block on a
  // call to the router. kNotFound for an unknown id, kFailedPrecondition for
  // a revoked one, kUnavailable/kDeadlineExceeded when the router is
  // unreachable.
  virtual absl::StatusOr<v1::OutgoingWebhook> GetOutgoing(
      const std::string& id) = 0;
};

// WebhookDirectory over the router's WebhookDirectory gRPC service,
// authenticated with the adapter's token. GetOutgoing answers are reused for
// `outgoing_cache_ttl`, at most `outgoing_cache_size` of them (failures are
// not cached).
//
// Keys the router accepted are remembered (a SHA-256 of the key, per
// webhook, at most `key_cache_size` webhooks) for as long as the adapter's
// Attach stream that was established when the router answered lasts
// (`router_session`), so that a request with a known key is answered
// without a call. The router pushes each revocation over that stream and
// answers the revoke call only after the adapter applied it (Revoke()); a
// new stream starts with nothing remembered, because a revocation may have
// been missed while detached. Wrong keys are never remembered.
class GrpcWebhookDirectory : public WebhookDirectory {
 public:
  struct Options {
    // Every router's address, host:port, in config order (at least one).
    // Calls go to one router at a time; a call that finds it unreachable
    // (UNAVAILABLE) is made again at the next router, which later calls
    // then go to first. Every router answers alike: they share the store.
    std::vector<std::string> addresses;
    // The adapter's token. Never logged.
    std::string token;
    // Deadline of CheckIncomingKey.
    absl::Duration check_timeout = absl::Seconds(5);
    // Deadline of GetOutgoing.
    absl::Duration get_timeout = absl::Seconds(5);
    // How long a GetOutgoing answer is reused.
    absl::Duration outgoing_cache_ttl = absl::Seconds(5);
    // How many GetOutgoing answers are kept at most (the least recently
    // used go first).
    size_t outgoing_cache_size = 1024;
    // The router client's current stream (RouterClient::session(); 0 while
    // detached). Unset: keys are not remembered.
    std::function<uint64_t()> router_session;
    // Webhooks whose accepted key is remembered; 0 remembers none.
    size_t key_cache_size = 4096;
  };

  explicit GrpcWebhookDirectory(Options options);
  ~GrpcWebhookDirectory() override;  // Calls WaitIdle().

  // Blocks until every CheckIncomingKey call has ended and its callback has
  // returned (at most the check timeout plus the callback's own time). For
  // shutdown, after the HTTP server stopped taking requests. The destructor
  // waits the same way, so a callback must not destroy the directory.
  void WaitIdle();

  void CheckIncomingKey(const std::string& id, const std::string& key,
                        CheckDone done) override;
  absl::StatusOr<v1::OutgoingWebhook> GetOutgoing(
      const std::string& id) override;

  // Forgets the key of webhook `id` (the router revoked it); a check that
  // is running now is not remembered either. Call from
  // RouterClient::OnWebhookRevoked.
  void Revoke(const std::string& id);

 private:
  struct Cached {
    v1::OutgoingWebhook webhook;
    absl::Time expires;
  };

  // A key the router accepted, on stream `session`.
  struct KnownKey {
    std::string digest;  // SHA-256 of the key
    v1::WebhookInfo webhook;
    uint64_t session = 0;
  };

  class Check;

  // Remembers what a check started on stream `session` learned, unless a
  // revocation came in since it started (`revocations` then).
  void Remember(const std::string& id, std::string digest,
                const v1::WebhookInfo& webhook, uint64_t session,
                uint64_t revocations);

  void Authorize(grpc::ClientContext* context) const;
  // Starts `check`'s call at its router.
  void Send(Check* check);
  // Router `router` could not be reached: later calls go to the next one
  // first (unless another call moved on already).
  void Unreachable(size_t router);
  // Called by a Check as the last thing it does.
  void EndCheck();

  const Options options_;
  // One per router, in Options::addresses order.
  std::vector<std::unique_ptr<v1::WebhookDirectory::Stub>> stubs_;
  // The router calls go to first.
  std::atomic<size_t> preferred_{0};
  absl::Mutex mu_;
  BoundedCache<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  int checks_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  BoundedCache<std::string, KnownKey> keys_ ABSL_GUARDED_BY(mu_);
  // Revocations applied so far.
  uint64_t revocations_ ABSL_GUARDED_BY(mu_) = 0;
};

// gRPC's status as an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace imbridge::adapters::webhook

#endif  // IMBRIDGE_ADAPTERS_WEBHOOK_WEBHOOK_DIRECTORY_H_
