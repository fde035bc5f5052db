// GrpcWebhookDirectory against a fake WebhookDirectory gRPC service: the
// adapter token, the answers, the outgoing cache, and the lifetime of
// asynchronous key checks (a directory destroyed right after its checks
// answered, or while they are still running).

#include "adapters/webhook/webhook_directory.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::webhook {
namespace {

// A WebhookDirectory gRPC service that requires the adapter token. Key
// checks can be made to take `check_delay` first.
class FakeDirectoryService final : public v1::WebhookDirectory::Service {
 public:
  grpc::Status CheckIncomingKey(grpc::ServerContext* context,
                                const v1::CheckIncomingKeyRequest* request,
                                v1::WebhookInfo* response) override {
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      delay = check_delay_;
    }
    absl::SleepFor(delay);
    {
      absl::MutexLock lock(&mu_);
      ++check_calls_;
    }
    if (!Authorized(context)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
    if (request->id() != "wh1" || request->key() != "good-key") {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no");
    }
    response->set_id("wh1");
    response->set_direction(v1::INCOMING);
    return grpc::Status::OK;
  }
  grpc::Status GetOutgoing(grpc::ServerContext* context,
                           const v1::GetOutgoingRequest* request,
                           v1::OutgoingWebhook* response) override {
    if (!Authorized(context)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
    absl::MutexLock lock(&mu_);
    ++get_calls_;
    if (request->id() != "out1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown webhook");
    }
    response->mutable_webhook()->set_id("out1");
    response->mutable_webhook()->set_url("http://127.0.0.1:9/x");
    response->set_secret("s3cret");
    return grpc::Status::OK;
  }
  int check_calls() {
    absl::MutexLock lock(&mu_);
    return check_calls_;
  }
  int get_calls() {
    absl::MutexLock lock(&mu_);
    return get_calls_;
  }
  void set_check_delay(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    check_delay_ = delay;
  }

