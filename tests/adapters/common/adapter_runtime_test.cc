// AdapterRuntime against the real router binary: readiness follows the
// router connection and the adapter's own checks, webhooks are answered only
// after the router acknowledged, /metrics counts what happened, and the
// command line rejects bad configs with the field named.

#include "adapters/common/adapter_runtime.h"

#include <algorithm>
#include <atomic>
#include <fstream>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "imbridge/v1/telegram_config.pb.h"
#include "tests/integration/router_process.h"

namespace imbridge::adapters {
namespace {

using ::imbridge::testing::MakeTempDir;
using ::imbridge::testing::RouterProcess;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kToken[] = "runtime-test-token-0123456789";

std::string RouterConfigBody() {
  return absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                      R"(links:
  - name: pair
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
store: {durability: normal}
)");
}

// Answers deliveries with success; the runtime's own behaviour is what is
// under test.
class NullHandler : public DeliveryHandler {
 public:
  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery&) override {
    return std::vector<std::string>{"n1"};
  }
};

// Events the runtime counted for platform alpha with `outcome`. The registry
// is process-wide, so tests compare counts before and after.
double EventsIn(const char* outcome) {
  return metrics::Registry::Default().SumCounters(
      "imbridge_events_in_total",
      {{"platform", "alpha"}, {"outcome", outcome}});
}

bool WaitFor(const std::function<bool()>& condition,
             absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

v1::Event PostedEvent(const std::string& key) {
  v1::Event event;
  event.set_key(key);
  event.mutable_channel()->set_platform("alpha");
  event.mutable_channel()->set_account("a");
  event.mutable_channel()->set_chat_id("A1");
  event.mutable_posted()->set_message_id(key);
  event.mutable_posted()->mutable_text()->set_text("hello");
  event.mutable_posted()->mutable_sender()->set_display_name("Ann");
  return event;
}

class AdapterRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Start().ok());
    router_conn_.set_address(router_.address());
    router_conn_.set_token(kToken);
    http_.set_listen("127.0.0.1:0");
    http_.set_request_timeout_ms(1500);
  }

  std::unique_ptr<AdapterRuntime> MakeRuntime() {
    AdapterIdentity identity;
    identity.platform = "alpha";
    identity.accounts = {"a"};
    identity.capabilities = {"edits"};
    auto runtime =
        std::make_unique<AdapterRuntime>(router_conn_, http_, identity);
    runtime->SetDeliveryHandler(&handler_);
    // A webhook whose body is the event key, through the inbound pipeline
    // and RuntimeInboundRouter as an adapter's transport does it.
    inbound_router_ = std::make_unique<RuntimeInboundRouter>(runtime.get());
    pipeline_ = std::make_unique<InboundPipeline>(InboundPipeline::Options(),
                                                  inbound_router_.get());
    InboundPipeline* pipeline = pipeline_.get();
    Serve(*runtime, "/hook", PostedEvent);
    runtime->OnStop([pipeline] { pipeline->Stop(); });
    return runtime;
  }

  // Serves POST `path`: `make(body)` is the event, handed to the pipeline;
  // the answer is the pipeline's result.
  void Serve(AdapterRuntime& runtime, const std::string& path,
             std::function<v1::Event(const std::string& body)> make) {
    InboundPipeline* pipeline = pipeline_.get();
    runtime.http().Handle(
        "POST", path,
        [pipeline, make](HttpRequest request,
                         std::shared_ptr<Responder> responder) {
          auto event = std::make_shared<v1::Event>(make(request.body));
          absl::Status submitted = pipeline->Submit(
              InboundRoute{"A1", event->key()},
              [event]() -> absl::StatusOr<InboundConversion> {
                InboundConversion conversion;
                conversion.events.push_back(*event);
                return conversion;
              },
              [responder](const InboundResult& result) {
                responder->Respond(
                    result.HttpStatus(), "application/json",
                    result.ok() ? R"({"ok":true})"
                                : JsonErrorBody("not_taken", result.detail));
              });
          if (!submitted.ok()) {
            responder->Respond(503, "application/json",
                               JsonErrorBody("busy", submitted.message()));
          }
        });
  }

  std::string Url(AdapterRuntime& runtime, const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", runtime.port(), path);
  }

  RouterProcess router_{RouterConfigBody()};
  v1::RouterConnection router_conn_;
  v1::HttpServerOptions http_;
  NullHandler handler_;
  HttpClient client_;
  std::unique_ptr<RuntimeInboundRouter> inbound_router_;
  std::unique_ptr<InboundPipeline> pipeline_;
};

