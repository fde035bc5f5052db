// Hostile clients against the real router and adapter binaries on 127.0.0.1
// (issue 17, docs/reliability.md "Hostile clients"): every HTTP endpoint gets
// oversized, truncated, malformed and wrongly typed bodies and forged, stale
// signatures; each process then holds 1,000 slowloris connections and takes
// 10,000 forged requests while real requests are timed; the router's gRPC
// port gets unauthenticated streams and oversized frames. The messengers are
// the in-process fakes; everything else is real.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "emulators/bitrix24/fake_bitrix24.h"
#include "emulators/botsplash/fake_botsplash.h"
#include "emulators/slack/fake_slack.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "emulators/telegram/fake_telegram.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/router.grpc.pb.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"
#include "tests/integration/sanitizer_memory.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

constexpr char kToken[] = "hostile-clients-router-token-0123";
constexpr char kTelegramSecret[] = "hostile-Telegram_secret-0123";
constexpr char kTeamSpiritKey[] = "ts-hostile-api-key-0123";
constexpr char kTeamSpiritSecret[] = "ts-hostile-webhook-secret";
constexpr char kBitrixAppToken[] = "b24-hostile-application-token";
constexpr char kBotsplashSecret[] = "bsp-hostile-reply-secret-0123";
constexpr char kChatlioSecret[] = "chatlio-hostile-path-secret-0123";
// HttpServer::Options::header_timeout, the default of every process.
constexpr absl::Duration kHeaderTimeout = absl::Seconds(10);
// The router, Botsplash and Chatlio are configured with
// `http.header_timeout_ms: 3000`: their idle connections must be closed
// after 3 s, which the default would not do in time.
constexpr absl::Duration kConfiguredHeaderTimeout = absl::Seconds(3);
constexpr char kHeaderTimeoutField[] = "header_timeout_ms: 3000\n";
constexpr size_t kMaxBody = 1 << 20;  // The default http.max_body_bytes.

// One HTTP answer as read off the socket: status 0 when the server closed
// the connection without answering, -1 when nothing came in time.
struct RawResponse {
  int status = -1;
  std::string body;
  bool close = false;  // The server said Connection: close (or closed).
};

// A blocking TCP connection to 127.0.0.1 whose reads give up after
// `timeout`, so a hanging server fails the test instead of hanging it.
class RawConnection {
 public:
  explicit RawConnection(int port, absl::Duration timeout = absl::Seconds(15)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval tv = absl::ToTimeval(timeout);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  // Reads one response (header and Content-Length body).
  RawResponse Read() {
    RawResponse response;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      int got = Fill();
      if (got == 0) {
        response.status = buffer_.empty() ? 0 : -1;
        response.close = true;
        return response;
      }
      if (got < 0) return response;
    }
    std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 2 || !absl::SimpleAtoi(first[1], &response.status)) {
      response.status = -1;
      return response;
    }
    size_t length = 0;
    for (const std::string& line : lines) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)),
                               &length);
      }
      if (absl::StartsWithIgnoreCase(line, "connection:") &&
          absl::StrContains(absl::AsciiStrToLower(line), "close")) {
        response.close = true;
      }
    }
    while (buffer_.size() < length) {
      if (Fill() <= 0) {
        response.status = -1;
        return response;
      }
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  // True once the server closes the connection (EOF or reset); false when
  // it is still open after the read timeout.
  bool WaitClosed() {
    for (;;) {
      int got = Fill();
      if (got == 0) return true;
      if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int Fill() {
    char chunk[8192];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
    return static_cast<int>(n);
  }

  int fd_ = -1;
  std::string buffer_;
};

std::string RequestText(absl::string_view method, absl::string_view path,
                        const HttpHeaderList& headers, absl::string_view body,
                        bool with_length = true) {
  std::string text =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&text, name, ": ", value, "\r\n");
  }
  if (with_length)
    absl::StrAppend(&text, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&text, "\r\n", body);
  return text;
}

RawResponse Exchange(int port, const std::string& request) {
  RawConnection conn(port);
  if (!conn.ok() || !conn.Send(request)) return RawResponse{};
  return conn.Read();
}

// /proc figures of one process.
struct ProcessSample {
  int fds = 0;
  int64_t rss_kib = 0;
};

ProcessSample Sample(pid_t pid) {
  ProcessSample s;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::string value(absl::StripAsciiWhitespace(line.substr(6)));
      (void)absl::SimpleAtoi(value.substr(0, value.find(' ')), &s.rss_kib);
    }
  }
  return s;
}

// Latencies of real requests made while an attack runs.
struct Latencies {
  std::vector<absl::Duration> samples;
  int failed = 0;