 private:
  static bool Authorized(grpc::ServerContext* context) {
    auto it = context->client_metadata().find("authorization");
    return it != context->client_metadata().end() &&
           std::string(it->second.data(), it->second.size()) ==
               "Bearer adapter-token";
  }
  absl::Mutex mu_;
  int get_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int check_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration check_delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

// The fake service on 127.0.0.1, port 0.
class TestServer {
 public:
  explicit TestServer(FakeDirectoryService* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() {
    if (server_ != nullptr) server_->Shutdown();
  }
  bool ok() const { return server_ != nullptr; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

GrpcWebhookDirectory::Options Options(const std::string& address,
                                      const std::string& token) {
  GrpcWebhookDirectory::Options o;
  o.addresses = {address};
  o.token = token;
  return o;
}

absl::StatusOr<v1::WebhookInfo> Check(GrpcWebhookDirectory& directory,
                                      const std::string& id,
                                      const std::string& key) {
  absl::Notification done;
  absl::StatusOr<v1::WebhookInfo> result;
  directory.CheckIncomingKey(id, key,
                             [&](absl::StatusOr<v1::WebhookInfo> answer) {
                               result = std::move(answer);
                               done.Notify();
                             });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  return result;
}

// Answers of several concurrent checks, each recorded by its callback.
struct CheckAnswers {
  absl::Mutex mu;
  std::vector<absl::StatusCode> codes ABSL_GUARDED_BY(mu);

  void StartChecks(GrpcWebhookDirectory* directory, int count) {
    for (int i = 0; i < count; ++i) {
      directory->CheckIncomingKey(
          "wh1", i % 2 == 0 ? "good-key" : "bad-key",
          [this](absl::StatusOr<v1::WebhookInfo> answer) {
            absl::MutexLock lock(&mu);
            codes.push_back(answer.status().code());
          });
    }
  }
  size_t size() {
    absl::MutexLock lock(&mu);
    return codes.size();
  }
  bool WaitFor(size_t count) {
    absl::MutexLock lock(&mu);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return codes.size() >= count;
    };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
  }
};

TEST(GrpcWebhookDirectoryTest, RemembersAcceptedKeysWhileTheStreamLasts) {
  FakeDirectoryService service;
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  std::atomic<uint64_t> session{1};
  GrpcWebhookDirectory::Options options =
      Options(server.address(), "adapter-token");
  options.router_session = [&session] { return session.load(); };
  GrpcWebhookDirectory directory(options);
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  absl::StatusOr<v1::WebhookInfo> known = Check(directory, "wh1", "good-key");
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(known->id(), "wh1");
  EXPECT_EQ(service.check_calls(), 1);
  // Wrong keys are asked about every time.
  EXPECT_EQ(Check(directory, "wh1", "bad").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Check(directory, "wh1", "bad").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(service.check_calls(), 3);
  // A revocation pushed by the router: the next request asks again.
  directory.Revoke("wh1");
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  EXPECT_EQ(service.check_calls(), 4);
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  EXPECT_EQ(service.check_calls(), 4);
  // A new stream (revocations may have been missed in between), and no
  // stream at all.
  session = 2;
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  EXPECT_EQ(service.check_calls(), 5);
  session = 0;
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  EXPECT_EQ(service.check_calls(), 7);
}

// A check the router answered before a revocation that the adapter applied
// while the answer was on its way is not remembered.
TEST(GrpcWebhookDirectoryTest, ACheckRunningDuringARevocationIsNotRemembered) {
  FakeDirectoryService service;
  service.set_check_delay(absl::Milliseconds(300));
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  GrpcWebhookDirectory::Options options =
      Options(server.address(), "adapter-token");
  options.router_session = [] { return uint64_t{1}; };
  GrpcWebhookDirectory directory(options);
  absl::Notification answered;
  directory.CheckIncomingKey("wh1", "good-key",
                             [&](absl::StatusOr<v1::WebhookInfo> answer) {
                               EXPECT_TRUE(answer.ok());
                               answered.Notify();
                             });
  // The fake answers only after its delay: the revocation comes first.
  directory.Revoke("wh1");
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(30)));
  directory.WaitIdle();
  service.set_check_delay(absl::ZeroDuration());
  ASSERT_TRUE(Check(directory, "wh1", "good-key").ok());
  EXPECT_EQ(service.check_calls(), 2);
}

TEST(GrpcWebhookDirectoryTest, ChecksKeysWithTheAdapterToken) {
  FakeDirectoryService service;
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  GrpcWebhookDirectory directory(Options(server.address(), "adapter-token"));
  absl::StatusOr<v1::WebhookInfo> ok = Check(directory, "wh1", "good-key");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->id(), "wh1");
  EXPECT_EQ(Check(directory, "wh1", "bad").status().code(),
            absl::StatusCode::kPermissionDenied);
  GrpcWebhookDirectory wrong(Options(server.address(), "wrong-token"));
  EXPECT_EQ(Check(wrong, "wh1", "good-key").status().code(),
            absl::StatusCode::kUnauthenticated);
}

// The race of issue 11: the callback used to notify its waiter before it let
// go of the directory's mutex and of its ClientContext, so a directory (and
// the whole gRPC library with it) destroyed right after the answer could be
// used after it was gone. Every round builds and tears down everything.
TEST(GrpcWebhookDirectoryTest, DestroyedRightAfterItsChecksAnswered) {
  constexpr int kRounds = 400;
  constexpr int kChecks = 4;
  for (int round = 0; round < kRounds; ++round) {
    FakeDirectoryService service;
    TestServer server(&service);
    ASSERT_TRUE(server.ok());
    CheckAnswers answers;
    {
      GrpcWebhookDirectory directory(
          Options(server.address(), "adapter-token"));
      answers.StartChecks(&directory, kChecks);
      ASSERT_TRUE(answers.WaitFor(kChecks)) << "round " << round;
    }
    absl::MutexLock lock(&answers.mu);
    EXPECT_EQ(answers.codes.size(), kChecks);
    for (absl::StatusCode code : answers.codes) {
      EXPECT_TRUE(code == absl::StatusCode::kOk ||
                  code == absl::StatusCode::kPermissionDenied)
          << absl::StatusCodeToString(code);
    }
  }
}

// Stopping while checks are still running: destruction waits for every
// check's callback, and each one still gets its answer.
TEST(GrpcWebhookDirectoryTest, DestroyedWhileChecksAreRunning) {
  constexpr int kRounds = 60;
  constexpr int kChecks = 6;
  for (int round = 0; round < kRounds; ++round) {
    FakeDirectoryService service;
    service.set_check_delay(absl::Milliseconds(round % 5));
    TestServer server(&service);
    ASSERT_TRUE(server.ok());
    CheckAnswers answers;
    {
      GrpcWebhookDirectory directory(
          Options(server.address(), "adapter-token"));
      answers.StartChecks(&directory, kChecks);
    }
    // No waiting: the directory's destructor did.
    EXPECT_EQ(answers.size(), kChecks) << "round " << round;
  }
}

// A check that outlives its deadline ends with kDeadlineExceeded, and
// WaitIdle returns once it did.
TEST(GrpcWebhookDirectoryTest, WaitIdleWaitsForACheckPastItsDeadline) {
  FakeDirectoryService service;
  service.set_check_delay(absl::Seconds(2));
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  GrpcWebhookDirectory::Options options =
      Options(server.address(), "adapter-token");
  options.check_timeout = absl::Milliseconds(200);
  GrpcWebhookDirectory directory(options);
  CheckAnswers answers;
  answers.StartChecks(&directory, 2);
  directory.WaitIdle();
  absl::MutexLock lock(&answers.mu);
  ASSERT_EQ(answers.codes.size(), 2);
  EXPECT_EQ(answers.codes[0], absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(answers.codes[1], absl::StatusCode::kDeadlineExceeded);
}

TEST(GrpcWebhookDirectoryTest, CachesOutgoingAnswersButNotFailures) {
  FakeDirectoryService service;
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  GrpcWebhookDirectory::Options options =
      Options(server.address(), "adapter-token");
  options.outgoing_cache_ttl = absl::Milliseconds(300);
  GrpcWebhookDirectory directory(options);
  ASSERT_TRUE(directory.GetOutgoing("out1").ok());
  absl::StatusOr<v1::OutgoingWebhook> again = directory.GetOutgoing("out1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->secret(), "s3cret");
  EXPECT_EQ(service.get_calls(), 1);
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_TRUE(directory.GetOutgoing("out1").ok());
  EXPECT_EQ(service.get_calls(), 2);

  EXPECT_EQ(directory.GetOutgoing("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(directory.GetOutgoing("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(service.get_calls(), 4);
}

TEST(GrpcWebhookDirectoryDownTest, UnreachableRouterIsUnavailable) {
  GrpcWebhookDirectory::Options options;
  options.addresses = {"127.0.0.1:1"};
  options.token = "t";
  GrpcWebhookDirectory directory(options);
  EXPECT_EQ(Check(directory, "a", "b").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(directory.GetOutgoing("x").status().code(),
            absl::StatusCode::kUnavailable);
}

// With several routers, a router that cannot be reached is skipped: the
// check and the lookup are made again at the next one, and later calls go
// there first.
TEST(GrpcWebhookDirectoryTest, CallsMoveToTheNextRouterWhenOneIsUnreachable) {
  FakeDirectoryService service;
  TestServer server(&service);
  ASSERT_TRUE(server.ok());
  GrpcWebhookDirectory::Options options =
      Options(server.address(), "adapter-token");
  options.addresses = {"127.0.0.1:1", server.address()};
  options.outgoing_cache_ttl = absl::ZeroDuration();
  GrpcWebhookDirectory directory(options);
  absl::StatusOr<v1::WebhookInfo> ok = Check(directory, "wh1", "good-key");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Check(directory, "wh1", "bad").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(service.check_calls(), 2);
  ASSERT_TRUE(directory.GetOutgoing("out1").ok());
  EXPECT_EQ(directory.GetOutgoing("nope").status().code(),
            absl::StatusCode::kNotFound);

  // The reachable router first, the unreachable one after it: the same.
  options.addresses = {server.address(), "127.0.0.1:1"};
  GrpcWebhookDirectory reversed(options);
  ASSERT_TRUE(Check(reversed, "wh1", "good-key").ok());
  ASSERT_TRUE(reversed.GetOutgoing("out1").ok());
}

}  // namespace
}  // namespace imbridge::adapters::webhook
