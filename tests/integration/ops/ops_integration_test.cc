// The operator surface end to end: the real router with an admin token, the
// real imbridgectl binary (run as a child process, its stdout, stderr and
// exit status checked) and the real webhook adapter, with TestAdapters as
// the linked messengers and a local HTTP receiver for outgoing webhooks.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "common/http/http_client.h"
#include "common/http/http_server.h"
#include "emulators/slow_answers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

extern char** environ;

namespace imbridge::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kAdapterToken[] = "ops-adapter-token-0123456789";
constexpr char kAdminToken[] = "ops-admin-token-0123456789abcdef";

// What a child process did.
struct ProcessResult {
  int exit_code = -1;  // -1: killed or timed out
  std::string out;
  std::string err;
};

// Runs `binary` with `args` and the current environment minus the
// IMBRIDGE_* variables plus `env` ("NAME=value"), collecting its output.
ProcessResult RunProcess(const std::string& binary,
                         const std::vector<std::string>& args,
                         const std::vector<std::string>& env,
                         absl::Duration timeout = absl::Seconds(60)) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);

  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "IMBRIDGE_ROUTER=") &&
        !absl::StartsWith(*e, "IMBRIDGE_ADMIN_TOKEN=")) {
      env_storage.push_back(*e);
    }
  }
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                            argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.err = absl::StrCat("cannot run ", binary);
    return result;
  }
  absl::Time deadline = absl::Now() + timeout;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0 && absl::Now() < deadline) {
    if (poll(fds, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (open_fds > 0) kill(pid, SIGKILL);
  for (auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && open_fds == 0)
    result.exit_code = WEXITSTATUS(status);
  return result;
}

bool WaitFor(const std::function<bool()>& condition,
             absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return condition();
}

std::string RouterConfig(bool with_admin_token = true) {
  std::string config = absl::StrCat(
      "adapters:\n  - {name: tests, token: ", kAdapterToken, "}\n");
  if (with_admin_token)
    absl::StrAppend(&config, "admin_token: ", kAdminToken, "\n");
  absl::StrAppend(&config, R"(links:
  - name: support
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
store: {durability: normal}
dispatch: {initial_backoff_ms: 50, max_backoff_ms: 200}
http: {listen: "127.0.0.1:0"}
)");
  return config;
}

std::vector<std::string> Texts(const std::vector<TestAdapter::Call>& calls) {
  std::vector<std::string> out;
  for (const auto& c : calls) {
    if (c.kind == "post") out.push_back(c.text);
  }
  return out;
}

// A local receiver of outgoing webhooks with scripted answers (200 once
// they run out), sent late on demand; records every request.
class Receiver {
 public:
  Receiver() : server_(HttpServer::Options()) {
    server_.Handle("POST", "/in",
                   [this](HttpRequest request, std::shared_ptr<Responder> r) {
                     int status = 200;
                     fakes::SlowAnswers::Slot slot = slow_.Take("post");
                     {
                       absl::MutexLock lock(&mu_);
                       requests_.push_back(request);
                       if (!statuses_.empty()) {
                         status = statuses_.front();
                         statuses_.erase(statuses_.begin());
                       }
                     }
                     slow_.Respond(std::move(slot), r, status,
                                   "application/json",
                                   status == 200 ? R"({"ok":true})" : "oops");
                   });
    EXPECT_TRUE(server_.Start().ok());
  }
  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", server_.port(), "/in");
  }
  // Every request is answered `delay` after it came (zero: at once).
  void DelayAnswers(absl::Duration delay) { slow_.Set("post", delay); }
  // Requests not answered yet.
  int pending() const { return slow_.pending(); }
  void AnswerNext(int status) {
    absl::MutexLock lock(&mu_);
    statuses_.push_back(status);
  }
  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  HttpServer server_;
  fakes::SlowAnswers slow_;
  absl::Mutex mu_;
  std::vector<int> statuses_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class OpsIntegrationTest : public ::testing::Test {
 protected:
  // Runs imbridgectl against `router` with the admin token in the
  // environment (unless `token` is false).
  ProcessResult Ctl(RouterProcess& router, std::vector<std::string> args,
                    bool token = true) {
    std::vector<std::string> env = {
        absl::StrCat("IMBRIDGE_ROUTER=", router.address())};
    if (token)
      env.push_back(absl::StrCat("IMBRIDGE_ADMIN_TOKEN=", kAdminToken));
    ProcessResult r =
        RunProcess(BuildPath("tools/imbridgectl/imbridgectl"), args, env);
    return r;
  }

  // Like Ctl, and expects success.
  std::string CtlOk(RouterProcess& router, std::vector<std::string> args) {
    ProcessResult r = Ctl(router, args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.err;
    EXPECT_EQ(r.err, "") << absl::StrJoin(args, " ");
    return r.out;
  }

  nlohmann::json CtlJson(RouterProcess& router, std::vector<std::string> args) {
    args.push_back("--json");
    ProcessResult r = Ctl(router, args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.err;
    // Only webhook create warns on stderr (the key is shown once).
    if (args[0] == "webhook" && args[1] == "create") {
      EXPECT_THAT(r.err, HasSubstr("shown only now"));
    } else {
      EXPECT_EQ(r.err, "") << absl::StrJoin(args, " ");
    }
    const std::string& out = r.out;
    nlohmann::json json = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << absl::StrJoin(args, " ") << "\n"
                                      << out;
    return json;
  }

  std::unique_ptr<TestAdapter> Adapter(RouterProcess& router,
                                       const std::string& platform,
                                       const std::string& account) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kAdapterToken);
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  }

  // The webhook adapter, with `extra` config lines.
  std::unique_ptr<AdapterProcess> WebhookAdapter(
      RouterProcess& router, const std::string& extra = "") {
    auto adapter = std::make_unique<AdapterProcess>(
        "adapters/webhook/imbridge-adapter-webhook",
        absl::StrCat("router: {address: \"", router.address(), "\", token: ",
                     kAdapterToken, "}\noutgoing_cache_ms: 200\n", extra));
    EXPECT_TRUE(adapter->Start().ok());
    HttpClient client;
    EXPECT_TRUE(WaitFor([&] {
      auto r = client.Get(adapter->base_url() + "/readyz");
      return r.ok() && r->status == 200;
    })) << adapter->ReadLog();
    return adapter;
  }

  HttpResponse PostHook(AdapterProcess& adapter, const std::string& path,
                        const std::string& body, HttpHeaderList headers = {}) {
    headers.push_back({"Content-Type", "application/json"});
    auto r = client_.PostJson(adapter.base_url() + path, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse();
  }

  HttpClient client_;
};

TEST_F(OpsIntegrationTest, RuntimeLinkCarriesMessagesAtOnceAndSurvivesRestart) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto gamma = Adapter(router, "gamma", "g");
  auto delta = Adapter(router, "delta", "d");

  std::string out = CtlOk(router, {"link", "create", "ops", "--member",
                                   "gamma:g:G1", "--member", "delta:d:D1"});
  EXPECT_THAT(out, HasSubstr("created link ops"));
  EXPECT_THAT(out, HasSubstr("runtime"));

  gamma->Post("G1", "first over a runtime link");
  ASSERT_TRUE(delta->WaitForCalls(1)) << router.ReadLog();
  EXPECT_EQ(delta->calls()[0].text, "first over a runtime link");

  // Both kinds are listed, each with its source.
  nlohmann::json links = CtlJson(router, {"link", "list"});
  ASSERT_EQ(links["links"].size(), 2u) << links.dump();
  std::map<std::string, std::string> sources;
  for (const auto& l : links["links"]) {
    sources[l["link"]["name"]] = l["source"];
  }
  EXPECT_EQ(sources["ops"], "RUNTIME");
  EXPECT_EQ(sources["support"], "CONFIG");

  // Config links are read-only; names are unique across both kinds.
  ProcessResult r = Ctl(router, {"link", "update", "support", "--member",
                                 "alpha:a:A1", "--member", "beta:b:B2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: FAILED_PRECONDITION: "));
  r = Ctl(router, {"link", "create", "support", "--member", "gamma:g:G2",
                   "--member", "delta:d:D2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: ALREADY_EXISTS: "));
  r = Ctl(router, {"link", "show", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: NOT_FOUND: "));

  // The runtime link is in the database: it survives a crash.
  router.Kill();
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  ASSERT_TRUE(gamma->WaitAttached());
  ASSERT_TRUE(WaitFor([&] { return delta->client().attached(); }));
  EXPECT_THAT(CtlOk(router, {"link", "show", "ops"}), HasSubstr("runtime"));
  gamma->Post("G1", "after the restart");
  ASSERT_TRUE(delta->WaitForCalls(2)) << router.ReadLog();
  EXPECT_EQ(delta->calls()[1].text, "after the restart");

  // An update takes effect at once: delta now only feeds the link.
  CtlOk(router, {"link", "update", "ops", "--member", "gamma:g:G1", "--member",
                 "delta:d:D1:in"});
  delta->Post("D1", "from delta");
  ASSERT_TRUE(gamma->WaitForCalls(1));
  EXPECT_EQ(gamma->calls()[0].text, "from delta");

  // Deleted: nothing more is relayed.
  EXPECT_EQ(CtlOk(router, {"link", "delete", "ops"}), "deleted link ops\n");
  gamma->Post("G1", "into the void");
  delta->Post("D1", "also into the void");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Texts(delta->calls()).size(), 2u);
  EXPECT_EQ(Texts(gamma->calls()).size(), 1u);
  EXPECT_EQ(Ctl(router, {"link", "show", "ops"}).exit_code, 1);
}

TEST_F(OpsIntegrationTest, DeadLetterIsListedRetriedAndArrives) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  beta->FailNext(1, /*retryable=*/false);

  alpha->Post("A1", "doomed at first");
  nlohmann::json dead;
  ASSERT_TRUE(WaitFor([&] {
    dead = CtlJson(router, {"deadletter", "list"});
    return dead.contains("deadLetters") && dead["deadLetters"].size() == 1;
  })) << dead.dump()
      << router.ReadLog();
  const nlohmann::json& letter = dead["deadLetters"][0];
  EXPECT_EQ(letter["link"], "support");
  EXPECT_EQ(letter["target"]["chatId"], "B1");
  EXPECT_THAT(letter["textPreview"].get<std::string>(),
              HasSubstr("doomed at first"));
  std::string id = letter["id"];  // uint64 is a JSON string

  std::string table = CtlOk(router, {"deadletter", "list"});
  EXPECT_THAT(table, StartsWith("ID "));
  EXPECT_THAT(table, HasSubstr(absl::StrCat("\n", id, " ")));
  nlohmann::json stats = CtlJson(router, {"stats"});
  EXPECT_EQ(stats["deadLetters"], "1");

  EXPECT_EQ(CtlOk(router, {"deadletter", "retry", id}),
            "retried 1 dead letter\n");
  ASSERT_TRUE(beta->WaitForCalls(1))
      << router.ReadLog() << CtlOk(router, {"queue", "list"})
      << CtlOk(router, {"deadletter", "list"});
  EXPECT_EQ(beta->calls()[0].text, "doomed at first");
  EXPECT_EQ(CtlOk(router, {"deadletter", "list"}), "no dead letters\n");

  // Another one, dropped for good.
  beta->FailNext(1, /*retryable=*/false);
  alpha->Post("A1", "dropped");
  ASSERT_TRUE(WaitFor([&] {
    return CtlJson(router, {"deadletter", "list"})["deadLetters"].size() == 1;
  }));
  EXPECT_EQ(CtlOk(router, {"deadletter", "drop", "--all"}),
            "dropped 1 dead letter\n");
  EXPECT_EQ(CtlOk(router, {"deadletter", "list"}), "no dead letters\n");
}

TEST_F(OpsIntegrationTest, IncomingWebhookPostsIntoTheLinkUntilRevoked) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  auto webhook = WebhookAdapter(router);

  nlohmann::json created = CtlJson(router, {"webhook", "create", "--link",
                                            "support", "--description", "ci"});
  std::string id = created["webhook"]["id"];
  std::string key = created["secret"];
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE(key.empty());
  EXPECT_EQ(created["urlPath"], "/hooks/" + id);
  EXPECT_EQ(created["webhook"]["direction"], "INCOMING");

  HttpResponse r = PostHook(*webhook, "/hooks/" + id,
                            R"({"text": "build *green*", "username": "ci"})",
                            {{"Authorization", "Bearer " + key}});
  EXPECT_EQ(r.status, 200) << r.body << webhook->ReadLog();
  EXPECT_EQ(r.body, R"({"ok":true})");
  ASSERT_TRUE(alpha->WaitForCalls(1)) << router.ReadLog();
  ASSERT_TRUE(beta->WaitForCalls(1));
  EXPECT_EQ(alpha->calls()[0].text, "build green");
  EXPECT_THAT(alpha->calls()[0].sender_name, HasSubstr("ci"));
  EXPECT_EQ(beta->calls()[0].text, "build green");

  // The key in the path works too; a wrong key does not.
  r = PostHook(*webhook, absl::StrCat("/hooks/", id, "/", key),
               R"({"attachments": [{"fallback": "from attachments"}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(beta->WaitForCalls(2));
  EXPECT_EQ(beta->calls()[1].text, "from attachments");
  EXPECT_EQ(PostHook(*webhook, absl::StrCat("/hooks/", id, "/wrong"),
                     R"({"text": "x"})")
                .status,
            401);

  // Listed (without the key), and the link shows it.
  std::string list = CtlOk(router, {"webhook", "list"});
  EXPECT_THAT(list, HasSubstr(id));
  EXPECT_THAT(list, HasSubstr("incoming"));
  EXPECT_THAT(list, ::testing::Not(HasSubstr(key)));
  EXPECT_THAT(CtlOk(router, {"link", "show", "support"}), HasSubstr(id));

  // Revoked: refused at once.
  EXPECT_EQ(CtlOk(router, {"webhook", "revoke", id}),
            absl::StrCat("revoked webhook ", id, "\n"));
  r = PostHook(*webhook, "/hooks/" + id, R"({"text": "after revoke"})",
               {{"Authorization", "Bearer " + key}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "invalid_key");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(beta->calls().size(), 2u);
  EXPECT_THAT(CtlOk(router, {"webhook", "list", "--include-revoked"}),
              HasSubstr("revoked"));
}

TEST_F(OpsIntegrationTest, OutgoingWebhookIsSignedAndRetriedAfterA500) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  auto webhook = WebhookAdapter(router);
  Receiver receiver;
  receiver.AnswerNext(500);

  // The human output shows the secret once.
  std::string out = CtlOk(router, {"webhook", "create", "--link", "support",
                                   "--outgoing", "--url", receiver.url()});
  EXPECT_THAT(out, HasSubstr("WARNING: the signing secret is shown only now"));
  std::string id, secret;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::ConsumePrefix(&line, "id:")) {
      id = std::string(absl::StripAsciiWhitespace(line));
    }
    if (absl::ConsumePrefix(&line, "signing secret:")) {
      secret = std::string(absl::StripAsciiWhitespace(line));
    }
  }
  ASSERT_FALSE(id.empty()) << out;
  ASSERT_FALSE(secret.empty()) << out;

  alpha->Post("A1", "to the outside");
  ASSERT_TRUE(WaitFor([&] { return receiver.requests().size() >= 2; }))
      << router.ReadLog() << webhook->ReadLog();
  std::vector<HttpRequest> got = receiver.requests();
  for (const HttpRequest& request : got) {
    // As docs/webhook.md tells a receiver to check it.
    EXPECT_EQ(request.Header("x-imbridge-signature"),
              absl::StrCat(
                  "v1=", HmacSha256Hex(
                             secret, absl::StrCat(
                                         request.Header("x-imbridge-timestamp"),
                                         ".", request.body))))
        << request.body;
  }
  nlohmann::json first = nlohmann::json::parse(got[0].body);
  nlohmann::json second = nlohmann::json::parse(got[1].body);
  EXPECT_EQ(first["type"], "message.posted");
  EXPECT_EQ(first["text"], "to the outside");
  EXPECT_EQ(first["link"], "support");
  EXPECT_EQ(first["webhook_id"], id);
  EXPECT_EQ(first["origin"]["platform"], "alpha");
  EXPECT_EQ(first["sender"]["display_name"], "Person on alpha");
  // The retry is the same delivery.
  EXPECT_EQ(second["idempotency_key"], first["idempotency_key"]);
  EXPECT_EQ(second["delivery_id"], first["delivery_id"]);
  EXPECT_EQ(first["attempt"], 1);
  EXPECT_EQ(second["attempt"], 2);
  // The other member still got it once, and nothing is dead.
  ASSERT_TRUE(beta->WaitForCalls(1));
  EXPECT_EQ(CtlOk(router, {"deadletter", "list"}), "no dead letters\n");

  // An incoming POST to an outgoing webhook's id is refused.
  EXPECT_EQ(PostHook(*webhook, absl::StrCat("/hooks/", id, "/", secret),
                     R"({"text": "x"})")
                .status,
            401);
}