  void Add(absl::Duration d) { samples.push_back(d); }
  absl::Duration Quantile(double q) const {
    if (samples.empty()) return absl::InfiniteDuration();
    std::vector<absl::Duration> sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1,
                           static_cast<size_t>(q * sorted.size()))];
  }
};

// One process under attack: its HTTP port and pid.
struct Target {
  std::string name;
  int port = 0;
  pid_t pid = -1;
  absl::Duration header_timeout;
};

// One webhook endpoint and how a genuine sender authenticates a body.
struct Webhook {
  std::string name;
  int port = 0;
  std::string path;
  // Headers authenticating `body` as signed at `when`.
  std::function<HttpHeaderList(const std::string& body, absl::Time when)> sign;
  // Headers of a forger (wrong key or signature).
  HttpHeaderList forged;
  // Whether the endpoint checks a timestamp (a replay after the window is
  // refused); Telegram and the webhook adapter's keys have none.
  bool timestamped = false;
  // Whether a request authenticated by `sign` reaches the body parser; the
  // webhook adapter's keys live in the router, which this test does not
  // provision, so its bodies are refused 401 before they are parsed.
  bool can_sign = true;
  // Where a forger posts (empty: `path`) and what it gets.
  std::string forged_path = "";
  int forged_status = 401;
  // A Content-Type the endpoint does not take (415): a form post for a JSON
  // endpoint.
  std::string wrong_type = "application/x-www-form-urlencoded";

  const std::string& ForgedPath() const {
    return forged_path.empty() ? path : forged_path;
  }
};

// A real request the processes must keep serving: /healthz (200).
absl::Duration TimedHealthz(int port, bool* ok) {
  absl::Time start = absl::Now();
  RawResponse r = Exchange(port, RequestText("GET", "/healthz", {}, "", false));
  *ok = r.status == 200;
  return absl::Now() - start;
}

class HostileClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    slack_ = new fakes::FakeSlack(fakes::FakeSlack::Options{});
    ASSERT_TRUE(slack_->Start().ok());
    slack_->AddChannel("C1", "general");
    telegram_ = new fakes::FakeTelegram(fakes::FakeTelegram::Options{});
    ASSERT_TRUE(telegram_->Start().ok());
    teamspirit_ = new fakes::FakeTeamSpirit(fakes::FakeTeamSpirit::Options{});
    teamspirit_->AddBot("u-bot", "Bridge", kTeamSpiritKey);
    ASSERT_TRUE(teamspirit_->Start().ok());
    bitrix24_ = new emulators::FakeBitrix24(emulators::FakeBitrix24::Options{});
    ASSERT_TRUE(bitrix24_->Start().ok());
    botsplash_ =
        new emulators::FakeBotsplash(emulators::FakeBotsplash::Options{});
    ASSERT_TRUE(botsplash_->Start().ok());

    router_ = new RouterProcess(
        absl::StrCat("adapters:\n  - {name: tests, token: ", kToken, "}\n",
                     "store: {durability: normal}\n",
                     "http: {listen: '127.0.0.1:0', header_timeout_ms: 3000}\n",
                     "links:\n  - name: crowd\n    members:\n",
                     "      - {platform: lazy, account: l, chat_id: L1}\n",
                     "      - {platform: beta, account: b, chat_id: B1}\n",
                     "      - {platform: gamma, account: g, chat_id: G1}\n"));
    absl::Status s = router_->Start();
    ASSERT_TRUE(s.ok()) << s << router_->ReadLog();
    std::string router =
        absl::StrCat("router: {address: '", router_->address(),
                     "', token: ", kToken, "}\nlog_level: warn\n");
    webhook_ =
        new AdapterProcess("adapters/webhook/imbridge-adapter-webhook", router);
    slack_adapter_ = new AdapterProcess(
        "adapters/slack/imbridge-adapter-slack",
        absl::StrCat(router, "accounts:\n  - name: work\n    mode: http\n",
                     "    bot_token: ", slack_->options().bot_token, "\n",
                     "    signing_secret: ", slack_->options().signing_secret,
                     "\n    app_token: ", slack_->options().app_token, "\n",
                     "    api_base_url: \"", slack_->api_base_url(), "\"\n"));
    telegram_adapter_ = new AdapterProcess(
        "adapters/telegram/imbridge-adapter-telegram",
        absl::StrCat(
            router, "state_dir: ", MakeTempDir("hostile-tg"),
            "\naccounts:\n  - name: main\n    token: '", telegram_->token(),
            "'\n    api_base_url: ", telegram_->base_url(),
            "\n    mode: webhook\n    secret_token: ", kTelegramSecret, "\n"));
    teamspirit_adapter_ = new AdapterProcess(
        "adapters/teamspirit/imbridge-adapter-teamspirit",
        absl::StrCat(router, "account: corp\napi_base_url: ",
                     teamspirit_->api_base_url(), "\napi_key: ", kTeamSpiritKey,
                     "\nwebhook_secret: ", kTeamSpiritSecret, "\n"));
    bitrix24_adapter_ = new AdapterProcess(
        "adapters/bitrix24/imbridge-adapter-bitrix24",
        absl::StrCat(router, "state_dir: ", MakeTempDir("hostile-b24"),
                     "\naccounts:\n  - name: main\n    webhook_url: '",
                     bitrix24_->webhook_url(),
                     "'\n    bot_token: hostile-bot-token-0123\n",
                     "    bot_id: 1\n    mode: webhook\n",
                     "    application_token: ", kBitrixAppToken, "\n"));
    botsplash_adapter_ = new AdapterProcess(
        "adapters/botsplash/imbridge-adapter-botsplash",
        absl::StrCat(router, "state_dir: ", MakeTempDir("hostile-bsp"),
                     "\naccounts:\n  - name: sales\n    base_url: ",
                     botsplash_->base_url(),
                     "\n    app_id: ", botsplash_->options().app_id,
                     "\n    api_key: ", botsplash_->options().api_key,
                     "\n    listener_id: lst-1\n    paths: {direct_message: ",
                     "/message/visitor, update_visitor: ",
                     "'/visitor/{idType}/{idValue}'}\n    replies: {secret: ",
                     kBotsplashSecret, "}\n"));
    chatlio_adapter_ = new AdapterProcess(
        "adapters/chatlio/imbridge-adapter-chatlio",
        absl::StrCat(
            router, "state_dir: ", MakeTempDir("hostile-chatlio"),
            "\naccounts:\n  - name: site\n    webhook_secret: ", kChatlioSecret,
            "\n    slack_workspace_url: https://acme.slack.com\n"));
    botsplash_adapter_->set_http_fields(kHeaderTimeoutField);
    chatlio_adapter_->set_http_fields(kHeaderTimeoutField);
    for (AdapterProcess* a : Adapters()) {
      s = a->Start();
      ASSERT_TRUE(s.ok()) << s << a->ReadLog();
    }
  }

  static void TearDownTestSuite() {
    for (AdapterProcess* a : Adapters()) delete a;
    delete bitrix24_;
    delete botsplash_;
    delete router_;
    delete slack_;
    delete telegram_;
    delete teamspirit_;
  }

  static std::vector<AdapterProcess*> Adapters() {
    return {webhook_,          slack_adapter_,
            telegram_adapter_, teamspirit_adapter_,
            bitrix24_adapter_, botsplash_adapter_,
            chatlio_adapter_};
  }

  void SetUp() override {
    for (AdapterProcess* a : Adapters()) {
      ASSERT_NE(a, nullptr);
      ASSERT_TRUE(a->running()) << a->ReadLog();
    }
  }

  static std::vector<Target> Targets() {
    return {
        {"router", router_->http_port(), router_->pid(),
         kConfiguredHeaderTimeout},
        {"webhook", webhook_->port(), webhook_->pid(), kHeaderTimeout},
        {"slack", slack_adapter_->port(), slack_adapter_->pid(),
         kHeaderTimeout},
        {"telegram", telegram_adapter_->port(), telegram_adapter_->pid(),
         kHeaderTimeout},
        {"teamspirit", teamspirit_adapter_->port(), teamspirit_adapter_->pid(),
         kHeaderTimeout},
        {"bitrix24", bitrix24_adapter_->port(), bitrix24_adapter_->pid(),
         kHeaderTimeout},
        {"botsplash", botsplash_adapter_->port(), botsplash_adapter_->pid(),
         kConfiguredHeaderTimeout},
        {"chatlio", chatlio_adapter_->port(), chatlio_adapter_->pid(),
         kConfiguredHeaderTimeout},
    };
  }

  static std::vector<Webhook> Webhooks() {
    std::vector<Webhook> hooks;
    std::string slack_secret = slack_->options().signing_secret;
    hooks.push_back(Webhook{
        "slack",
        slack_adapter_->port(),
        "/slack/work/events",
        [slack_secret](const std::string& body, absl::Time when) {
          std::string ts = absl::StrCat(absl::ToUnixSeconds(when));
          return HttpHeaderList{
              {"Content-Type", "application/json"},
              {"X-Slack-Request-Timestamp", ts},
              {"X-Slack-Signature",
               "v0=" + HmacSha256Hex(slack_secret,
                                     absl::StrCat("v0:", ts, ":", body))}};
        },
        {{"Content-Type", "application/json"},
         {"X-Slack-Request-Timestamp",
          absl::StrCat(absl::ToUnixSeconds(absl::Now()))},
         {"X-Slack-Signature", "v0=" + std::string(64, 'a')}},
        /*timestamped=*/true});
    hooks.push_back(
        Webhook{"telegram",
                telegram_adapter_->port(),
                "/telegram/main",
                [](const std::string&, absl::Time) {
                  return HttpHeaderList{
                      {"Content-Type", "application/json"},
                      {"X-Telegram-Bot-Api-Secret-Token", kTelegramSecret}};
                },
                {{"Content-Type", "application/json"},
                 {"X-Telegram-Bot-Api-Secret-Token", "not-the-secret"}}});
    hooks.push_back(
        Webhook{"teamspirit",
                teamspirit_adapter_->port(),
                "/teamspirit/events",
                [](const std::string& body, absl::Time when) {
                  std::string ts = absl::StrCat(absl::ToUnixSeconds(when));
                  return HttpHeaderList{
                      {"Content-Type", "application/json"},
                      {"X-TeamSpirit-Timestamp", ts},
                      {"X-TeamSpirit-Signature",
                       "v1=" + HmacSha256Hex(kTeamSpiritSecret,
                                             absl::StrCat(ts, ".", body))}};
                },
                {{"Content-Type", "application/json"},
                 {"X-TeamSpirit-Timestamp",
                  absl::StrCat(absl::ToUnixSeconds(absl::Now()))},
                 {"X-TeamSpirit-Signature", "v1=" + std::string(64, 'b')}},
                /*timestamped=*/true});
    hooks.push_back(Webhook{"webhook",
                            webhook_->port(),
                            "/hooks/wh-unknown",
                            [](const std::string&, absl::Time) {
                              return HttpHeaderList{
                                  {"Content-Type", "application/json"},
                                  {"Authorization", "Bearer not-a-real-key"}};
                            },
                            {{"Content-Type", "application/json"},
                             {"Authorization", "Bearer forged-key-0123456789"}},
                            /*timestamped=*/false,
                            /*can_sign=*/false});
    // The webhook adapter takes JSON and form posts.
    hooks.back().wrong_type = "text/plain";
    // Bitrix24 authenticates with auth[application_token] in the form body,
    // so a header cannot sign; its own cases are in BitrixFormEndpoint.
    hooks.push_back(
        Webhook{"bitrix24",
                bitrix24_adapter_->port(),
                "/bitrix24/main",
                [](const std::string&, absl::Time) {
                  return HttpHeaderList{
                      {"Content-Type", "application/x-www-form-urlencoded"}};
                },
                {{"Content-Type", "application/x-www-form-urlencoded"}},
                /*timestamped=*/false,
                /*can_sign=*/false});
    hooks.back().wrong_type = "application/json";
    hooks.push_back(Webhook{
        "botsplash",
        botsplash_adapter_->port(),
        "/botsplash/sales/replies",
        [](const std::string&, absl::Time) {
          return HttpHeaderList{{"Content-Type", "application/json"},
                                {"X-Botsplash-Secret", kBotsplashSecret}};
        },
        {{"Content-Type", "application/json"},
         {"X-Botsplash-Secret", "forged-secret-0123456789"}}});
    // Chatlio's secret is a path segment: a wrong one is 404 (no such
    // webhook), not 401, so that a guess does not confirm the account.
    Webhook chatlio{
        "chatlio",
        chatlio_adapter_->port(),
        absl::StrCat("/chatlio/site/", kChatlioSecret),
        [](const std::string&, absl::Time) {
          return HttpHeaderList{{"Content-Type", "application/json"}};
        },
        {{"Content-Type", "application/json"}}};
    chatlio.forged_path = "/chatlio/site/forged-secret-0123456789";
    chatlio.forged_status = 404;
    hooks.push_back(std::move(chatlio));
    return hooks;
  }

  static RouterProcess* router_;
  static AdapterProcess* webhook_;
  static AdapterProcess* slack_adapter_;
  static AdapterProcess* telegram_adapter_;
  static AdapterProcess* teamspirit_adapter_;
  static AdapterProcess* bitrix24_adapter_;
  static AdapterProcess* botsplash_adapter_;
  static AdapterProcess* chatlio_adapter_;
  static fakes::FakeSlack* slack_;
  static fakes::FakeTelegram* telegram_;
  static fakes::FakeTeamSpirit* teamspirit_;
  static emulators::FakeBitrix24* bitrix24_;
  static emulators::FakeBotsplash* botsplash_;
};

