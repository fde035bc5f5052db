// The TeamSpirit wire format, REST client, rate limiter and config checks.

#include "adapters/teamspirit/teamspirit_api.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "adapters/teamspirit/settings.h"
#include "common/config_loader.h"
#include "emulators/teamspirit/fake_teamspirit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::teamspirit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kKey[] = "bot-key-0123456789";

TEST(TeamSpiritParseWebhookTest, ContractExample) {
  absl::StatusOr<TsWebhookEvent> e = ParseWebhookEvent(R"json({
  "event_id": "evt-01JD3K7",
  "type": "message.created",
  "created_at": "2026-11-21T10:00:00Z",
  "chat": {"id": "c-42", "title": "Support", "type": "group"},
  "user": {"id": "u-7", "name": "Ivan Petrov", "avatar_url": "https://ts.example/avatars/u-7.png", "is_bot": false},
  "message": {
    "id": "m-1001",
    "text": "Hello **team**, see [the doc](https://example.com)",
    "format": "markdown",
    "reply_to": "m-0999",
    "thread_id": null,
    "files": [{"id": "f-1", "name": "report.pdf", "mime_type": "application/pdf", "size": 48213}],
    "author": null
  }
})json");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_id, "evt-01JD3K7");
  EXPECT_EQ(e->type, TsEventType::kMessageCreated);
  EXPECT_EQ(absl::ToUnixSeconds(e->created_at), 1795255200);
  EXPECT_EQ(e->chat_id, "c-42");
  EXPECT_EQ(e->user->id, "u-7");
  EXPECT_EQ(e->user->name, "Ivan Petrov");
  EXPECT_FALSE(e->user->is_bot);
  EXPECT_EQ(e->message->id, "m-1001");
  EXPECT_TRUE(e->message->markdown);
  EXPECT_EQ(e->message->reply_to, "m-0999");
  EXPECT_EQ(e->message->thread_id, "");
  ASSERT_THAT(e->message->files, SizeIs(1));
  EXPECT_EQ(e->message->files[0].id, "f-1");
  EXPECT_EQ(e->message->files[0].size, 48213u);
  EXPECT_FALSE(e->message->author.has_value());
}

TEST(TeamSpiritParseWebhookTest, OtherTypes) {
  auto presence = ParseWebhookEvent(
      R"({"event_id":"e1","type":"presence.changed","user":{"id":"u-7"},)"
      R"("presence":{"status":"dnd","text":"In a meeting"}})");
  ASSERT_TRUE(presence.ok()) << presence.status();
  EXPECT_EQ(presence->type, TsEventType::kPresenceChanged);
  EXPECT_EQ(presence->presence->status, "dnd");
  EXPECT_EQ(presence->presence->text, "In a meeting");
  EXPECT_EQ(presence->chat_id, "");

  auto deleted = ParseWebhookEvent(
      R"({"event_id":"e2","type":"message.deleted","chat":{"id":"c"},)"
      R"("user":{"id":"u"},"message":{"id":"m-1"}})");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->message->id, "m-1");

  auto joined = ParseWebhookEvent(
      R"({"event_id":"e3","type":"member.joined","chat":{"id":"c"},)"
      R"("user":{"id":"u"}})");
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->type, TsEventType::kMemberJoined);

  auto authored = ParseWebhookEvent(
      R"({"event_id":"e4","type":"message.created","chat":{"id":"c"},)"
      R"("user":{"id":"u-bot","is_bot":true},"message":{"id":"m","text":"x",)"
      R"("format":"plain","author":{"external_id":"imb-slack-T-U1","name":"A"}}})");
  ASSERT_TRUE(authored.ok()) << authored.status();
  EXPECT_FALSE(authored->message->markdown);
  ASSERT_TRUE(authored->message->author.has_value());
  EXPECT_EQ(authored->message->author->external_id, "imb-slack-T-U1");

  auto unknown =
      ParseWebhookEvent(R"({"event_id":"e5","type":"reaction.added"})");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->type, TsEventType::kUnknown);
  EXPECT_EQ(unknown->type_name, "reaction.added");
}