// kill -9 of the webhook adapter while outgoing POSTs are in flight (the
// receiver has taken one and not answered yet), then a restart: the
// documented policy is "sent again with the same Idempotency-Key", so a
// receiver that deduplicates by that key has every message exactly once and
// nothing is lost.
TEST_F(OpsIntegrationTest, OutgoingWebhookKilledWhileSendingResendsTheSameKey) {
  constexpr int kMessages = 20;
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto webhook = WebhookAdapter(router);
  Receiver receiver;
  receiver.DelayAnswers(absl::Milliseconds(1500));
  CtlJson(router, {"webhook", "create", "--link", "support", "--outgoing",
                   "--url", receiver.url()});
  for (int i = 0; i < kMessages; ++i) {
    alpha->Post("A1", absl::StrFormat("out %02d", i));
  }
  ASSERT_TRUE(WaitFor([&] {
    return receiver.requests().size() >= 3 && receiver.pending() > 0;
  })) << webhook->ReadLog();
  webhook->Kill();
  receiver.DelayAnswers(absl::ZeroDuration());
  ASSERT_TRUE(webhook->Start().ok());

  // Each message by its key: the text, and how often it came.
  std::map<std::string, std::pair<std::string, int>> by_key;
  auto received = [&] {
    by_key.clear();
    for (const HttpRequest& request : receiver.requests()) {
      nlohmann::json body = nlohmann::json::parse(request.body);
      std::string key(request.Header("idempotency-key"));
      EXPECT_EQ(body["idempotency_key"], key);
      auto& entry = by_key[key];
      entry.first = body["text"];
      ++entry.second;
    }
    return by_key.size();
  };
  ASSERT_TRUE(
      WaitFor([&] { return received() >= kMessages; }, absl::Seconds(90)))
      << received() << "\n"
      << webhook->ReadLog();
  std::multiset<std::string> texts;
  int repeated = 0;
  for (const auto& [key, entry] : by_key) {
    texts.insert(entry.first);
    if (entry.second > 1) ++repeated;
  }
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(texts.count(absl::StrFormat("out %02d", i)), 1u) << i;
  }
  // The POST left open by the kill was sent again with its key.
  EXPECT_GE(repeated, 1);
}

