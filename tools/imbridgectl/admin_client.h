#ifndef IMBRIDGE_TOOLS_IMBRIDGECTL_ADMIN_CLIENT_H_
#define IMBRIDGE_TOOLS_IMBRIDGECTL_ADMIN_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "imbridge/v1/admin.grpc.pb.h"

namespace imbridge::ctl {

// A blocking client of the router's Admin service: every call carries
// "authorization: Bearer <token>" and the deadline `timeout`, does not wait
// for an unreachable router to come up (UNAVAILABLE at once), and returns
// the router's answer or its gRPC status as an absl::Status with the same
// code and message.
//
// Thread-safe (calls may run concurrently); each call blocks up to
// `timeout`.
class AdminClient {
 public:
  AdminClient(std::shared_ptr<grpc::Channel> channel, std::string token,
              absl::Duration timeout);

  // An insecure channel to `address` (host:port).
  static std::shared_ptr<grpc::Channel> Connect(const std::string& address);

  absl::StatusOr<v1::ListLinksResponse> ListLinks();
  absl::StatusOr<v1::LinkInfo> GetLink(const std::string& name);
  absl::StatusOr<v1::LinkInfo> CreateLink(const v1::Link& link);
  absl::StatusOr<v1::LinkInfo> UpdateLink(const v1::Link& link);
  absl::Status DeleteLink(const std::string& name);
  absl::StatusOr<v1::ListAdaptersResponse> ListAdapters();
  absl::StatusOr<v1::ListQueuesResponse> ListQueues();
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      uint32_t limit, uint64_t before_id);
  absl::StatusOr<v1::DeadLetterActionResponse> RetryDeadLetters(
      const v1::DeadLetterSelection& selection);
  absl::StatusOr<v1::DeadLetterActionResponse> DropDeadLetters(
      const v1::DeadLetterSelection& selection);
  absl::StatusOr<v1::CreateWebhookResponse> CreateWebhook(
      const v1::CreateWebhookRequest& request);
  absl::Status RevokeWebhook(const std::string& id);
  absl::StatusOr<v1::ListWebhooksResponse> ListWebhooks(bool include_revoked);
  absl::StatusOr<v1::Stats> GetStats();

 private:
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*,
                                              const Request&, Response*),
      const Request& request);

  std::unique_ptr<v1::Admin::Stub> stub_;
  const std::string token_;
  const absl::Duration timeout_;
};

}  // namespace imbridge::ctl

#endif  // IMBRIDGE_TOOLS_IMBRIDGECTL_ADMIN_CLIENT_H_