TEST(TeamSpiritParseWebhookTest, MalformedBodiesAreInvalidArgument) {
  for (
      const char* body : {
          "",
          "not json",
          "[1,2]",
          R"({"type":"message.created"})",
          R"({"event_id":"e","type":"message.created","chat":{"id":"c"},)"
          R"("user":{"id":"u"}})",
          R"({"event_id":"e","type":"message.created","chat":{"id":"c"},)"
          R"("user":{"id":"u"},"message":{"id":7}})",
          R"({"event_id":"e","type":"message.created","chat":{"id":"c"},)"
          R"("user":{"id":"u"},"message":{"id":"m","files":[{"id":"f","size":-1}]}})",
          R"({"event_id":"e","type":"presence.changed","user":{"id":"u"}})",
          R"({"event_id":"e","type":"member.left","user":{"id":"u"}})",
          R"({"event_id":"e","type":"message.created","chat":"c","user":{"id":"u"}})",
      }) {
    absl::StatusOr<TsWebhookEvent> e = ParseWebhookEvent(body);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(TeamSpiritStatusTest, ErrorsMapToRetryableOrPermanent) {
  auto answer = [](int status, std::string body = "",
                   HttpHeaderList headers = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return StatusFromResponse(r, "POST /x");
  };
  EXPECT_TRUE(answer(201).ok());
  absl::Status limited = answer(429, "", {{"Retry-After", "7"}});
  EXPECT_TRUE(IsRetryable(limited));
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(7));
  EXPECT_TRUE(IsRetryable(answer(503)));
  EXPECT_TRUE(IsRetryable(answer(500)));
  absl::Status missing =
      answer(404, R"({"error":{"code":"not_found","message":"no chat"}})");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(IsRetryable(missing));
  EXPECT_THAT(std::string(missing.message()),
              HasSubstr("POST /x: HTTP 404 not_found: no chat"));
  EXPECT_EQ(answer(400).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(answer(401).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(answer(403).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(answer(409).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(answer(413).code(), absl::StatusCode::kOutOfRange);
  for (int s : {400, 401, 403, 404, 409, 413})
    EXPECT_FALSE(IsRetryable(answer(s)));
}

TEST(TeamSpiritStatusTest, PathSegmentsAreEscaped) {
  EXPECT_EQ(EscapePathSegment("imb-slack-T1-U 2/x?"),
            "imb-slack-T1-U%202%2Fx%3F");
}

class TeamSpiritApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fakes::FakeTeamSpirit::Options o;
    o.rate_limit_per_second = 0;
    fake_ = std::make_unique<fakes::FakeTeamSpirit>(o);
    fake_->AddBot("u-bot", "Bridge", kKey);
    fake_->AddUser("u-7", "Ivan");
    fake_->AddChat("c-1", "Support", {"u-bot", "u-7"});
    fake_->AddChat("c-2", "Secret", {"u-7"});
    ASSERT_TRUE(fake_->Start().ok());
    api_ = MakeApi(kKey);
  }

  std::unique_ptr<TeamSpiritApi> MakeApi(const std::string& key) {
    TeamSpiritApi::Options o;
    o.base_url = fake_->api_base_url() + "/";
    o.api_key = key;
    return std::make_unique<TeamSpiritApi>(o, &http_, &limiter_);
  }

  HttpClient http_;
  RateLimiter limiter_{1000, 1000};
  std::unique_ptr<fakes::FakeTeamSpirit> fake_;
  std::unique_ptr<TeamSpiritApi> api_;
};

TEST_F(TeamSpiritApiTest, GetMeAndBadKey) {
  absl::StatusOr<TsUser> me = api_->GetMe();
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->id, "u-bot");
  EXPECT_EQ(me->name, "Bridge");
  absl::StatusOr<TsUser> bad = MakeApi("wrong")->GetMe();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::Not(HasSubstr("wrong")));
}

TEST_F(TeamSpiritApiTest, PostIsIdempotentByClientToken) {
  ASSERT_TRUE(
      api_->PutExternalUser("imb-x", "Anna (slack)", "", std::nullopt).ok());
  TsNewMessage m;
  m.text = "hello **there**";
  m.client_token = "router:17";
  m.author = TsAuthor{"imb-x", "Anna (slack)", ""};
  absl::StatusOr<std::string> first = api_->PostMessage("c-1", m);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::string> again = api_->PostMessage("c-1", m);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  std::vector<fakes::FakeTeamSpirit::Message> messages = fake_->Messages("c-1");
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_EQ(messages[0].text, "hello **there**");
  ASSERT_TRUE(messages[0].author.has_value());
  EXPECT_EQ(messages[0].author->external_id, "imb-x");
  EXPECT_EQ(messages[0].client_token, "router:17");
}

TEST_F(TeamSpiritApiTest, ErrorsOfTheServer) {
  TsNewMessage m;
  m.text = "x";
  EXPECT_EQ(api_->PostMessage("c-2", m).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(api_->PostMessage("nope", m).status().code(),
            absl::StatusCode::kNotFound);
  m.text = std::string(10001, 'a');
  EXPECT_EQ(api_->PostMessage("c-1", m).status().code(),
            absl::StatusCode::kOutOfRange);

  fake_->FailNext(1, 429, 3, "POST");
  m.text = "x";
  absl::Status limited = api_->PostMessage("c-1", m).status();
  EXPECT_TRUE(IsRetryable(limited)) << limited;
  EXPECT_EQ(RetryAfter(limited), absl::Seconds(3));
  fake_->FailNext(1, 502);
  EXPECT_TRUE(IsRetryable(api_->GetMe().status()));
  EXPECT_TRUE(api_->PostMessage("c-1", m).ok());
}

// An outage (FakeTeamSpirit::FailFor): every call fails retryably and
// changes nothing until it ends.
TEST_F(TeamSpiritApiTest, AnOutageFailsEveryCallUntilItEnds) {
  TsNewMessage m;
  m.text = "during the outage";
  fake_->FailFor(absl::Hours(1), 503);
  for (int i = 0; i < 3; ++i) {
    absl::Status down = api_->PostMessage("c-1", m).status();
    EXPECT_TRUE(IsRetryable(down)) << down;
  }
  EXPECT_TRUE(IsRetryable(api_->GetMe().status()));
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(0));
  fake_->FailFor(absl::ZeroDuration());
  EXPECT_TRUE(api_->PostMessage("c-1", m).ok());
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(1));
}