// One webhook adapter process serves two accounts: each account's incoming
// webhook publishes as that account, the outgoing webhook of either account
// receives the link's messages, and a webhook of an account the process does
// not serve is refused.
TEST_F(OpsIntegrationTest, OneWebhookAdapterServesSeveralAccounts) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto webhook =
      WebhookAdapter(router, "accounts:\n  - {name: ci}\n  - {name: ops}\n");
  Receiver receiver;
  auto create = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"webhook", "create", "--link", "support"};
    args.insert(args.end(), extra.begin(), extra.end());
    return CtlJson(router, args);
  };
  nlohmann::json ci = create({"--account", "ci"});
  nlohmann::json ops = create({"--account", "ops"});
  nlohmann::json other = create({"--account", "elsewhere"});
  nlohmann::json out =
      create({"--account", "ops", "--outgoing", "--url", receiver.url()});
  auto post = [&](const nlohmann::json& hook, const std::string& text) {
    return PostHook(
               *webhook,
               absl::StrCat("/hooks/", hook["webhook"]["id"].get<std::string>(),
                            "/", hook["secret"].get<std::string>()),
               nlohmann::json{{"text", text}}.dump())
        .status;
  };
  EXPECT_EQ(post(ci, "from ci"), 200) << webhook->ReadLog();
  EXPECT_EQ(post(ops, "from ops"), 200) << webhook->ReadLog();
  EXPECT_EQ(post(other, "from elsewhere"), 401);
  ASSERT_TRUE(alpha->WaitForCalls(2)) << router.ReadLog();
  std::map<std::string, std::string> account_of;
  for (const v1::Delivery& d : alpha->deliveries()) {
    account_of[d.event().posted().text().text()] =
        d.event().channel().account();
  }
  EXPECT_EQ(account_of["from ci"], "ci");
  EXPECT_EQ(account_of["from ops"], "ops");

  // The outgoing webhook (account ops) gets what alpha says, and the
  // messages of the other webhooks of the link.
  alpha->Post("A1", "to the outside");
  ASSERT_TRUE(WaitFor([&] {
    for (const HttpRequest& r : receiver.requests()) {
      if (nlohmann::json::parse(r.body)["text"] == "to the outside") {
        return true;
      }
    }
    return false;
  })) << webhook->ReadLog();
  for (const HttpRequest& r : receiver.requests()) {
    EXPECT_EQ(nlohmann::json::parse(r.body)["webhook_id"],
              out["webhook"]["id"]);
  }
  EXPECT_EQ(CtlOk(router, {"deadletter", "list"}), "no dead letters\n");
}

