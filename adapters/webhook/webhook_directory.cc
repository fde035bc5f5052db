#include "adapters/webhook/webhook_directory.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace imbridge::adapters::webhook {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
}

std::string KeyDigest(const std::string& key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

GrpcWebhookDirectory::GrpcWebhookDirectory(Options options)
    : options_(std::move(options)),
      cache_(options_.outgoing_cache_size),
      keys_(options_.key_cache_size) {
  for (const std::string& address : options_.addresses) {
    stubs_.push_back(v1::WebhookDirectory::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
  }
  if (stubs_.empty()) {
    // A caller's mistake (the config check requires a router): every call
    // then fails as unreachable instead of crashing.
    stubs_.push_back(v1::WebhookDirectory::NewStub(grpc::CreateChannel(
        "127.0.0.1:1", grpc::InsecureChannelCredentials())));
  }
}

void GrpcWebhookDirectory::Unreachable(size_t router) {
  size_t expected = router;
  preferred_.compare_exchange_strong(expected, (router + 1) % stubs_.size());
}

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

// One CheckIncomingKey call. gRPC calls OnDone last, after it released the
// call; OnDone then frees the ClientContext while the directory (and so its
// channel) is still alive, runs the caller's callback, and only then tells
// the directory that the check is over. After that nothing of the directory
// or of gRPC is touched, so the directory may be destroyed at once.
class GrpcWebhookDirectory::Check final : public grpc::ClientUnaryReactor {
 public:
  // A call at router `router`; `routers_left` more are tried after it if
  // it cannot be reached.
  Check(GrpcWebhookDirectory* directory, CheckDone done, size_t router,
        size_t routers_left)
      : directory_(directory),
        done_(std::move(done)),
        router_(router),
        routers_left_(routers_left) {}

  size_t router() const { return router_; }

  // What the answer is remembered under, if it accepts the key.
  void RememberAs(std::string digest, uint64_t session, uint64_t revocations) {
    digest_ = std::move(digest);
    session_ = session;
    revocations_ = revocations;
  }

  grpc::ClientContext* context() { return &context_; }
  v1::CheckIncomingKeyRequest* request() { return &request_; }
  v1::WebhookInfo* response() { return &response_; }

  void OnDone(const grpc::Status& status) override {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      directory_->Unreachable(router_);
      if (routers_left_ > 0) {
        // The next router answers instead; the check stays in flight.
        auto* next = new Check(directory_, std::move(done_),
                               (router_ + 1) % directory_->stubs_.size(),
                               routers_left_ - 1);
        next->RememberAs(std::move(digest_), session_, revocations_);
        *next->request() = std::move(request_);
        GrpcWebhookDirectory* directory = directory_;
        delete this;
        directory->Send(next);
        return;
      }
    }
    absl::StatusOr<v1::WebhookInfo> answer =
        status.ok() ? absl::StatusOr<v1::WebhookInfo>(std::move(response_))
                    : FromGrpc(status);
    GrpcWebhookDirectory* directory = directory_;
    CheckDone done = std::move(done_);
    if (answer.ok() && session_ != 0) {
      directory->Remember(request_.id(), std::move(digest_), *answer, session_,
                          revocations_);
    }
    delete this;
    // A callback that throws must not take the process down (it runs on a
    // gRPC thread); its HTTP request is then answered by the server's
    // timeout.
    try {
      done(std::move(answer));
    } catch (const std::exception& e) {
      LogError("an incoming webhook's key check failed after its answer",
               {{"error", e.what()}});
    } catch (...) {
      LogError("an incoming webhook's key check failed after its answer");
    }
    // Destroying `done` may release what the caller captured; do it while
    // the check still counts as in flight.
    done = nullptr;
    directory->EndCheck();
  }

 private:
  GrpcWebhookDirectory* const directory_;
  CheckDone done_;
  const size_t router_;
  const size_t routers_left_;
  grpc::ClientContext context_;
  v1::CheckIncomingKeyRequest request_;
  v1::WebhookInfo response_;
  std::string digest_;
  uint64_t session_ = 0;
  uint64_t revocations_ = 0;
};

void GrpcWebhookDirectory::EndCheck() {
  absl::MutexLock lock(&mu_);
  --checks_in_flight_;
}

void GrpcWebhookDirectory::CheckIncomingKey(const std::string& id,
                                            const std::string& key,
                                            CheckDone done) {
  const uint64_t session =
      options_.router_session && options_.key_cache_size > 0
          ? options_.router_session()
          : 0;
  std::string digest;
  uint64_t revocations = 0;
  if (session != 0) {
    digest = KeyDigest(key);
    std::optional<v1::WebhookInfo> known;
    {
      absl::MutexLock lock(&mu_);
      revocations = revocations_;
      const KnownKey* it = keys_.Find(id);
      if (it != nullptr && it->session == session &&
          CRYPTO_memcmp(it->digest.data(), digest.data(), digest.size()) == 0) {
        known = it->webhook;
      }
    }
    if (known.has_value()) {
      done(*std::move(known));
      return;
    }
  }
  // Owned by gRPC until OnDone, which deletes it.
  auto* check =
      new Check(this, std::move(done), preferred_.load(), stubs_.size() - 1);
  check->RememberAs(std::move(digest), session, revocations);
  check->request()->set_id(id);
  check->request()->set_key(key);
  {
    absl::MutexLock lock(&mu_);
    ++checks_in_flight_;
  }
  Send(check);
}

void GrpcWebhookDirectory::Send(Check* check) {
  check->context()->set_deadline(Deadline(options_.check_timeout));
  Authorize(check->context());
  stubs_[check->router()]->async()->CheckIncomingKey(
      check->context(), check->request(), check->response(), check);
  check->StartCall();
}

void GrpcWebhookDirectory::Remember(const std::string& id, std::string digest,
                                    const v1::WebhookInfo& webhook,
                                    uint64_t session, uint64_t revocations) {
  absl::MutexLock lock(&mu_);
  if (revocations != revocations_) return;  // It may be the revoked one.
  keys_.Put(id, KnownKey{std::move(digest), webhook, session});
}

void GrpcWebhookDirectory::Revoke(const std::string& id) {
  absl::MutexLock lock(&mu_);
  keys_.Erase(id);
  ++revocations_;
}

absl::StatusOr<v1::OutgoingWebhook> GrpcWebhookDirectory::GetOutgoing(
    const std::string& id) {
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (const Cached* cached = cache_.Find(id)) {
      if (cached->expires > now) return cached->webhook;
      cache_.Erase(id);
    }
  }
  v1::GetOutgoingRequest request;
  request.set_id(id);
  v1::OutgoingWebhook response;
  grpc::Status status;
  size_t router = preferred_.load();
  for (size_t tried = 0; tried < stubs_.size(); ++tried) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(options_.get_timeout));
    Authorize(&context);
    status = stubs_[router]->GetOutgoing(&context, request, &response);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    Unreachable(router);
    router = (router + 1) % stubs_.size();
  }
  if (!status.ok()) return FromGrpc(status);
  if (options_.outgoing_cache_ttl > absl::ZeroDuration()) {
    absl::MutexLock lock(&mu_);
    cache_.Put(id, Cached{response, now + options_.outgoing_cache_ttl});
  }
  return response;
}

}  // namespace imbridge::adapters::webhook