RouterProcess* HostileClientsTest::router_ = nullptr;
AdapterProcess* HostileClientsTest::webhook_ = nullptr;
AdapterProcess* HostileClientsTest::slack_adapter_ = nullptr;
AdapterProcess* HostileClientsTest::telegram_adapter_ = nullptr;
AdapterProcess* HostileClientsTest::teamspirit_adapter_ = nullptr;
AdapterProcess* HostileClientsTest::bitrix24_adapter_ = nullptr;
AdapterProcess* HostileClientsTest::botsplash_adapter_ = nullptr;
AdapterProcess* HostileClientsTest::chatlio_adapter_ = nullptr;
fakes::FakeSlack* HostileClientsTest::slack_ = nullptr;
fakes::FakeTelegram* HostileClientsTest::telegram_ = nullptr;
fakes::FakeTeamSpirit* HostileClientsTest::teamspirit_ = nullptr;
emulators::FakeBitrix24* HostileClientsTest::bitrix24_ = nullptr;
emulators::FakeBotsplash* HostileClientsTest::botsplash_ = nullptr;

// Every path of every process (/healthz, /readyz, /metrics and each
// webhook): an oversized Content-Length is 413 before the body is read, a
// malformed request 400, and a truncated body (then a close, or a stall) a
// clean close without an answer while other clients are served.
TEST_F(HostileClientsTest, EveryEndpointRefusesBrokenRequests) {
  std::vector<std::pair<Target, std::pair<std::string, std::string>>> paths;
  for (const Target& t : Targets()) {
    for (const char* p : {"/healthz", "/readyz", "/metrics"}) {
      paths.push_back({t, {"GET", p}});
    }
  }
  for (const Webhook& w : Webhooks()) {
    for (const Target& t : Targets()) {
      if (t.port == w.port) paths.push_back({t, {"POST", w.path}});
    }
  }
  for (const auto& [target, route] : paths) {
    const auto& [method, path] = route;
    SCOPED_TRACE(absl::StrCat(target.name, " ", method, " ", path));
    // Oversized: refused on the header alone.
    {
      RawConnection conn(target.port);
      ASSERT_TRUE(conn.ok());
      ASSERT_TRUE(
          conn.Send(absl::StrCat(method, " ", path,
                                 " HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                 "application/json\r\nContent-Length: ",
                                 kMaxBody + 1, "\r\n\r\n")));
      RawResponse r = conn.Read();
      EXPECT_EQ(r.status, 413) << r.body;
      EXPECT_TRUE(r.close);
    }
    // Malformed request (a Content-Length that is not a number).
    {
      RawResponse r =
          Exchange(target.port, absl::StrCat(method, " ", path,
                                             " HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Length: ten\r\n\r\n"));
      EXPECT_EQ(r.status, 400) << r.body;
    }
    // Truncated, then closed: no answer, a clean close, no hang.
    {
      RawConnection conn(target.port);
      ASSERT_TRUE(conn.ok());
      ASSERT_TRUE(conn.Send(absl::StrCat(
          method, " ", path,
          " HTTP/1.1\r\nHost: x\r\nContent-Type: "
          "application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")));
      conn.ShutdownWrite();
      RawResponse r = conn.Read();
      EXPECT_EQ(r.status, 0) << "answered a truncated body: " << r.body;
    }
    // Truncated, then stalled: other clients are served meanwhile.
    {
      RawConnection stalled(target.port);
      ASSERT_TRUE(stalled.ok());
      ASSERT_TRUE(stalled.Send(absl::StrCat(
          method, " ", path,
          " HTTP/1.1\r\nHost: x\r\nContent-Type: "
          "application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")));
      bool ok = false;
      absl::Duration took = TimedHealthz(target.port, &ok);
      EXPECT_TRUE(ok);
      EXPECT_LT(took, absl::Seconds(5));
    }
  }
}