TEST_F(AdapterRuntimeTest, ReadyOnlyWhileAttachedAndChecksPass) {
  auto runtime = MakeRuntime();
  bool messenger_ok = false;
  runtime->AddReadinessCheck("messenger", [&] {
    return messenger_ok ? absl::OkStatus()
                        : absl::UnavailableError("api unreachable");
  });
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));

  auto not_ready = client_.Get(Url(*runtime, "/readyz"));
  ASSERT_TRUE(not_ready.ok());
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_THAT(not_ready->body, HasSubstr("api unreachable"));

  messenger_ok = true;
  auto ready = client_.Get(Url(*runtime, "/readyz"));
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;

  router_.Kill();
  ASSERT_TRUE(WaitFor([&] { return !runtime->router().attached(); }));
  auto detached = client_.Get(Url(*runtime, "/readyz"));
  ASSERT_TRUE(detached.ok());
  EXPECT_EQ(detached->status, 503);
  EXPECT_THAT(detached->body, HasSubstr("not attached"));

  auto alive = client_.Get(Url(*runtime, "/healthz"));
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(alive->status, 200);
}

TEST_F(AdapterRuntimeTest, WebhookIsAnsweredAfterTheRouterAcknowledged) {
  auto runtime = MakeRuntime();
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));
  const double accepted = EventsIn("accepted");
  const double duplicate = EventsIn("duplicate");

  auto first = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, R"({"ok":true})");
  auto again = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);  // A duplicate is acknowledged too.

  auto metrics = client_.Get(Url(*runtime, "/metrics"));
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->Header("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(metrics->body, HasSubstr("imbridge_events_in_total{outcome="
                                       "\"accepted\",platform=\"alpha\"} "));
  EXPECT_EQ(EventsIn("accepted") - accepted, 1);
  EXPECT_EQ(EventsIn("duplicate") - duplicate, 1);
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_attached{platform=\"alpha\"} 1\n"));
}

// With several routers configured, the adapter is ready while any of them
// is attached, publishes through it, and /metrics shows each router.
TEST_F(AdapterRuntimeTest, ReadyWhileAnyRouterIsAttachedWithEachRouterShown) {
  const std::string down = "127.0.0.1:1";  // Nothing listens there.
  router_conn_.clear_address();
  router_conn_.add_addresses(down);
  router_conn_.add_addresses(router_.address());
  auto runtime = MakeRuntime();
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));
  auto ready = client_.Get(Url(*runtime, "/readyz"));
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto posted = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:several");
  ASSERT_TRUE(posted.ok());
  EXPECT_EQ(posted->status, 200) << posted->body;

  auto metrics = client_.Get(Url(*runtime, "/metrics"));
  ASSERT_TRUE(metrics.ok());
  auto series = [](const std::string& name, const std::string& router,
                   int value) {
    return absl::StrCat(name, "{platform=\"alpha\",router=\"", router, "\"} ",
                        value, "\n");
  };
  EXPECT_THAT(metrics->body,
              HasSubstr(series("imbridge_adapter_router_attached", down, 0)));
  EXPECT_THAT(metrics->body,
              HasSubstr(series("imbridge_adapter_router_attached",
                               router_.address(), 1)));
  EXPECT_THAT(metrics->body,
              HasSubstr(series("imbridge_adapter_router_publishing",
                               router_.address(), 1)));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_attached{platform=\"alpha\"} 1\n"));
}

TEST_F(AdapterRuntimeTest, WebhookGets503WhileTheRouterIsDownAndIsKept) {
  auto runtime = MakeRuntime();
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));
  router_.Kill();
  ASSERT_TRUE(WaitFor([&] { return !runtime->router().attached(); }));
  const double accepted = EventsIn("accepted");

  auto refused = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:2");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 503);  // The messenger will retry.

  // The event stayed queued and reaches the router once it is back; the
  // messenger's retry is then a duplicate.
  ASSERT_TRUE(router_.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));
  auto retried = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:2");
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->status, 200);
  // Stored once, whatever the order of the re-send and the retry.
  EXPECT_EQ(EventsIn("accepted") - accepted, 1);
}

