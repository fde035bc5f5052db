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
#include "common/http/http_client.h"
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
            "telegram: {bot_token: \"123:tg-test\"}\n",
            "bitrix24: {webhook_code: b24code0123, bot_token: b24-bot}\n"),
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
  EXPECT_TRUE(adapters::VerifyTimestampedSignature(
                  adapters::teamspirit::kTeamSpiritSignature, kTsSecret,
                  hook->Header("X-TeamSpirit-Timestamp"),
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
  EXPECT_TRUE(adapters::VerifyTimestampedSignature(
                  adapters::slack::kSlackSignature, kSlackSecret,
                  hook->Header("X-Slack-Request-Timestamp"),
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

// The Bitrix24 pane: the bot is registered (a supervisor with the
// configured token) in the chat with the people; a person's post, edit and
// delete are events the bot fetches through the inbound webhook, as the
// adapter does; the bridge's copies (the bot's messages) show as bridged.
TEST_F(SandboxTest, Bitrix24PostsAreEventsTheBotFetches) {
  std::map<std::string, std::string> endpoints;
  for (const auto& [key, value] : sandbox_->Endpoints()) endpoints[key] = value;
  const std::string webhook = endpoints["BITRIX24_WEBHOOK_URL"];
  ASSERT_THAT(webhook, HasSubstr("/rest/1/b24code0123/"));
  const std::string bot = endpoints["BITRIX24_BOT_ID"];
  const std::string dialog = endpoints["BITRIX24_CHAT_ID"];
  // A fresh portal gives its first bot and chat these ids:
  // deploy/compose/bitrix24.yaml and compose/router.yaml name them.
  EXPECT_EQ(bot, "1003");
  EXPECT_EQ(dialog, "chat1004");
  json state = sandbox_->State()["messengers"]["bitrix24"];
  EXPECT_EQ(state["chat_id"], dialog);
  ASSERT_EQ(state["people"].size(), 2u);
  EXPECT_EQ(state["people"][0]["name"], "Elena Petrova");
  const std::string elena = state["people"][0]["id"];

  absl::StatusOr<json> posted = sandbox_->Act(
      "bitrix24", "post", {{"user", elena}, {"text", "[b]privet[/b]"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  ASSERT_TRUE(WaitForEvent("bitrix24", "[b]privet[/b]"));
  ASSERT_TRUE(sandbox_
                  ->Act("bitrix24", "edit",
                        {{"user", elena},
                         {"id", (*posted)["id"]},
                         {"text", "privet, edited"}})
                  .ok());
  ASSERT_TRUE(WaitForEvent("bitrix24", "privet, edited"));

  HttpClient http;
  auto call = [&](const std::string& method, const json& params) {
    absl::StatusOr<HttpResponse> r =
        http.PostJson(webhook + method, params.dump());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? json::parse(r->body, nullptr, false) : json();
  };
  json fetched = call("imbot.v2.Event.get",
                      {{"botId", std::stoll(bot)}, {"botToken", "b24-bot"}});
  std::vector<std::string> types;
  for (const json& e : fetched["result"]["events"]) {
    types.push_back(e["type"]);
  }
  EXPECT_THAT(types, ::testing::Contains("ONIMBOTV2MESSAGEADD"));
  EXPECT_THAT(types, ::testing::Contains("ONIMBOTV2MESSAGEUPDATE"));
  // The bot registered with the configured token: without it, refused.
  EXPECT_EQ(call("imbot.v2.Event.get", {{"botId", std::stoll(bot)}})["error"],
            "ACCESS_DENIED");

  // A copy the bridge posts is the bot's message, shown as bridged.
  json sent = call("imbot.v2.Chat.Message.send",
                   {{"botId", std::stoll(bot)},
                    {"botToken", "b24-bot"},
                    {"dialogId", dialog},
                    {"fields", {{"message", "[b]Ann (slack)[/b]: hi"}}}});
  ASSERT_TRUE(sent["result"].is_object()) << sent.dump();
  ASSERT_TRUE(WaitForEvent("bitrix24", "Ann (slack)"));
  json messages = Messages("bitrix24");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["name"], "Elena Petrova");
  EXPECT_EQ(messages[0]["edited"], true);
  EXPECT_EQ(messages[0]["format"], "bbcode");
  EXPECT_EQ(messages[1]["bridged"], true);
  EXPECT_EQ(messages[1]["name"], "Bridge");

  // Elena may delete her own message, not the bot's; the deleted one stays
  // on the page, marked.
  EXPECT_EQ(sandbox_
                ->Act("bitrix24", "delete",
                      {{"user", elena}, {"id", messages[1]["id"]}})
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(sandbox_
                  ->Act("bitrix24", "delete",
                        {{"user", elena}, {"id", (*posted)["id"]}})
                  .ok());
  EXPECT_EQ(Messages("bitrix24")[0]["deleted"], true);
  EXPECT_EQ(
      sandbox_
          ->Act("bitrix24", "presence", {{"user", elena}, {"status", "away"}})
          .status()
          .code(),
      absl::StatusCode::kUnimplemented);
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
  EXPECT_EQ(code("bitrix24", "post", {{"user", "1"}, {"text", "t"}}),
            absl::StatusCode::kInvalidArgument);
  for (const char* messenger :
       {"teamspirit", "slack", "telegram", "bitrix24"}) {
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