// Each webhook: a forged signature or key is 401 (Chatlio's path secret
// 404), a genuine signature on a
// stale timestamp (a replay) 401; a genuinely signed body that is not JSON
// 400, and one of the wrong content type (a form post to a JSON endpoint,
// JSON to a form endpoint) 415 before its signature is looked at (see
// docs/reliability.md).
TEST_F(HostileClientsTest, WebhooksRefuseForgedStaleAndMalformedBodies) {
  const std::string genuine = R"({"type":"event_callback","event_id":"Ev1"})";
  for (const Webhook& w : Webhooks()) {
    SCOPED_TRACE(w.name);
    RawResponse forged = Exchange(
        w.port, RequestText("POST", w.ForgedPath(), w.forged, genuine));
    EXPECT_EQ(forged.status, w.forged_status) << forged.body;
    if (w.timestamped) {
      absl::Time stale = absl::Now() - absl::Minutes(10);
      RawResponse replay = Exchange(
          w.port, RequestText("POST", w.path, w.sign(genuine, stale), genuine));
      EXPECT_EQ(replay.status, 401) << replay.body;
      absl::Time future = absl::Now() + absl::Minutes(10);
      RawResponse ahead = Exchange(
          w.port,
          RequestText("POST", w.path, w.sign(genuine, future), genuine));
      EXPECT_EQ(ahead.status, 401) << ahead.body;
    }
    const std::string broken = R"({"type":"event_callback","event)";
    RawResponse malformed = Exchange(
        w.port,
        RequestText("POST", w.path, w.sign(broken, absl::Now()), broken));
    EXPECT_EQ(malformed.status, w.can_sign ? 400 : 401) << malformed.body;

    const std::string form = "payload=hello&type=message";
    HttpHeaderList headers = w.sign(form, absl::Now());
    for (auto& [name, value] : headers) {
      if (absl::EqualsIgnoreCase(name, "Content-Type")) value = w.wrong_type;
    }
    RawResponse typed =
        Exchange(w.port, RequestText("POST", w.path, headers, form));
    EXPECT_EQ(typed.status, 415) << w.wrong_type << ": " << typed.body;
    EXPECT_THAT(typed.body, ::testing::HasSubstr("unsupported_media_type"));

    // Not UTF-8 under a JSON content type: 400 before the handler.
    const std::string latin1 = "{\"text\":\"caf\xE9\"}";
    RawResponse bad_utf8 = Exchange(
        w.port,
        RequestText("POST", w.path, w.sign(latin1, absl::Now()), latin1));
    EXPECT_EQ(bad_utf8.status, 400) << bad_utf8.body;
  }
}