// Records the event keys of the deliveries it gets, each once (a delivery
// whose result the killed router did not record comes again), in the order
// they first came.
class RecordingHandler : public DeliveryHandler {
 public:
  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override {
    absl::MutexLock lock(&mu_);
    const std::string& key = delivery.event().key();
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) {
      keys_.push_back(key);
    }
    return std::vector<std::string>{absl::StrCat("copy-", key)};
  }
  std::vector<std::string> keys() {
    absl::MutexLock lock(&mu_);
    return keys_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

// Issue 11, order per chat across a router restart: a lane's inputs that
// were published and not acknowledged (sent on the stream that broke, or
// queued while no stream was up) are published again, in the lane's order,
// once the adapter attaches again; the router stores them in that order
// (the copies in the linked chat come in it) and the lane answers each one.
TEST_F(AdapterRuntimeTest, ALanesUnacknowledgedInputsAreResentInOrder) {
  auto runtime = MakeRuntime();
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));
  RecordingHandler copies;
  RouterClient::Options beta;
  beta.address = router_.address();
  beta.token = kToken;
  beta.adapter_name = "beta-test";
  beta.platform = "beta";
  beta.accounts = {"b"};
  RouterClient destination(beta, &copies);
  destination.Start();
  ASSERT_TRUE(WaitFor([&] { return destination.attached(); }));

  absl::Mutex mu;
  std::vector<std::string> answered;
  std::vector<std::string> expected;
  auto submit = [&](const std::string& key) {
    expected.push_back(key);
    auto event = std::make_shared<v1::Event>(PostedEvent(key));
    ASSERT_TRUE(pipeline_
                    ->Submit(
                        InboundRoute{"A1", key},
                        [event]() -> absl::StatusOr<InboundConversion> {
                          InboundConversion conversion;
                          conversion.events.push_back(*event);
                          return conversion;
                        },
                        [&mu, &answered, key](const InboundResult& result) {
                          absl::MutexLock lock(&mu);
                          answered.push_back(result.ok() ? key : result.detail);
                        })
                    .ok());
  };
  // Some are on the stream (acknowledged or not) when the router dies...
  for (int i = 1; i <= 10; ++i) submit(absl::StrCat("in-", i));
  router_.Kill();
  ASSERT_TRUE(WaitFor([&] { return !runtime->router().attached(); }));
  // ... more are published while it is down (the lane does not wait).
  for (int i = 11; i <= 30; ++i) submit(absl::StrCat("in-", i));
  ASSERT_TRUE(router_.Start().ok());

  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return answered.size() == expected.size();
  }));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(answered, expected);
  }
  ASSERT_TRUE(WaitFor([&] { return copies.keys().size() >= expected.size(); }));
  EXPECT_EQ(copies.keys(), expected);
  destination.Stop();
}

// Issue 11, exception barrier: input that makes an invalid event is a 400,
// whether the router rejects it (a span inside a character) or it cannot
// even be sent (text that is not UTF-8); the adapter goes on serving.
TEST_F(AdapterRuntimeTest, AnInvalidEventIs400) {
  auto runtime = MakeRuntime();
  Serve(*runtime, "/bad", [](const std::string& body) {
    v1::Event event = PostedEvent(body);
    v1::RichText* text = event.mutable_posted()->mutable_text();
    if (body == "alpha:a:span") {
      text->set_text("caf\xC3\xA9");  // the span ends inside the é
      v1::Span* span = text->add_spans();
      span->set_kind(v1::Span::BOLD);
      span->set_offset(0);
      span->set_length(4);
    } else {
      text->set_text("caf\xC3");
    }
    return event;
  });
  ASSERT_TRUE(runtime->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runtime->router().attached(); }));

  auto span = client_.PostJson(Url(*runtime, "/bad"), "alpha:a:span");
  ASSERT_TRUE(span.ok()) << span.status();
  EXPECT_EQ(span->status, 400);
  EXPECT_THAT(span->body, HasSubstr("span 0 (BOLD) ends at byte 4"));

  auto utf8 = client_.PostJson(Url(*runtime, "/bad"), "alpha:a:utf8");
  ASSERT_TRUE(utf8.ok()) << utf8.status();
  EXPECT_EQ(utf8->status, 400);
  EXPECT_THAT(utf8->body, HasSubstr("posted.text.text is not valid UTF-8"));

  auto good = client_.PostJson(Url(*runtime, "/hook"), "alpha:a:after");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->status, 200);
  EXPECT_TRUE(runtime->router().attached());
}

TEST_F(AdapterRuntimeTest, PortFileHoldsTheBoundPort) {
  std::string dir = MakeTempDir("runtime");
  http_.set_port_file(dir + "/port");
  auto runtime = MakeRuntime();
  ASSERT_TRUE(runtime->Start().ok());
  std::ifstream in(dir + "/port");
  int port = 0;
  in >> port;
  EXPECT_EQ(port, runtime->port());
  EXPECT_GT(port, 0);
}

class CommandLineTest : public ::testing::Test {
 protected:
  int Parse(const std::string& yaml, std::vector<std::string> extra = {}) {
    std::string path = dir_ + "/adapter.yaml";
    std::ofstream(path) << yaml;
    std::vector<std::string> args = {"imbridge-adapter-test", "--config", path};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    int exit_code = -1;
    config_.Clear();
    bool go_on = ParseAdapterCommandLine(
        static_cast<int>(argv.size()), argv.data(), "imbridge-adapter-test",
        &config_,
        [&](absl::string_view source) {
          IMB_RETURN_IF_ERROR(
              ValidateRouterConnection(source, config_.router()));
          return ValidateHttpServerOptions(source, config_.http());
        },
        &exit_code);
    return go_on ? 100 : exit_code;
  }

  std::string dir_ = MakeTempDir("cmdline");
  v1::TelegramAdapterConfig config_;
};

TEST_F(CommandLineTest, GoodConfigRunsAndCheckConfigExitsZero) {
  const std::string good =
      "router: {token: t}\nhttp: {listen: '127.0.0.1:0'}\n";
  EXPECT_EQ(Parse(good), 100);
  EXPECT_EQ(config_.router().token(), "t");
  EXPECT_EQ(Parse(good, {"--check-config"}), 0);
  EXPECT_EQ(Parse(good, {"--bogus"}), 2);
}

TEST_F(CommandLineTest, BadConfigsExitOneWithTheFieldNamed) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Parse("router: {token: t}\nhttp: {lissten: x}\n"), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("http.lissten"));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Parse("http: {listen: '127.0.0.1:0'}\n"), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("router.token: required"));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Parse("router: {token: t}\nhttp: {listen: 'nohost'}\n"), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("http.listen"));
}

// router.addresses: every router's address, instead of router.address.
TEST_F(CommandLineTest, RouterAddressesAreCheckedWithTheFieldNamed) {
  EXPECT_EQ(Parse("router: {token: t, addresses: ['127.0.0.1:7700', "
                  "'10.0.0.2:7700']}\n"),
            100);
  EXPECT_THAT(config_.router().addresses(),
              ElementsAre("127.0.0.1:7700", "10.0.0.2:7700"));
  auto error = [&](const std::string& router) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(Parse(absl::StrCat("router: {token: t, ", router, "}\n")), 1)
        << router;
    return ::testing::internal::GetCapturedStderr();
  };
  EXPECT_THAT(error("address: '127.0.0.1:7700', addresses: ['127.0.0.1:7710']"),
              HasSubstr("router.addresses: set either router.address or "
                        "router.addresses, not both"));
  EXPECT_THAT(error("addresses: ['127.0.0.1:7700', '127.0.0.1:7700']"),
              HasSubstr("router.addresses[1]: '127.0.0.1:7700' is listed "
                        "twice"));
  EXPECT_THAT(error("addresses: ['127.0.0.1:7700', 'nohost']"),
              HasSubstr("router.addresses[1]: 'nohost' is not host:port"));
  std::vector<std::string> seventeen;
  for (int i = 0; i < 17; ++i) {
    seventeen.push_back(absl::StrCat("'127.0.0.1:", 7700 + i, "'"));
  }
  EXPECT_THAT(
      error(absl::StrCat("addresses: [", absl::StrJoin(seventeen, ", "), "]")),
      HasSubstr("router.addresses: 17 routers; at most 16"));
}

