#ifndef IMBRIDGE_BRIDGE_ROUTER_SERVICE_H_
#define IMBRIDGE_BRIDGE_ROUTER_SERVICE_H_

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/adapter_commands.h"
#include "bridge/blob_store.h"
#include "bridge/committer.h"
#include "bridge/dispatcher.h"
#include "bridge/link_catalog.h"
#include "bridge/publish_sequencer.h"
#include "bridge/store.h"
#include "common/executor.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/router.grpc.pb.h"

namespace imbridge::bridge {

class AttachReactor;

// The Router gRPC service (callback API). Every call must carry a configured
// adapter token ("authorization: Bearer <token>"); otherwise it fails with
// UNAUTHENTICATED and the refusal is logged without the token.
//
// Attach: one reactor per adapter stream; reads are handed to the Committer
// (publishes, delivery results), to AdapterCommands (command answers) and to
// the link executor (link requests) without blocking, writes are chained one at
// a time and whatever queued meanwhile is merged into the next frame.
// PutBlob/GetBlob: file I/O runs on the blob executor, never on a reaction.
//
// Thread-safe. The dependencies must outlive the service.
class RouterService final : public v1::Router::CallbackService {
 public:
  struct Deps {
    Committer* committer = nullptr;
    Dispatcher* dispatcher = nullptr;
    const LinkRegistry* links = nullptr;
    BlobStore* blobs = nullptr;
    Executor* blob_io = nullptr;
    // Adapters' link requests (router.proto LinkRequest) and the executor
    // they run on (they block until committed).
    LinkCatalog* catalog = nullptr;
    Executor* link_io = nullptr;
    // The message map, for link requests' member_thread_roots (null: they
    // are refused).
    Store* store = nullptr;
    // Chat commands addressed to adapters.
    AdapterCommands* adapter_commands = nullptr;
    std::string router_id;
    std::vector<v1::AdapterCredential> credentials;
    // Router-side bound of deliveries in flight per adapter.
    uint32_t window = 256;
  };

  explicit RouterService(Deps deps);

  grpc::ServerBidiReactor<v1::AdapterFrame, v1::RouterFrame>* Attach(
      grpc::CallbackServerContext* context) override;
  grpc::ServerReadReactor<v1::BlobChunk>* PutBlob(
      grpc::CallbackServerContext* context, v1::BlobRef* response) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* GetBlob(
      grpc::CallbackServerContext* context,
      const v1::BlobRef* request) override;

  // Tells every attached adapter of platform "webhook" that `webhook_id`
  // was revoked, and blocks until each has confirmed it (it then refuses
  // the key) or detached. An adapter that has not confirmed within
  // `timeout` is detached; kDeadlineExceeded if it has not even detached
  // `timeout` later.
  absl::Status RevokeWebhookOnAdapters(const std::string& webhook_id,
                                       absl::Duration timeout);

  // Ends every open Attach stream with `status` (for shutdown).
  void CloseAllStreams(const grpc::Status& status);

  const Deps& deps() const { return deps_; }

  // The adapters attached now, in attach order.
  std::vector<std::shared_ptr<AdapterSession>> Sessions();
  // Whether the adapter attached now for `member`'s platform and account
  // has the "threads" capability; std::nullopt when none is attached.
  std::optional<bool> MemberThreads(const v1::LinkMember& member);

  // The credential whose token the call carries, or nullptr (the refusal is
  // logged without the token).
  const v1::AdapterCredential* AuthenticateAdapter(
      const grpc::CallbackServerContext* context,
      absl::string_view method) const;

  // Called by AttachReactor.
  void Unregister(AttachReactor* reactor);
  void RememberSession(std::shared_ptr<AdapterSession> session);
  void ForgetSession(uint64_t id);
  uint64_t NextSessionId() { return next_session_id_.fetch_add(1) + 1; }

 private:
  Deps deps_;
  std::atomic<uint64_t> next_session_id_{0};
  absl::Mutex mu_;
  absl::flat_hash_set<AttachReactor*> streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<AdapterSession>> sessions_
      ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

// The token of "authorization: Bearer <token>" (empty when absent).
std::string BearerToken(const grpc::CallbackServerContext* context);

// Compares a configured token with a presented one in constant time (for
// equal lengths); an empty expected token never matches.
bool TokenEquals(absl::string_view expected, absl::string_view given);

// Appends `from`'s entries (acks, deliveries, ...) to `to`, in order, as
// `to->MergeFrom(*from)` would, but moves them instead of copying them;
// `from` is left empty. Both must be on the heap (no arena). The Attach
// reactor merges the frames queued during a write with it.
void AppendFrame(v1::RouterFrame* from, v1::RouterFrame* to);

// absl::Status -> grpc::Status, keeping the code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ROUTER_SERVICE_H_