// A 429 pauses every call for its Retry-After (here an hour); the adapter's
// stop ends the wait of a call in it, which is then not made.
TEST_F(TeamSpiritApiTest, StopEndsAWaitForTheServersRetryAfter) {
  TsNewMessage m;
  m.text = "x";
  fake_->FailNext(1, 429, 3600, "POST");
  absl::Status limited = api_->PostMessage("c-1", m).status();
  ASSERT_TRUE(IsRetryable(limited)) << limited;
  absl::Status waited;
  std::thread caller([&] { waited = api_->PostMessage("c-1", m).status(); });
  absl::SleepFor(absl::Milliseconds(50));
  limiter_.Stop();
  caller.join();  // without the stop's end of the wait: an hour (timeout)
  EXPECT_TRUE(IsRetryable(waited)) << waited;
  EXPECT_THAT(std::string(waited.message()), HasSubstr("stopping"));
  EXPECT_THAT(fake_->Messages("c-1"), SizeIs(0));
  EXPECT_TRUE(IsRetryable(api_->GetMe().status()));
}

TEST_F(TeamSpiritApiTest, EditDeleteFilesPresence) {
  TsNewMessage m;
  m.text = "v1";
  absl::StatusOr<std::string> id = api_->PostMessage("c-1", m);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(api_->EditMessage("c-1", *id, "v2", true).ok());
  EXPECT_EQ(fake_->GetMessage(*id)->text, "v2");
  ASSERT_TRUE(api_->DeleteMessage("c-1", *id).ok());
  EXPECT_TRUE(fake_->GetMessage(*id)->deleted);
  EXPECT_EQ(api_->DeleteMessage("c-1", *id).code(),
            absl::StatusCode::kNotFound);

  std::string content = "%PDF-1.4 binary\0\x01\x02 data";
  size_t offset = 0;
  absl::StatusOr<TsFile> file = api_->UploadFile(
      "report.pdf", "application/pdf", content.size(),
      [&](char* buf, size_t max) -> absl::StatusOr<size_t> {
        size_t n = std::min(max, content.size() - offset);
        std::copy(content.data() + offset, content.data() + offset + n, buf);
        offset += n;
        return n;
      });
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(fake_->GetFile(file->id)->content, content);
  EXPECT_EQ(fake_->GetFile(file->id)->name, "report.pdf");
  std::string downloaded;
  ASSERT_TRUE(api_->DownloadFile(file->id, 1 << 20,
                                 [&](absl::string_view c) {
                                   downloaded.append(c.data(), c.size());
                                   return absl::OkStatus();
                                 })
                  .ok());
  EXPECT_EQ(downloaded, content);
  EXPECT_EQ(
      api_->DownloadFile(file->id, 4,
                         [](absl::string_view) { return absl::OkStatus(); })
          .code(),
      absl::StatusCode::kOutOfRange);

  ASSERT_TRUE(api_->SetPresence({"away", "degraded"}).ok());
  EXPECT_EQ(fake_->BotPresence("u-bot").status, "away");
  EXPECT_EQ(api_->SetPresence({"sleeping", ""}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(api_->PutExternalUser("imb-slack-T-U 1", "Anna",
                                    "https://a/x.png",
                                    TsPresence{"dnd", "busy"})
                  .ok());
  auto user = fake_->GetExternalUser("imb-slack-T-U 1");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->presence.status, "dnd");
  EXPECT_EQ(user->avatar_url, "https://a/x.png");
}

TEST_F(TeamSpiritApiTest, IncomingWebhook) {
  std::string url = fake_->AddIncomingWebhook("c-2", "hook-token");
  TsIncomingWebhook hook(url, &http_, &limiter_);
  ASSERT_TRUE(hook.Post("hi", "Anna (slack)", "https://a/x.png").ok());
  auto messages = fake_->Messages("c-2");
  ASSERT_THAT(messages, SizeIs(1));
  EXPECT_EQ(messages[0].username, "Anna (slack)");
  EXPECT_EQ(messages[0].icon_url, "https://a/x.png");
  fake_->FailNext(1, 503, 0, "", "hook-token");
  absl::Status failed = hook.Post("x", "", "");
  EXPECT_TRUE(IsRetryable(failed));
  EXPECT_THAT(std::string(failed.message()),
              ::testing::Not(HasSubstr("hook-token")));
  TsIncomingWebhook missing(fake_->AddIncomingWebhook("c-2", "t2") + "-gone",
                            &http_, &limiter_);
  EXPECT_EQ(missing.Post("x", "", "").code(), absl::StatusCode::kNotFound);
}

TEST(TeamSpiritRateLimiterTest, SpacesCallsAfterTheBurst) {
  absl::Time now = absl::FromUnixSeconds(1000);
  RateLimiter limiter(20, 20, [&] { return now; });
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration()) << i;
  }
  EXPECT_EQ(limiter.Reserve(), absl::Milliseconds(50));
  EXPECT_EQ(limiter.Reserve(), absl::Milliseconds(100));
  now += absl::Seconds(10);  // Refills, but never above the burst.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration());
  EXPECT_GT(limiter.Reserve(), absl::ZeroDuration());
}