// A program command (`--register`) runs instead of the adapter, with its
// own config check, and the usage text lists it.
TEST_F(CommandLineTest, AProgramCommandRunsWithItsOwnCheck) {
  AdapterProgram<v1::TelegramAdapterConfig> program;
  program.binary = "imbridge-adapter-test";
  program.identity.platform = "test";
  program.validate = [](absl::string_view source,
                        const v1::TelegramAdapterConfig& config) {
    if (config.accounts().empty()) {
      return ConfigError(source, "accounts", "required to run");
    }
    return absl::OkStatus();
  };
  program.connect =
      [](const v1::TelegramAdapterConfig&, AdapterRuntime*,
         DeliveryJournal*) -> absl::StatusOr<std::unique_ptr<Connector>> {
    return absl::InternalError("the adapter must not start");
  };
  std::string token_seen;
  AdapterProgram<v1::TelegramAdapterConfig>::Command command;
  command.flag = "--register";
  command.help = "register and exit";
  command.validate = [](absl::string_view source,
                        const v1::TelegramAdapterConfig& config) {
    return ValidateRouterConnection(source, config.router());
  };
  command.run = [&token_seen](const v1::TelegramAdapterConfig& config) {
    token_seen = config.router().token();
    return 7;
  };
  program.commands.push_back(command);
  std::string path = dir_ + "/command.yaml";
  std::ofstream(path) << "router: {token: seen}\n";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "imbridge-adapter-test");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return RunAdapter(static_cast<int>(argv.size()), argv.data(), program);
  };
  // No accounts: the program's check refuses the config, the command's
  // passes it.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run({"--config", path}), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("accounts: required to run"));
  EXPECT_EQ(run({"--config", path, "--register"}), 7);
  EXPECT_EQ(token_seen, "seen");
  token_seen.clear();
  EXPECT_EQ(run({"--register", "--config", path}), 7);
  EXPECT_EQ(token_seen, "seen");
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_THAT(::testing::internal::GetCapturedStdout(),
              HasSubstr("  --register        register and exit\n"));
}

// A connector built from its config, runtime and journal, which it keeps.
class BuiltConnector : public Connector {
 public:
  BuiltConnector(const v1::TelegramAdapterConfig& config,
                 AdapterRuntime* runtime, DeliveryJournal* journal)
      : account_(config.accounts(0).name()),
        runtime_(runtime),
        journal_(journal) {}
  std::vector<std::string> Accounts() const override { return {account_}; }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery&) override {
    return std::vector<std::string>();
  }
  AdapterRuntime* runtime() const { return runtime_; }
  DeliveryJournal* journal() const { return journal_; }

 private:
  const std::string account_;
  AdapterRuntime* const runtime_;
  DeliveryJournal* const journal_;
};

TEST(AdapterProgramTest,
     ThePlatformNamesTheBinaryAndConnectBuildsTheConnector) {
  AdapterProgram<v1::TelegramAdapterConfig> program("test", 7799);
  program.connect = Connect<BuiltConnector, v1::TelegramAdapterConfig>;
  EXPECT_EQ(program.binary, "imbridge-adapter-test");
  EXPECT_EQ(program.identity.platform, "test");
  EXPECT_EQ(program.identity.default_port, 7799);

  v1::TelegramAdapterConfig config;
  config.add_accounts()->set_name("main");
  auto* runtime = reinterpret_cast<AdapterRuntime*>(0x10);
  auto* journal = reinterpret_cast<DeliveryJournal*>(0x20);
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      program.connect(config, runtime, journal);
  ASSERT_TRUE(connector.ok()) << connector.status();
  auto* built = dynamic_cast<BuiltConnector*>(connector->get());
  ASSERT_NE(built, nullptr);
  EXPECT_THAT(built->Accounts(), ElementsAre("main"));
  EXPECT_EQ(built->runtime(), runtime);
  EXPECT_EQ(built->journal(), journal);
}