TEST_F(OpsIntegrationTest, AdminCallsNeedTheAdminToken) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }

  ProcessResult r = Ctl(router, {"stats"}, /*token=*/false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: UNAUTHENTICATED: "));
  EXPECT_EQ(r.out, "");
  r = Ctl(router, {"link", "list", "--token", "wrong-token-0123456789"},
          /*token=*/false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: UNAUTHENTICATED: "));
  // The adapter token is not an admin token.
  r = Ctl(router, {"link", "list", "--token", kAdapterToken}, /*token=*/false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: UNAUTHENTICATED: "));

  std::string token_file = MakeTempDir("ops-token") + "/admin.token";
  std::ofstream(token_file) << kAdminToken << "\n";
  r = Ctl(router, {"stats", "--token-file", token_file}, /*token=*/false);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("router id:"));

  // Usage errors never reach the router.
  r = Ctl(router, {"link", "create", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage: imbridgectl link create"));

  // Without admin_token in its config the router has no Admin API.
  RouterProcess closed(RouterConfig(/*with_admin_token=*/false));
  ASSERT_TRUE(closed.Start().ok()) << closed.ReadLog();
  r = Ctl(closed, {"stats"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("imbridgectl: UNIMPLEMENTED: "));
}

TEST_F(OpsIntegrationTest, JsonOutputOfEveryListParses) {
  RouterProcess router(RouterConfig());
  {
    absl::Status started = router.Start();
    ASSERT_TRUE(started.ok()) << started << router.ReadLog();
  }
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "counted");
  ASSERT_TRUE(beta->WaitForCalls(1));

  nlohmann::json adapters = CtlJson(router, {"adapter", "list"});
  ASSERT_EQ(adapters["adapters"].size(), 2u) << adapters.dump();
  std::set<std::string> platforms;
  for (const auto& a : adapters["adapters"]) {
    platforms.insert(a["platform"].get<std::string>());
    EXPECT_EQ(a["credentialName"], "tests");
  }
  EXPECT_EQ(platforms, (std::set<std::string>{"alpha", "beta"}));

  nlohmann::json queues = CtlJson(router, {"queue", "list"});
  EXPECT_TRUE(queues.is_object()) << queues.dump();
  nlohmann::json stats = CtlJson(router, {"stats"});
  EXPECT_EQ(stats["eventsAccepted"], "1") << stats.dump();
  EXPECT_EQ(stats["attachedAdapters"], 2);
  EXPECT_EQ(stats["links"], 1);
  EXPECT_TRUE(CtlJson(router, {"webhook", "list"}).is_object());
  EXPECT_TRUE(CtlJson(router, {"deadletter", "list"}).is_object());
  nlohmann::json link = CtlJson(router, {"link", "show", "support"});
  EXPECT_EQ(link["link"]["members"].size(), 2u);
  EXPECT_EQ(link["source"], "CONFIG");

  // The tables for people have their headers.
  EXPECT_THAT(CtlOk(router, {"adapter", "list"}), StartsWith("CREDENTIAL "));
  EXPECT_THAT(CtlOk(router, {"link", "list"}), StartsWith("NAME "));
}

}  // namespace
}  // namespace imbridge::testing
