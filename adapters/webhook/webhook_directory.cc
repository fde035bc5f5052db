#include "adapters/webhook/webhook_directory.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace imbridge::adapters::webhook {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

GrpcWebhookDirectory::GrpcWebhookDirectory(Options options)
    : options_(std::move(options)),
      stub_(v1::WebhookDirectory::NewStub(grpc::CreateChannel(
          options_.address, grpc::InsecureChannelCredentials()))) {}

GrpcWebhookDirectory::~GrpcWebhookDirectory() { WaitIdle(); }

void GrpcWebhookDirectory::WaitIdle() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &checks_in_flight_));
}

void GrpcWebhookDirectory::Authorize(grpc::ClientContext* context) const {
  context->AddMetadata("authorization",
                       absl::StrCat("Bearer ", options_.token));
}

void GrpcWebhookDirectory::CheckIncomingKey(const std::string& id,
                                            const std::string& key,
                                            CheckDone done) {
  // Everything the asynchronous call needs lives until its callback.
  struct Call {
    grpc::ClientContext context;
    v1::CheckIncomingKeyRequest request;
    v1::WebhookInfo response;
    CheckDone done;
  };
  auto call = std::make_shared<Call>();
  call->request.set_id(id);
  call->request.set_key(key);
  call->done = std::move(done);
  call->context.set_deadline(Deadline(options_.check_timeout));
  Authorize(&call->context);
  {
    absl::MutexLock lock(&mu_);
    ++checks_in_flight_;
  }
  stub_->async()->CheckIncomingKey(&call->context, &call->request,
                                   &call->response,
                                   [this, call](grpc::Status status) {
                                     if (status.ok()) {
                                       call->done(std::move(call->response));
                                     } else {
                                       call->done(FromGrpc(status));
                                     }
                                     call->done = nullptr;
                                     absl::MutexLock lock(&mu_);
                                     --checks_in_flight_;
                                   });
}

absl::StatusOr<v1::OutgoingWebhook> GrpcWebhookDirectory::GetOutgoing(
    const std::string& id) {
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
      if (it->second.expires > now) return it->second.webhook;
      cache_.erase(it);
    }
  }
  grpc::ClientContext context;
  context.set_deadline(Deadline(options_.get_timeout));
  Authorize(&context);
  v1::GetOutgoingRequest request;
  request.set_id(id);
  v1::OutgoingWebhook response;
  grpc::Status status = stub_->GetOutgoing(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  if (options_.outgoing_cache_ttl > absl::ZeroDuration()) {
    absl::MutexLock lock(&mu_);
    cache_[id] = Cached{response, now + options_.outgoing_cache_ttl};
  }
  return response;
}

}  // namespace imbridge::adapters::webhook
