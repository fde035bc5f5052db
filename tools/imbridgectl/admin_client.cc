#include "tools/imbridgectl/admin_client.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace imbridge::ctl {

AdminClient::AdminClient(std::shared_ptr<grpc::Channel> channel,
                         std::string token, absl::Duration timeout)
    : stub_(v1::Admin::NewStub(std::move(channel))),
      token_(std::move(token)),
      timeout_(timeout) {}

std::shared_ptr<grpc::Channel> AdminClient::Connect(
    const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

template <typename Request, typename Response>
absl::StatusOr<Response> AdminClient::Call(
    grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*,
                                            const Request&, Response*),
    const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout_));
  if (!token_.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
  Response response;
  grpc::Status status = ((*stub_).*method)(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

absl::StatusOr<v1::ListLinksResponse> AdminClient::ListLinks() {
  return Call(&v1::Admin::Stub::ListLinks, v1::ListLinksRequest());
}

absl::StatusOr<v1::LinkInfo> AdminClient::GetLink(const std::string& name) {
  v1::GetLinkRequest request;
  request.set_name(name);
  return Call(&v1::Admin::Stub::GetLink, request);
}

absl::StatusOr<v1::LinkInfo> AdminClient::CreateLink(const v1::Link& link) {
  v1::CreateLinkRequest request;
  *request.mutable_link() = link;
  return Call(&v1::Admin::Stub::CreateLink, request);
}

absl::StatusOr<v1::LinkInfo> AdminClient::UpdateLink(const v1::Link& link) {
  v1::UpdateLinkRequest request;
  *request.mutable_link() = link;
  return Call(&v1::Admin::Stub::UpdateLink, request);
}

absl::Status AdminClient::DeleteLink(const std::string& name) {
  v1::DeleteLinkRequest request;
  request.set_name(name);
  return Call(&v1::Admin::Stub::DeleteLink, request).status();
}

absl::StatusOr<v1::ListAdaptersResponse> AdminClient::ListAdapters() {
  return Call(&v1::Admin::Stub::ListAdapters, v1::ListAdaptersRequest());
}

absl::StatusOr<v1::ListQueuesResponse> AdminClient::ListQueues() {
  return Call(&v1::Admin::Stub::ListQueues, v1::ListQueuesRequest());
}

absl::StatusOr<v1::ListDeadLettersResponse> AdminClient::ListDeadLetters(
    uint32_t limit, uint64_t before_id) {
  v1::ListDeadLettersRequest request;
  request.set_limit(limit);
  request.set_before_id(before_id);
  return Call(&v1::Admin::Stub::ListDeadLetters, request);
}

absl::StatusOr<v1::DeadLetterActionResponse> AdminClient::RetryDeadLetters(
    const v1::DeadLetterSelection& selection) {
  return Call(&v1::Admin::Stub::RetryDeadLetters, selection);
}

absl::StatusOr<v1::DeadLetterActionResponse> AdminClient::DropDeadLetters(
    const v1::DeadLetterSelection& selection) {
  return Call(&v1::Admin::Stub::DropDeadLetters, selection);
}

absl::StatusOr<v1::CreateWebhookResponse> AdminClient::CreateWebhook(
    const v1::CreateWebhookRequest& request) {
  return Call(&v1::Admin::Stub::CreateWebhook, request);
}

absl::Status AdminClient::RevokeWebhook(const std::string& id) {
  v1::RevokeWebhookRequest request;
  request.set_id(id);
  return Call(&v1::Admin::Stub::RevokeWebhook, request).status();
}

absl::StatusOr<v1::ListWebhooksResponse> AdminClient::ListWebhooks(
    bool include_revoked) {
  v1::ListWebhooksRequest request;
  request.set_include_revoked(include_revoked);
  return Call(&v1::Admin::Stub::ListWebhooks, request);
}

absl::StatusOr<v1::Stats> AdminClient::GetStats() {
  return Call(&v1::Admin::Stub::GetStats, v1::GetStatsRequest());
}

}  // namespace imbridge::ctl