TEST(ValidateAccountsTest, BasicsThenEachAccountsNameThenItsOwnChecks) {
  v1::TelegramAdapterConfig config;
  std::vector<std::string> checked;
  auto check = [&](const v1::TelegramAccount& a, const std::string& at) {
    checked.push_back(absl::StrCat(at, "=", a.name()));
    return a.token().empty() ? ConfigError("a.yaml", at + ".token", "required")
                             : absl::OkStatus();
  };
  absl::Status s = ValidateAccounts("a.yaml", config, check);
  EXPECT_THAT(std::string(s.message()), HasSubstr("router.token"));
  config.mutable_router()->set_token("t");
  config.mutable_http()->set_listen("127.0.0.1:0");
  s = ValidateAccounts("a.yaml", config, check);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("accounts: at least one account is required"));

  config.add_accounts()->set_name("a");
  config.add_accounts()->set_name("b");
  for (v1::TelegramAccount& a : *config.mutable_accounts()) a.set_token("x");
  EXPECT_TRUE(ValidateAccounts("a.yaml", config, check).ok());
  EXPECT_THAT(checked, ElementsAre("accounts[0]=a", "accounts[1]=b"));

  checked.clear();
  config.mutable_accounts(1)->clear_token();
  s = ValidateAccounts("a.yaml", config, check);
  EXPECT_THAT(std::string(s.message()), HasSubstr("accounts[1].token"));
  // A bad or repeated name stops the check before the account's own.
  checked.clear();
  config.mutable_accounts(1)->set_name("a");
  s = ValidateAccounts("a.yaml", config, check);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("accounts[1].name: 'a' is used twice"));
  EXPECT_THAT(checked, ElementsAre("accounts[0]=a"));
}

TEST(ValidateAdapterBasicsTest, RouterThenHttpThenLogLevel) {
  v1::RouterConnection router;
  v1::HttpServerOptions http;
  http.set_listen("nohost");
  absl::Status s = ValidateAdapterBasics("a.yaml", router, http, "loud");
  EXPECT_THAT(std::string(s.message()), HasSubstr("router.token"));
  router.set_token("t");
  s = ValidateAdapterBasics("a.yaml", router, http, "loud");
  EXPECT_THAT(std::string(s.message()), HasSubstr("http.listen"));
  http.set_listen("127.0.0.1:0");
  s = ValidateAdapterBasics("a.yaml", router, http, "loud");
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("log_level: expected one of debug, info, warn, error"));
  EXPECT_TRUE(ValidateAdapterBasics("a.yaml", router, http, "").ok());
  EXPECT_TRUE(ValidateAdapterBasics("a.yaml", router, http, "debug").ok());
  // The HTTP server's limits (common/http/http_server_config.h).
  http.set_max_connections(65537);
  s = ValidateAdapterBasics("a.yaml", router, http, "");
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("a.yaml: http.max_connections: must be at most 65536"));
  http.set_max_connections(0);
  http.set_header_timeout_ms(99);
  s = ValidateAdapterBasics("a.yaml", router, http, "");
  EXPECT_THAT(std::string(s.message()), HasSubstr("http.header_timeout_ms"));
}

}  // namespace
}  // namespace imbridge::adapters

namespace imbridge::adapters {
namespace {

TEST_F(AdapterRuntimeTest, OnStartedRunsOnceListeningAndItsErrorFailsStart) {
  auto runtime = MakeRuntime();
  uint16_t port_seen = 0;
  runtime->OnStarted([&] {
    port_seen = runtime->port();
    return absl::OkStatus();
  });
  ASSERT_TRUE(runtime->Start().ok());
  EXPECT_GT(port_seen, 0);
  EXPECT_EQ(port_seen, runtime->port());
  // MakeRuntime() replaces the fixture's pipeline, which this runtime's
  // OnStop callback stops: it goes first (it stopped a freed pipeline).
  runtime.reset();

  auto failing = MakeRuntime();
  failing->OnStarted([] { return absl::UnavailableError("setWebhook: 401"); });
  absl::Status status = failing->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("setWebhook"));
}

}  // namespace
}  // namespace imbridge::adapters

