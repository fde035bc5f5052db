#ifndef IMBRIDGE_BRIDGE_ADMIN_SERVICE_H_
#define IMBRIDGE_BRIDGE_ADMIN_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bridge/committer.h"
#include "bridge/dispatcher.h"
#include "bridge/link_catalog.h"
#include "bridge/router_service.h"
#include "bridge/store.h"
#include "common/executor.h"
#include "imbridge/v1/admin.grpc.pb.h"

namespace imbridge::bridge {

// The operator API (`imbridgectl`): links, adapters, queues, dead letters,
// webhooks and stats. Every call must carry the admin token
// ("authorization: Bearer <admin token>"), compared in constant time;
// otherwise UNAUTHENTICATED (logged without the token). With no admin token
// configured every call is UNIMPLEMENTED ("the admin API is disabled").
//
// Calls may block (they wait for commits and read the store), so each runs
// on the admin executor, never on a gRPC reaction thread.
//
// Thread-safe. The dependencies must outlive the service.
class AdminService final : public v1::Admin::CallbackService {
 public:
  struct Deps {
    Store* store = nullptr;
    Committer* committer = nullptr;
    Dispatcher* dispatcher = nullptr;
    LinkCatalog* catalog = nullptr;
    RouterService* router = nullptr;
    Executor* executor = nullptr;
    std::string admin_token;  // Empty: the API is disabled.
    absl::Time started_at;
    // Optional (several routers on PostgreSQL): target key -> the router
    // holding the queue's lease (QueueInfo.owner).
    std::function<absl::StatusOr<std::map<std::string, std::string>>()>
        queue_owners;
  };

  explicit AdminService(Deps deps) : deps_(std::move(deps)) {}

  grpc::ServerUnaryReactor* ListLinks(grpc::CallbackServerContext* context,
                                      const v1::ListLinksRequest* request,
                                      v1::ListLinksResponse* response) override;
  grpc::ServerUnaryReactor* GetLink(grpc::CallbackServerContext* context,
                                    const v1::GetLinkRequest* request,
                                    v1::LinkInfo* response) override;
  grpc::ServerUnaryReactor* CreateLink(grpc::CallbackServerContext* context,
                                       const v1::CreateLinkRequest* request,
                                       v1::LinkInfo* response) override;
  grpc::ServerUnaryReactor* UpdateLink(grpc::CallbackServerContext* context,
                                       const v1::UpdateLinkRequest* request,
                                       v1::LinkInfo* response) override;
  grpc::ServerUnaryReactor* DeleteLink(
      grpc::CallbackServerContext* context,
      const v1::DeleteLinkRequest* request,
      v1::DeleteLinkResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(
      grpc::CallbackServerContext* context,
      const v1::ListAdaptersRequest* request,
      v1::ListAdaptersResponse* response) override;
  grpc::ServerUnaryReactor* ListQueues(
      grpc::CallbackServerContext* context,
      const v1::ListQueuesRequest* request,
      v1::ListQueuesResponse* response) override;
  grpc::ServerUnaryReactor* ListDeadLetters(
      grpc::CallbackServerContext* context,
      const v1::ListDeadLettersRequest* request,
      v1::ListDeadLettersResponse* response) override;
  grpc::ServerUnaryReactor* RetryDeadLetters(
      grpc::CallbackServerContext* context,
      const v1::DeadLetterSelection* request,
      v1::DeadLetterActionResponse* response) override;
  grpc::ServerUnaryReactor* DropDeadLetters(
      grpc::CallbackServerContext* context,
      const v1::DeadLetterSelection* request,
      v1::DeadLetterActionResponse* response) override;
  grpc::ServerUnaryReactor* CreateWebhook(
      grpc::CallbackServerContext* context,
      const v1::CreateWebhookRequest* request,
      v1::CreateWebhookResponse* response) override;
  grpc::ServerUnaryReactor* RevokeWebhook(
      grpc::CallbackServerContext* context,
      const v1::RevokeWebhookRequest* request,
      v1::RevokeWebhookResponse* response) override;
  grpc::ServerUnaryReactor* ListWebhooks(
      grpc::CallbackServerContext* context,
      const v1::ListWebhooksRequest* request,
      v1::ListWebhooksResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::Stats* response) override;

 private:
  // Authenticates, then runs `work` on the executor and finishes the call
  // with its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                absl::string_view method,
                                std::function<absl::Status()> work);
  // Retries or drops the selected dead letters; returns how many. With
  // `all`, walks every dead letter, a page per transaction.
  absl::StatusOr<uint32_t> ActOnDeadLetters(const v1::DeadLetterSelection& s,
                                            bool retry);
  // Retries or drops `page` in one transaction on the writer, blocking until
  // it is committed, and adds how many changed to `count`. With
  // `skip_missing`, a dead letter that is gone meanwhile is passed over
  // instead of failing the page.
  absl::Status ActOnDeadLetterPage(const std::vector<DeadLetterRef>& page,
                                   bool retry, bool skip_missing,
                                   uint32_t* count);

  Deps deps_;
};

// Answers the webhook adapter's questions about webhooks. Calls carry an
// adapter token (like Attach) whose credential may attach as platform
// "webhook"; otherwise UNAUTHENTICATED / PERMISSION_DENIED.
//
// Thread-safe; the answers come from memory, so calls finish inline.
class WebhookDirectoryService final
    : public v1::WebhookDirectory::CallbackService {
 public:
  // `executor` runs the key checks, which read the store when several
  // routers share it (never on gRPC's callback threads); it must outlive
  // the gRPC server.
  WebhookDirectoryService(const LinkCatalog* catalog,
                          const RouterService* router, Executor* executor)
      : catalog_(catalog), router_(router), executor_(executor) {}

  grpc::ServerUnaryReactor* CheckIncomingKey(
      grpc::CallbackServerContext* context,
      const v1::CheckIncomingKeyRequest* request,
      v1::WebhookInfo* response) override;
  grpc::ServerUnaryReactor* GetOutgoing(grpc::CallbackServerContext* context,
                                        const v1::GetOutgoingRequest* request,
                                        v1::OutgoingWebhook* response) override;

 private:
  grpc::Status Authorize(grpc::CallbackServerContext* context,
                         absl::string_view method) const;

  const LinkCatalog* const catalog_;
  const RouterService* const router_;
  Executor* const executor_;
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ADMIN_SERVICE_H_