TEST(TeamSpiritRateLimiterTest, PauseHoldsEveryCaller) {
  absl::Time now = absl::FromUnixSeconds(1000);
  RateLimiter limiter(20, 20, [&] { return now; });
  limiter.PauseUntil(now + absl::Seconds(2));
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(2));
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(2) + absl::Milliseconds(50));
}

absl::StatusOr<std::vector<TeamSpiritSettings>> Accounts(
    const std::string& yaml) {
  v1::TeamSpiritAdapterConfig config;
  absl::Status s = LoadConfigYaml(yaml, "ts.yaml", &config);
  if (!s.ok()) return s;
  return AccountsFromConfig("ts.yaml", config);
}

// The single account of a config, or its error.
absl::StatusOr<TeamSpiritSettings> Settings(const std::string& yaml) {
  auto accounts = Accounts(yaml);
  if (!accounts.ok()) return accounts.status();
  EXPECT_THAT(*accounts, SizeIs(1));
  return accounts->at(0);
}

TEST(TeamSpiritSettingsTest, BotModeDefaults) {
  auto s = Settings(R"(
router: {token: t}
account: corp
api_base_url: https://ts.example.com/api/v1
api_key: k
webhook_secret: s
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->account, "corp");
  EXPECT_FALSE(s->send_only);
  EXPECT_EQ(s->webhook_path, "/teamspirit/events");
  EXPECT_EQ(s->requests_per_second, 20);
  EXPECT_EQ(s->max_file_bytes, 100ull << 20);
  EXPECT_EQ(s->external_user_prefix, "imb-");
  EXPECT_TRUE(s->bot_presence_enabled);
  EXPECT_EQ(s->api_paths.messages, "/chats/{chat_id}/messages");
}

TEST(TeamSpiritSettingsTest, SendOnlyMode) {
  auto s = Settings(R"(
router: {token: t}
account: corp
incoming_webhook_url: https://ts.example.com/hooks/abc
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->send_only);
  EXPECT_EQ(s->incoming_webhook_url, "https://ts.example.com/hooks/abc");
}

