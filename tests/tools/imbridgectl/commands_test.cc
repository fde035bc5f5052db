// imbridgectl's commands against an in-process Admin service: what is sent
// (token, request), what is printed, and the exit statuses.

#include "tools/imbridgectl/commands.h"

#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAdminToken[] = "admin-token-for-tests";

// An Admin service that checks the token like the router does and records
// the last request of each kind.
class FakeAdmin final : public v1::Admin::Service {
 public:
  grpc::Status ListLinks(grpc::ServerContext* context,
                         const v1::ListLinksRequest*,
                         v1::ListLinksResponse* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    v1::LinkInfo* info = response->add_links();
    info->mutable_link()->set_name("support");
    info->set_source(v1::CONFIG);
    return grpc::Status::OK;
  }
  grpc::Status GetLink(grpc::ServerContext* context,
                       const v1::GetLinkRequest* request,
                       v1::LinkInfo* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    if (request->name() != "support") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no link '", request->name(), "'"));
    }
    response->mutable_link()->set_name("support");
    return grpc::Status::OK;
  }
  grpc::Status CreateLink(grpc::ServerContext* context,
                          const v1::CreateLinkRequest* request,
                          v1::LinkInfo* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    created_link_ = request->link();
    *response->mutable_link() = request->link();
    response->set_source(v1::RUNTIME);
    return grpc::Status::OK;
  }
  grpc::Status UpdateLink(grpc::ServerContext* context,
                          const v1::UpdateLinkRequest* request,
                          v1::LinkInfo*) override {
    if (auto s = Check(context); !s.ok()) return s;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("link '", request->link().name(),
                                     "' is defined in the config file"));
  }
  grpc::Status DeleteLink(grpc::ServerContext* context,
                          const v1::DeleteLinkRequest* request,
                          v1::DeleteLinkResponse*) override {
    if (auto s = Check(context); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    deleted_ = request->name();
    return grpc::Status::OK;
  }
  grpc::Status RetryDeadLetters(
      grpc::ServerContext* context, const v1::DeadLetterSelection* request,
      v1::DeadLetterActionResponse* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    retried_ = *request;
    response->set_count(request->all() ? 5 : request->ids_size());
    return grpc::Status::OK;
  }
  grpc::Status ListDeadLetters(grpc::ServerContext* context,
                               const v1::ListDeadLettersRequest* request,
                               v1::ListDeadLettersResponse* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    dead_limit_ = request->limit();
    dead_before_ = request->before_id();
    v1::DeadLetter* d = response->add_dead_letters();
    d->set_id(request->before_id() == 0 ? 9 : 4);
    d->set_reason("permanent");
    if (request->before_id() == 0) response->set_next_before_id(9);
    return grpc::Status::OK;
  }
  grpc::Status CreateWebhook(grpc::ServerContext* context,
                             const v1::CreateWebhookRequest* request,
                             v1::CreateWebhookResponse* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    response->mutable_webhook()->set_id("wh1");
    response->mutable_webhook()->set_link(request->link());
    response->mutable_webhook()->set_direction(request->direction());
    response->mutable_webhook()->set_url(request->url());
    response->set_secret("shown-once");
    return grpc::Status::OK;
  }
  grpc::Status GetStats(grpc::ServerContext* context,
                        const v1::GetStatsRequest*,
                        v1::Stats* response) override {
    if (auto s = Check(context); !s.ok()) return s;
    response->set_router_id("r-test");
    response->set_events_accepted(42);
    return grpc::Status::OK;
  }

  v1::Link created_link() {
    absl::MutexLock lock(&mu_);
    return created_link_;
  }
  std::string deleted() {
    absl::MutexLock lock(&mu_);
    return deleted_;
  }
  v1::DeadLetterSelection retried() {
    absl::MutexLock lock(&mu_);
    return retried_;
  }
  uint32_t dead_limit() {
    absl::MutexLock lock(&mu_);
    return dead_limit_;
  }
  uint64_t dead_before() {
    absl::MutexLock lock(&mu_);
    return dead_before_;
  }

 private:
  grpc::Status Check(grpc::ServerContext* context) {
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) !=
            absl::StrCat("Bearer ", kAdminToken)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing or wrong admin token");
    }
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  v1::Link created_link_ ABSL_GUARDED_BY(mu_);
  std::string deleted_ ABSL_GUARDED_BY(mu_);
  v1::DeadLetterSelection retried_ ABSL_GUARDED_BY(mu_);
  uint32_t dead_limit_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dead_before_ ABSL_GUARDED_BY(mu_) = 0;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  // Runs imbridgectl with `args` (plus --router) and the admin token in the
  // environment unless `with_token` is false.
  int Run(std::vector<std::string> args, bool with_token = true) {
    args.push_back(absl::StrCat("--router=127.0.0.1:", port_));
    std::map<std::string, std::string> env;
    if (with_token) env["IMBRIDGE_ADMIN_TOKEN"] = kAdminToken;
    out_.str("");
    err_.str("");
    return Main(
        args,
        [env](const char* name) -> const char* {
          auto it = env.find(name);
          return it == env.end() ? nullptr : it->second.c_str();
        },
        out_, err_);
  }

  FakeAdmin admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CommandsTest, ListsLinksAsATableOrJson) {
  EXPECT_EQ(Run({"link", "list"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME     SOURCE  MEMBERS  WEBHOOKS  CREATED\n"
            "support  config           -         -\n");
  EXPECT_EQ(err_.str(), "");

  EXPECT_EQ(Run({"link", "list", "--json"}), kExitOk);
  nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["links"][0]["link"]["name"], "support");
  EXPECT_EQ(json["links"][0]["source"], "CONFIG");
}

TEST_F(CommandsTest, SendsTheLinkBuiltFromMembers) {
  EXPECT_EQ(Run({"link", "create", "ops", "--member", "slack:acme:C1",
                 "--member", "telegram:bot:-100:in"}),
            kExitOk)
      << err_.str();
  v1::Link link = admin_.created_link();
  EXPECT_EQ(link.name(), "ops");
  ASSERT_EQ(link.members_size(), 2);
  EXPECT_EQ(link.members(1).chat_id(), "-100");
  EXPECT_EQ(link.members(1).direction(), v1::IN);
  EXPECT_THAT(out_.str(), HasSubstr("created link ops\n"));
  EXPECT_THAT(out_.str(), HasSubstr("telegram  bot      -100  -       in"));
}

TEST_F(CommandsTest, RouterRefusalIsExitOneWithTheCodeAndMessage) {
  EXPECT_EQ(Run({"link", "update", "support", "--member", "a:b:c"}),
            kExitCallFailed);
  EXPECT_EQ(err_.str(),
            "imbridgectl: FAILED_PRECONDITION: link 'support' is defined in "
            "the config file\n");
  EXPECT_EQ(out_.str(), "");

  EXPECT_EQ(Run({"link", "show", "nope"}), kExitCallFailed);
  EXPECT_EQ(err_.str(), "imbridgectl: NOT_FOUND: no link 'nope'\n");
}

TEST_F(CommandsTest, WithoutTokenTheRouterAnswersUnauthenticated) {
  EXPECT_EQ(Run({"stats"}, /*with_token=*/false), kExitCallFailed);
  EXPECT_EQ(err_.str(),
            "imbridgectl: UNAUTHENTICATED: missing or wrong admin token\n");
  EXPECT_EQ(Run({"stats", "--token", "wrong"}, /*with_token=*/false),
            kExitCallFailed);
  EXPECT_EQ(err_.str(),
            "imbridgectl: UNAUTHENTICATED: missing or wrong admin token\n");
  EXPECT_EQ(Run({"stats", "--token", kAdminToken}, /*with_token=*/false),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("router id:"));
  EXPECT_THAT(out_.str(), HasSubstr("events accepted:          42\n"));
}

TEST_F(CommandsTest, DeadLetterRetryAndList) {
  EXPECT_EQ(Run({"deadletter", "retry", "3", "4"}), kExitOk) << err_.str();
  EXPECT_THAT(admin_.retried().ids(), ElementsAre(3, 4));
  EXPECT_EQ(out_.str(), "retried 2 dead letters\n");
  EXPECT_EQ(Run({"deadletter", "retry", "--all", "--json"}), kExitOk);
  EXPECT_TRUE(admin_.retried().all());
  EXPECT_EQ(nlohmann::json::parse(out_.str())["count"], 5);

  EXPECT_EQ(Run({"deadletter", "list", "--limit", "7"}), kExitOk);
  EXPECT_EQ(admin_.dead_limit(), 7u);
  EXPECT_EQ(admin_.dead_before(), 0u);
  EXPECT_THAT(out_.str(), HasSubstr("9   "));
  EXPECT_THAT(out_.str(), HasSubstr("more: imbridgectl deadletter list "
                                    "--before 9\n"));
  EXPECT_EQ(Run({"deadletter", "list", "--before", "9"}), kExitOk);
  EXPECT_EQ(admin_.dead_before(), 9u);
  EXPECT_THAT(out_.str(), HasSubstr("4   "));
  EXPECT_THAT(out_.str(), Not(HasSubstr("more:")));
}

TEST_F(CommandsTest, DeleteIsConfirmedAndJsonIsAnEmptyObject) {
  EXPECT_EQ(Run({"link", "delete", "ops"}), kExitOk);
  EXPECT_EQ(admin_.deleted(), "ops");
  EXPECT_EQ(out_.str(), "deleted link ops\n");
  EXPECT_EQ(Run({"link", "delete", "ops", "--json"}), kExitOk);
  EXPECT_EQ(out_.str(), "{}\n");
}

TEST_F(CommandsTest, WebhookCreateJsonKeepsTheWarningOnStderr) {
  EXPECT_EQ(Run({"webhook", "create", "--link", "support", "--json"}), kExitOk);
  nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["secret"], "shown-once");
  EXPECT_EQ(json["urlPath"], "/hooks/wh1");
  EXPECT_THAT(err_.str(), HasSubstr("API key is shown only now"));

  EXPECT_EQ(Run({"webhook", "create", "--link", "support", "--outgoing",
                 "--url", "http://127.0.0.1:9/x"}),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("signing secret: shown-once\n"));
  EXPECT_THAT(out_.str(), HasSubstr("posts to:       http://127.0.0.1:9/x\n"));
}

TEST_F(CommandsTest, UnimplementedCallsReportTheCode) {
  // The fake does not implement ListQueues, as a router with the admin API
  // disabled would answer.
  EXPECT_EQ(Run({"queue", "list"}), kExitCallFailed);
  EXPECT_THAT(err_.str(), HasSubstr("imbridgectl: UNIMPLEMENTED: "));
}

TEST_F(CommandsTest, UsageErrorsExitTwoWithUsage) {
  EXPECT_EQ(Run({"link", "create"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("imbridgectl: 'link create' needs NAME"));
  EXPECT_THAT(err_.str(), HasSubstr("usage: imbridgectl link create"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("commands:"));
}

TEST(CommandsNoRouterTest, UnreachableRouterIsUnavailable) {
  std::ostringstream out, err;
  int code = Main(
      {"stats", "--router", "127.0.0.1:1", "--timeout", "5s"},
      [](const char*) -> const char* { return nullptr; }, out, err);
  EXPECT_EQ(code, kExitCallFailed);
  EXPECT_THAT(err.str(), ::testing::StartsWith("imbridgectl: UNAVAILABLE: "));
}

}  // namespace
}  // namespace imbridge::ctl