// 1,000 connections per process that send half a header and stop. Real
// requests are served meanwhile (latency printed), every idle connection is
// closed after the header timeout, and descriptors and RSS stay bounded.
TEST_F(HostileClientsTest, SlowlorisThousandIdleConnectionsPerProcess) {
  constexpr int kIdle = 1000;
  std::vector<Target> targets = Targets();
  std::vector<ProcessSample> before;
  for (const Target& t : targets) before.push_back(Sample(t.pid));

  std::vector<std::vector<std::unique_ptr<RawConnection>>> idle(targets.size());
  absl::Time opened = absl::Now();
  for (size_t i = 0; i < targets.size(); ++i) {
    for (int c = 0; c < kIdle; ++c) {
      auto conn =
          std::make_unique<RawConnection>(targets[i].port, absl::Seconds(30));
      ASSERT_TRUE(conn->ok()) << targets[i].name << " connection " << c;
      ASSERT_TRUE(conn->Send("POST /x HTTP/1.1\r\nHost: a\r\nX-Slow: "));
      idle[i].push_back(std::move(conn));
    }
  }
  absl::Duration open_time = absl::Now() - opened;

  // Real traffic while the connections are held.
  std::printf("slowloris: %d idle connections per process, opened in %s\n",
              kIdle, absl::FormatDuration(open_time).c_str());
  for (size_t i = 0; i < targets.size(); ++i) {
    Latencies lat;
    for (int r = 0; r < 20; ++r) {
      bool ok = false;
      absl::Duration d = TimedHealthz(targets[i].port, &ok);
      if (ok) {
        lat.Add(d);
      } else {
        ++lat.failed;
      }
    }
    ProcessSample during = Sample(targets[i].pid);
    std::printf(
        "  %-10s healthz p50 %s max %s failed %d | fds %d -> %d, RSS %lld -> "
        "%lld KiB\n",
        targets[i].name.c_str(),
        absl::FormatDuration(lat.Quantile(0.5)).c_str(),
        absl::FormatDuration(lat.Quantile(1.0)).c_str(), lat.failed,
        before[i].fds, during.fds, static_cast<long long>(before[i].rss_kib),
        static_cast<long long>(during.rss_kib));
    EXPECT_EQ(lat.failed, 0) << targets[i].name;
    EXPECT_LT(lat.Quantile(1.0), absl::Seconds(2) * AsanSlowdown())
        << targets[i].name;
    EXPECT_LE(during.fds, before[i].fds + kIdle + 16) << targets[i].name;
    // Under ASan, plus what its quarantine keeps (sanitizer_memory.h).
    EXPECT_LT(during.rss_kib - before[i].rss_kib, 64 * 1024 + AsanRssSlackKib())
        << targets[i].name;
  }

  // Every idle connection is closed once its header timeout passes.
  for (size_t i = 0; i < targets.size(); ++i) {
    absl::Time deadline =
        opened + targets[i].header_timeout + open_time + absl::Seconds(8);
    ProcessSample now = Sample(targets[i].pid);
    while (now.fds > before[i].fds + 16 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
      now = Sample(targets[i].pid);
    }
    EXPECT_LE(now.fds, before[i].fds + 16)
        << targets[i].name << " still holds the idle connections";
    std::printf(
        "  %-10s idle connections closed after %s (header timeout %s)\n",
        targets[i].name.c_str(),
        absl::FormatDuration(absl::Now() - opened).c_str(),
        absl::FormatDuration(targets[i].header_timeout).c_str());
    for (int c = 0; c < kIdle; c += 97) {
      EXPECT_TRUE(idle[i][c]->WaitClosed()) << targets[i].name << " " << c;
    }
  }
}