TEST(TeamSpiritSettingsTest, SeveralAccounts) {
  auto accounts = Accounts(R"(
router: {token: t}
state_dir: /var/lib/imbridge-teamspirit
accounts:
  - name: corp
    api_base_url: https://ts.example.com/api/v1
    api_key: k1
    webhook_secret: s1
    requests_per_second: 5
  - name: partner
    api_base_url: https://ts.partner.example/api/v1
    api_key: k2
    webhook_secret: s2
    webhook_path: /partner/events
    post_as_bot: true
  - name: announcements
    incoming_webhook_url: https://ts.example.com/hooks/abc
)");
  ASSERT_TRUE(accounts.ok()) << accounts.status();
  ASSERT_THAT(*accounts, SizeIs(3));
  EXPECT_EQ((*accounts)[0].account, "corp");
  EXPECT_EQ((*accounts)[0].api_key, "k1");
  EXPECT_EQ((*accounts)[0].webhook_path, "/teamspirit/corp/events");
  EXPECT_EQ((*accounts)[0].requests_per_second, 5);
  EXPECT_EQ((*accounts)[1].account, "partner");
  EXPECT_EQ((*accounts)[1].api_base_url, "https://ts.partner.example/api/v1");
  EXPECT_EQ((*accounts)[1].webhook_path, "/partner/events");
  EXPECT_TRUE((*accounts)[1].post_as_bot);
  EXPECT_EQ((*accounts)[1].requests_per_second, 20);
  EXPECT_TRUE((*accounts)[2].send_only);
}

TEST(TeamSpiritSettingsTest, TheWholeConfigIsChecked) {
  v1::TeamSpiritAdapterConfig config;
  ASSERT_TRUE(LoadConfigYaml("router: {token: t}\nlog_level: loud\n"
                             "account: a\nincoming_webhook_url: http://x/h\n",
                             "ts.yaml", &config)
                  .ok());
  absl::Status s = ValidateTeamSpiritConfig("ts.yaml", config);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ts.yaml: log_level:"));
  config.set_log_level("debug");
  EXPECT_TRUE(ValidateTeamSpiritConfig("ts.yaml", config).ok());
}

TEST(TeamSpiritSettingsTest, BadConfigsNameTheField) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  for (
      const Case& c : std::vector<Case>{
          {"account: a\napi_key: k\nwebhook_secret: s\n", "api_base_url"},
          {"api_base_url: http://x\napi_key: k\nwebhook_secret: s\n",
           "account"},
          {"account: a:b\nincoming_webhook_url: http://x/h\n", "account"},
          {"account: a\napi_base_url: http://x\napi_key: k\n",
           "webhook_secret"},
          {"account: a\n", "api_key"},
          {"account: a\napi_base_url: http://x\napi_key: k\nwebhook_secret: s\n"
           "incoming_webhook_url: http://x/h\n",
           "incoming_webhook_url"},
          {"account: a\nincoming_webhook_url: ftp://x\n",
           "incoming_webhook_url"},
          {"account: a\nincoming_webhook_url: http://x/h\nwebhook_secret: s\n",
           "webhook_secret"},
          {"account: a\nincoming_webhook_url: http://x/h\nwebhook_path: x\n",
           "webhook_path"},
          {"account: a\nincoming_webhook_url: http://x/h\nwebhook_path: "
           "/metrics\n",
           "webhook_path"},
          {"router: {token: t}\n", "accounts"},
          {"accounts: [{name: a, incoming_webhook_url: http://x/h}]\n"
           "account: a\n",
           "account"},
          {"accounts: [{name: a, incoming_webhook_url: http://x/h}]\n"
           "api_key: k\n",
           "api_key"},
          {"accounts: [{incoming_webhook_url: http://x/h}]\n",
           "accounts[0].name"},
          {"accounts: [{name: a/b, incoming_webhook_url: http://x/h}]\n",
           "accounts[0].name"},
          {"accounts:\n  - {name: a, incoming_webhook_url: http://x/h}\n"
           "  - {name: a, incoming_webhook_url: http://x/i}\n",
           "accounts[1].name"},
          {"accounts:\n  - {name: a, incoming_webhook_url: http://x/h}\n"
           "  - {name: b, api_key: k}\n",
           "accounts[1].api_base_url"},
          {"accounts:\n"
           "  - {name: a, api_base_url: http://x, api_key: k, "
           "webhook_secret: s, webhook_path: /in}\n"
           "  - {name: b, api_base_url: http://x, api_key: k, "
           "webhook_secret: s, webhook_path: /in}\n",
           "accounts[1].webhook_path"},
          {"account: a\napi_base_url: http://x\napi_key: k\nwebhook_secret: s\n"
           "api_paths: {messages: chats}\n",
           "api_paths.messages"},
      }) {
    auto s = Settings(c.yaml);
    EXPECT_FALSE(s.ok()) << c.yaml;
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr(absl::StrCat("ts.yaml: ", c.field, ":")))
        << c.yaml;
  }
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit
