// The sandbox against its fakes, with local receivers standing in for the
// adapters' webhook endpoints: what a person does on the page reaches the
// receiver signed as the real service signs it, and the page's event stream
// and state show the chats as the fakes hold them.

#include "tools/sandbox/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/slack/signature.h"
#include "adapters/teamspirit/signature.h"
#include "common/http/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/sandbox/sandbox_config.h"

namespace imbridge::sandbox {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kTsSecret[] = "ts-webhook-secret-for-tests";
constexpr char kSlackSecret[] = "slack-signing-secret-for-tests";

// A stand-in for an adapter's webhook endpoint: answers 200 and keeps what
// it received.
class Receiver {
 public:
  Receiver() : server_(HttpServer::Options()) {
    server_.HandlePrefix(
        "POST", "/",
        [this](HttpRequest request, std::shared_ptr<Responder> responder) {
          {
            absl::MutexLock lock(&mu_);
            requests_.push_back(std::move(request));
          }
          responder->Respond(200, "application/json", "{}");
        });
    EXPECT_TRUE(server_.Start().ok());
  }

  std::string url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", server_.port(), path);
  }

  // Waits for a request whose body contains `part`.
  std::optional<HttpRequest> WaitFor(const std::string& part) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&mu_);
        for (const HttpRequest& r : requests_) {
          if (absl::StrContains(r.body, part)) return r;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }

 private:
  HttpServer server_;
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<v1::SandboxConfig> config = ParseSandboxConfig(
        absl::StrCat(
            "teamspirit: {api_key: ts-api-key, webhook_secret: ", kTsSecret,
            ", webhook_url: \"", teamspirit_.url("/teamspirit/events"), "\"}\n",
            "slack: {bot_token: xoxb-test, signing_secret: ", kSlackSecret,
            ", events_url: \"", slack_.url("/slack/sandbox/events"), "\"}\n",
            "telegram: {bot_token: \"123:tg-test\"}\n"),
        "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    sandbox_ = std::make_unique<Sandbox>(*config);
    ASSERT_TRUE(sandbox_->Start().ok());
  }

  // The snapshot's messages of `messenger`.
  json Messages(const std::string& messenger) {
    return sandbox_->State()["messengers"][messenger]["messages"];
  }

  // Waits until the event stream shows a message of `messenger` whose text
  // contains `text`.
  bool WaitForEvent(const std::string& messenger, const std::string& text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      for (const json& e : Events()) {
        if (e["type"] == "message" && e["data"]["messenger"] == messenger &&
            absl::StrContains(e["data"]["message"]["text"].get<std::string>(),
                              text)) {
          return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Every event so far, parsed from the SSE body.
  std::vector<json> Events() {
    class Collect : public Responder {
     public:
      std::string body;

     protected:
      bool RespondImpl(int, absl::string_view, std::string b,
                       HttpHeaderList) override {
        body = std::move(b);
        return true;
      }
    };
    auto collect = std::make_shared<Collect>();
    if (sandbox_->events().last_id() == 0) return {};
    sandbox_->events().Subscribe(0, collect);
    std::vector<json> out;
    std::string type;
    for (absl::string_view line : absl::StrSplit(collect->body, '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) type = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) {
        out.push_back({{"type", type}, {"data", json::parse(line)}});
      }
    }
    return out;
  }

  Receiver teamspirit_;
  Receiver slack_;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_F(SandboxTest, ATeamSpiritPostIsASignedWebhookAndAnEvent) {
  absl::StatusOr<json> posted = sandbox_->Act(
      "teamspirit", "post", {{"user", "u-yuki"}, {"text", "Hello **all**"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  const std::string id = (*posted)["id"];

  std::optional<HttpRequest> hook = teamspirit_.WaitFor("Hello");
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->path, "/teamspirit/events");
  EXPECT_TRUE(adapters::teamspirit::VerifyTeamSpiritSignature(
                  kTsSecret, hook->Header("X-TeamSpirit-Timestamp"),
                  hook->Header("X-TeamSpirit-Signature"), hook->body,
                  absl::Now())
                  .ok());
  EXPECT_THAT(hook->body, HasSubstr("message.created"));

  ASSERT_TRUE(WaitForEvent("teamspirit", "Hello **all**"));
  json messages = Messages("teamspirit");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["id"], id);
  EXPECT_EQ(messages[0]["name"], "Yuki Tanaka");
  EXPECT_EQ(messages[0]["format"], "teamspirit");
  EXPECT_EQ(messages[0]["bridged"], false);

  // A reply threads under it; an edit and a delete follow.
  ASSERT_TRUE(sandbox_
                  ->Act("teamspirit", "post",
                        {{"user", "u-kenji"}, {"text", "re"}, {"reply_to", id}})
                  .ok());
  messages = Messages("teamspirit");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1]["reply_to"], id);
  EXPECT_EQ(messages[1]["thread"], id);
  ASSERT_TRUE(sandbox_
                  ->Act("teamspirit", "edit",
                        {{"user", "u-yuki"}, {"id", id}, {"text", "Hello all"}})
                  .ok());
  EXPECT_EQ(Messages("teamspirit")[0]["edited"], true);
  // Only the poster may edit or delete.
  EXPECT_EQ(
      sandbox_->Act("teamspirit", "delete", {{"user", "u-kenji"}, {"id", id}})
          .status()
          .code(),
      absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(
      sandbox_->Act("teamspirit", "delete", {{"user", "u-yuki"}, {"id", id}})
          .ok());
  EXPECT_EQ(Messages("teamspirit")[0]["deleted"], true);
  EXPECT_TRUE(teamspirit_.WaitFor("message.deleted").has_value());
}

TEST_F(SandboxTest, TeamSpiritPresenceIsAWebhookAndARosterEvent) {
  ASSERT_TRUE(sandbox_
                  ->Act("teamspirit", "presence",
                        {{"user", "u-kenji"}, {"status", "dnd"}})
                  .ok());
  std::optional<HttpRequest> hook = teamspirit_.WaitFor("\"dnd\"");
  ASSERT_TRUE(hook.has_value());
  EXPECT_THAT(hook->body, HasSubstr("presence.changed"));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool seen = false;
  while (!seen && absl::Now() < deadline) {
    for (const json& e : Events()) {
      if (e["type"] != "roster" || e["data"]["messenger"] != "teamspirit") {
        continue;
      }
      for (const json& p : e["data"]["people"]) {
        if (p["id"] == "u-kenji" && p["presence"] == "dnd") seen = true;
      }
    }
    if (!seen) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(sandbox_
                ->Act("teamspirit", "presence",
                      {{"user", "u-kenji"}, {"status", "sleepy"}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SandboxTest, ASlackPostIsASignedEventCallback) {
  absl::StatusOr<json> posted = sandbox_->Act(
      "slack", "post", {{"user", "U0ANN"}, {"text", "hi *there*"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  std::optional<HttpRequest> hook = slack_.WaitFor("hi *there*");
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->path, "/slack/sandbox/events");
  EXPECT_TRUE(adapters::slack::VerifySlackSignature(
                  kSlackSecret, hook->Header("X-Slack-Request-Timestamp"),
                  hook->Header("X-Slack-Signature"), hook->body, absl::Now())
                  .ok());
  ASSERT_TRUE(WaitForEvent("slack", "hi *there*"));
  json messages = Messages("slack");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["name"], "Ann Lee");
  EXPECT_EQ(messages[0]["id"], (*posted)["id"]);

  // A reply goes into the thread of the message.
  ASSERT_TRUE(sandbox_
                  ->Act("slack", "post",
                        {{"user", "U0BOB"},
                         {"text", "in thread"},
                         {"reply_to", (*posted)["id"]}})
                  .ok());
  hook = slack_.WaitFor("in thread");
  ASSERT_TRUE(hook.has_value());
  EXPECT_THAT(hook->body, HasSubstr(absl::StrCat(
                              "\"thread_ts\":\"",
                              (*posted)["id"].get<std::string>(), "\"")));
}

TEST_F(SandboxTest, FilesAreStoredByTheFakeAndServedBack) {
  const std::string content = "line one\nline two\n";
  for (const char* messenger : {"teamspirit", "slack", "telegram"}) {
    json people = sandbox_->State()["messengers"][messenger]["people"];
    absl::StatusOr<json> posted =
        sandbox_->Act(messenger, "upload",
                      {{"user", people[0]["id"]},
                       {"name", "notes.txt"},
                       {"mime_type", "text/plain"},
                       {"content_base64", absl::Base64Escape(content)},
                       {"text", "the notes"}});
    ASSERT_TRUE(posted.ok()) << messenger << ": " << posted.status();
    json messages = Messages(messenger);
    ASSERT_FALSE(messages.empty()) << messenger;
    json files = messages.back()["files"];
    ASSERT_EQ(files.size(), 1u) << messenger;
    EXPECT_EQ(files[0]["name"], "notes.txt");
    EXPECT_EQ(files[0]["size"], content.size());
    absl::StatusOr<FileBody> file =
        sandbox_->Download(messenger, files[0]["id"]);
    ASSERT_TRUE(file.ok()) << messenger << ": " << file.status();
    EXPECT_EQ(file->content, content) << messenger;
    EXPECT_EQ(file->name, "notes.txt") << messenger;
  }
  EXPECT_EQ(sandbox_->Download("slack", "F-none").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SandboxTest, TelegramPostsAndEditsAreUpdates) {
  json people = sandbox_->State()["messengers"]["telegram"]["people"];
  ASSERT_EQ(people.size(), 2u);
  EXPECT_EQ(people[0]["name"], "Carla Diaz");
  const std::string carla = people[0]["id"];
  absl::StatusOr<json> posted =
      sandbox_->Act("telegram", "post", {{"user", carla}, {"text", "hola"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  ASSERT_TRUE(sandbox_
                  ->Act("telegram", "edit",
                        {{"user", carla},
                         {"id", (*posted)["id"]},
                         {"text", "hola, editado"}})
                  .ok());
  ASSERT_TRUE(WaitForEvent("telegram", "hola, editado"));
  json messages = Messages("telegram");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["name"], "Carla Diaz");
  EXPECT_EQ(messages[0]["edited"], true);
  // What Telegram does not tell bots is refused, and changes nothing.
  EXPECT_EQ(sandbox_
                ->Act("telegram", "delete",
                      {{"user", carla}, {"id", (*posted)["id"]}})
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(
      sandbox_
          ->Act("telegram", "presence", {{"user", carla}, {"status", "online"}})
          .status()
          .code(),
      absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Messages("telegram")[0]["deleted"], false);
}

TEST_F(SandboxTest, BadInputIsRefusedAndChangesNothing) {
  auto code = [&](const std::string& messenger, const std::string& action,
                  const json& body) {
    return sandbox_->Act(messenger, action, body).status().code();
  };
  EXPECT_EQ(code("icq", "post", {{"user", "x"}, {"text", "t"}}),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(code("slack", "shout", {{"user", "U0ANN"}}),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(code("slack", "post", {{"user", "U0NOBODY"}, {"text", "t"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("slack", "post", {{"user", "U0ANN"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("slack", "post", {{"user", "U0ANN"}, {"text", 42}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("slack", "post", json::array()),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("slack", "post",
                 {{"user", "U0ANN"}, {"text", "t"}, {"reply_to", "1.2"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("teamspirit", "upload",
                 {{"user", "u-yuki"},
                  {"name", "a.bin"},
                  {"content_base64", "!!not base64!!"}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("slack", "presence", {{"user", "U0ANN"}, {"status", "dnd"}}),
            absl::StatusCode::kInvalidArgument);
  for (const char* messenger : {"teamspirit", "slack", "telegram"}) {
    EXPECT_TRUE(Messages(messenger).empty()) << messenger;
  }
}

// A port that was free on 127.0.0.1 a moment ago.
uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// With api_port set, the emulated APIs listen where the adapters' configs
// can name them in advance (deploy/compose.yaml), and the Telegram group's
// id is the documented one.
TEST(SandboxPortsTest, ApisListenOnTheConfiguredPorts) {
  const uint16_t ts = FreePort(), slack = FreePort(), telegram = FreePort();
  absl::StatusOr<v1::SandboxConfig> config = ParseSandboxConfig(
      absl::StrCat(
          "teamspirit: {api_key: k, webhook_secret: s, api_port: ", ts,
          ", webhook_url: \"http://127.0.0.1:9/teamspirit/events\"}\n",
          "slack: {bot_token: xoxb-test, signing_secret: s, api_port: ", slack,
          ", events_url: \"http://127.0.0.1:9/slack/events\"}\n",
          "telegram: {bot_token: \"123:tg-test\", api_port: ", telegram, "}\n"),
      "ports.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  Sandbox sandbox(*config);
  ASSERT_TRUE(sandbox.Start().ok());
  std::map<std::string, std::string> endpoints;
  for (const auto& [key, value] : sandbox.Endpoints()) endpoints[key] = value;
  EXPECT_EQ(endpoints["TEAMSPIRIT_API_URL"],
            absl::StrCat("http://127.0.0.1:", ts, "/api/v1"));
  EXPECT_EQ(endpoints["SLACK_API_URL"],
            absl::StrCat("http://127.0.0.1:", slack, "/api"));
  EXPECT_EQ(endpoints["TELEGRAM_API_URL"],
            absl::StrCat("http://127.0.0.1:", telegram));
  EXPECT_EQ(endpoints["TELEGRAM_CHAT_ID"], "-1001000000001");
  sandbox.Stop();
}

}  // namespace
}  // namespace imbridge::sandbox