// 16,000 requests with forged keys and signatures (2,000 per process, on
// keep-alive connections): each is 401 (404 for the router's unknown
// paths and Chatlio's path secrets), real requests are served meanwhile
// (latency printed), and RSS stays bounded.
TEST_F(HostileClientsTest, TenThousandForgedRequests) {
  constexpr int kPerTarget = 2000;
  struct Attack {
    std::string name;
    int port;
    pid_t pid;
    std::string request;
    int expected;
  };
  std::vector<Attack> attacks;
  for (const Webhook& w : Webhooks()) {
    pid_t pid = -1;
    for (const Target& t : Targets()) {
      if (t.port == w.port) pid = t.pid;
    }
    attacks.push_back({w.name, w.port, pid,
                       RequestText("POST", w.ForgedPath(), w.forged, "{}"),
                       w.forged_status});
  }
  attacks.push_back({"router", router_->http_port(), router_->pid(),
                     RequestText("GET", "/admin/secrets", {}, "", false), 404});

  std::vector<ProcessSample> before;
  for (const Attack& a : attacks) before.push_back(Sample(a.pid));
  std::atomic<int> wrong{0};
  std::atomic<bool> done{false};
  absl::Time start = absl::Now();
  std::vector<std::thread> attackers;
  for (const Attack& a : attacks) {
    attackers.emplace_back([&a, &wrong] {
      std::unique_ptr<RawConnection> conn;
      for (int i = 0; i < kPerTarget; ++i) {
        if (conn == nullptr) conn = std::make_unique<RawConnection>(a.port);
        RawResponse r;
        if (conn->Send(a.request)) r = conn->Read();
        if (r.status != a.expected) ++wrong;
        if (r.close || r.status <= 0) conn.reset();
      }
    });
  }
  std::vector<Latencies> lat(attacks.size());
  std::thread prober([&] {
    while (!done.load()) {
      for (size_t i = 0; i < attacks.size(); ++i) {
        bool ok = false;
        absl::Duration d = TimedHealthz(attacks[i].port, &ok);
        if (ok) {
          lat[i].Add(d);
        } else {
          ++lat[i].failed;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  for (std::thread& t : attackers) t.join();
  absl::Duration took = absl::Now() - start;
  done.store(true);
  prober.join();

  std::printf("forged requests: %d in %s, %d with an unexpected status\n",
              kPerTarget * static_cast<int>(attacks.size()),
              absl::FormatDuration(took).c_str(), wrong.load());
  EXPECT_EQ(wrong.load(), 0);
  for (size_t i = 0; i < attacks.size(); ++i) {
    ProcessSample after = Sample(attacks[i].pid);
    std::printf(
        "  %-10s healthz during: %zu ok, p50 %s, p99 %s, failed %d | RSS "
        "%lld -> %lld KiB\n",
        attacks[i].name.c_str(), lat[i].samples.size(),
        absl::FormatDuration(lat[i].Quantile(0.5)).c_str(),
        absl::FormatDuration(lat[i].Quantile(0.99)).c_str(), lat[i].failed,
        static_cast<long long>(before[i].rss_kib),
        static_cast<long long>(after.rss_kib));
    EXPECT_EQ(lat[i].failed, 0) << attacks[i].name;
    EXPECT_FALSE(lat[i].samples.empty()) << attacks[i].name;
    EXPECT_LT(lat[i].Quantile(0.99), absl::Seconds(2)) << attacks[i].name;
    EXPECT_LT(after.rss_kib - before[i].rss_kib, 64 * 1024 + AsanRssSlackKib())
        << attacks[i].name;
  }
}

// The router's gRPC port: an Attach without the adapter token, or with a
// wrong one, is UNAUTHENTICATED; a frame over the 64 MiB receive limit ends
// the stream with RESOURCE_EXHAUSTED; the router keeps serving either way.
TEST_F(HostileClientsTest, RouterGrpcRefusesUnauthenticatedAndOversized) {
  auto channel_args = grpc::ChannelArguments();
  channel_args.SetMaxSendMessageSize(128 << 20);
  auto channel = grpc::CreateCustomChannel(
      router_->address(), grpc::InsecureChannelCredentials(), channel_args);
  auto stub = v1::Router::NewStub(channel);
  for (const char* token : {"", "Bearer wrong-token-0123456789abcdef"}) {
    SCOPED_TRACE(token);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    if (*token != '\0') context.AddMetadata("authorization", token);
    auto stream = stub->Attach(&context);
    v1::AdapterFrame hello;
    hello.mutable_hello()->set_platform("intruder");
    hello.mutable_hello()->add_accounts("x");
    stream->Write(hello);
    stream->WritesDone();
    v1::RouterFrame frame;
    EXPECT_FALSE(stream->Read(&frame));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << status.error_message();
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    auto stream = stub->Attach(&context);
    v1::AdapterFrame huge;
    huge.mutable_hello()->set_platform("intruder");
    huge.mutable_hello()->set_adapter_name(std::string((64 << 20) + 1, 'x'));
    stream->Write(huge);
    stream->WritesDone();
    v1::RouterFrame frame;
    while (stream->Read(&frame)) {
    }
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << status.error_message();
  }
  // Still serving: every adapter is still attached, and /healthz answers.
  for (AdapterProcess* a : Adapters()) EXPECT_TRUE(a->running());
  EXPECT_TRUE(router_->WaitForMetric("imbridge_router_attached_adapters", {}, 7,
                                     absl::Seconds(30)))
      << router_->ReadLog();
  bool ok = false;
  TimedHealthz(router_->http_port(), &ok);
  EXPECT_TRUE(ok);
}

// Bitrix24's form endpoint: a JSON body is 415 (the HTTP server's, before
// the form is parsed); the application token is checked after the form is
// parsed, so a forged token is 401 and a genuine token without an event 400.
TEST_F(HostileClientsTest, BitrixFormEndpoint) {
  const int port = bitrix24_adapter_->port();
  const HttpHeaderList form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  RawResponse json_body =
      Exchange(port, RequestText("POST", "/bitrix24/main",
                                 {{"Content-Type", "application/json"}}, "{}"));
  EXPECT_EQ(json_body.status, 415) << json_body.body;
  RawResponse forged = Exchange(
      port, RequestText("POST", "/bitrix24/main", form,
                        "event=ONIMBOTV2MESSAGEADD&auth%5Bapplication_token"
                        "%5D=forged-token"));
  EXPECT_EQ(forged.status, 401) << forged.body;
  RawResponse no_event = Exchange(
      port, RequestText(
                "POST", "/bitrix24/main", form,
                absl::StrCat("auth%5Bapplication_token%5D=", kBitrixAppToken)));
  EXPECT_EQ(no_event.status, 400) << no_event.body;
}

// A client that attaches and never reads its deliveries: the router sends
// it at most its window, keeps the rest in the store, its memory stays
// bounded, and the other adapters of the same link get every message.
TEST_F(HostileClientsTest, AClientThatNeverReadsDoesNotHoldUpOthers) {
  constexpr int kPosts = 3000;
  grpc::ChannelArguments args;
  auto channel = grpc::CreateCustomChannel(
      router_->address(), grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Router::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  auto lazy = stub->Attach(&context);
  v1::AdapterFrame hello;
  hello.mutable_hello()->set_adapter_name("lazy");
  hello.mutable_hello()->set_platform("lazy");
  hello.mutable_hello()->add_accounts("l");
  ASSERT_TRUE(lazy->Write(hello));  // And never Read().

  TestAdapter beta("beta", "b", router_->address(), kToken);
  TestAdapter gamma("gamma", "g", router_->address(), kToken);
  beta.Start();
  gamma.Start();
  ASSERT_TRUE(beta.WaitAttached(absl::Seconds(30)));
  ASSERT_TRUE(gamma.WaitAttached(absl::Seconds(30)));
  ProcessSample before = Sample(router_->pid());
  absl::Time start = absl::Now();
  // 16 KiB texts: 3,000 of them buffered for the lazy client would be 48 MiB.
  const std::string filler(16 << 10, 'z');
  for (int i = 0; i < kPosts; ++i) {
    v1::PublishAck ack;
    beta.Post("B1", absl::StrCat(i, " ", filler), "", "", &ack);
    ASSERT_EQ(ack.outcome(), v1::PublishAck::ACCEPTED) << ack.detail();
  }
  EXPECT_TRUE(gamma.WaitForCalls(kPosts, absl::Seconds(120)));
  ProcessSample after = Sample(router_->pid());
  std::printf(
      "never-reading client: %d posts relayed to the other adapter in %s; "
      "router RSS %lld -> %lld KiB\n",
      kPosts, absl::FormatDuration(absl::Now() - start).c_str(),
      static_cast<long long>(before.rss_kib),
      static_cast<long long>(after.rss_kib));
  // Under ASan, plus what its quarantine keeps: the 48 MiB of texts relayed
  // pass through it (sanitizer_memory.h).
  EXPECT_LT(after.rss_kib - before.rss_kib, 32 * 1024 + AsanRssSlackKib());
  context.TryCancel();
}

}  // namespace
}  // namespace imbridge::testing