namespace imbridge::adapters {
namespace {

// Implements the required interface and edits only; records what it was
// asked to render.
class EditingConnector : public Connector, public MessageEditor {
 public:
  std::vector<std::string> Accounts() const override { return {"a"}; }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back(
        absl::StrCat("send ", delivery.event().posted().text().text()));
    return std::vector<std::string>{
        absl::StrCat("copy-of-", delivery.event().posted().message_id())};
  }
  absl::Status EditMessage(const v1::Delivery& delivery) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back(absl::StrCat("edit ", delivery.target_message_ids(0)));
    return absl::OkStatus();
  }
  absl::Status Start() override {
    started_ = true;
    return absl::OkStatus();
  }
  void Stop() override { stopped_ = true; }

  std::vector<std::string> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  bool started() const { return started_; }
  bool stopped() const { return stopped_; }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

v1::Event FromBeta(const std::string& key) {
  v1::Event event;
  event.set_key(key);
  event.mutable_channel()->set_platform("beta");
  event.mutable_channel()->set_account("b");
  event.mutable_channel()->set_chat_id("B1");
  return event;
}

// Issue 11, item 2: the Hello of a runtime with a connector announces the
// connector's accounts and the capabilities of the interfaces it
// implements, and the router honours them: an edit reaches EditMessage,
// a delete (no MessageDeleter) is never sent.
TEST_F(AdapterRuntimeTest, AConnectorGetsOnlyTheKindsItsInterfacesAnnounce) {
  AdapterIdentity alpha;
  alpha.platform = "alpha";
  AdapterRuntime runtime(router_conn_, http_, alpha);
  EditingConnector connector;
  runtime.SetConnector(&connector);
  EXPECT_THAT(runtime.identity().accounts, ::testing::ElementsAre("a"));
  EXPECT_THAT(runtime.identity().capabilities, ::testing::ElementsAre("edits"));
  ASSERT_TRUE(runtime.Start().ok());
  EXPECT_TRUE(connector.started());

  AdapterIdentity beta;
  beta.platform = "beta";
  beta.accounts = {"b"};
  AdapterRuntime origin(router_conn_, http_, beta);
  origin.SetDeliveryHandler(&handler_);
  ASSERT_TRUE(origin.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    return runtime.router().attached() && origin.router().attached();
  }));

  auto publish = [&](v1::Event event) {
    absl::Notification acked;
    v1::PublishAck ack;
    ASSERT_TRUE(origin
                    .Publish(std::move(event),
                             [&](const v1::PublishAck& a) {
                               ack = a;
                               acked.Notify();
                             })
                    .ok());
    ASSERT_TRUE(acked.WaitForNotificationWithTimeout(absl::Seconds(20)));
    EXPECT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED) << ack.detail();
  };
  v1::Event posted = FromBeta("beta:b:1");
  posted.mutable_posted()->set_message_id("p1");
  posted.mutable_posted()->mutable_text()->set_text("first");
  publish(posted);
  ASSERT_TRUE(WaitFor([&] { return connector.calls().size() == 1; }));
  v1::Event edited = FromBeta("beta:b:2");
  edited.mutable_edited()->set_message_id("p1");
  edited.mutable_edited()->mutable_text()->set_text("first!");
  publish(edited);
  v1::Event deleted = FromBeta("beta:b:3");
  deleted.mutable_deleted()->set_message_id("p1");
  publish(deleted);
  v1::Event second = FromBeta("beta:b:4");
  second.mutable_posted()->set_message_id("p2");
  second.mutable_posted()->mutable_text()->set_text("second");
  publish(second);

  // Deliveries to one target keep their order: once the second message is
  // there, the delete would have come before it.
  ASSERT_TRUE(WaitFor([&] { return connector.calls().size() >= 3; }));
  EXPECT_THAT(
      connector.calls(),
      ::testing::ElementsAre("send first", "edit copy-of-p1", "send second"));
  runtime.Stop();
  EXPECT_TRUE(connector.stopped());
}

}  // namespace
}  // namespace imbridge::adapters
