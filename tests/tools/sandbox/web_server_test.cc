// The page's HTTP API over a real socket: static files (and nothing
// outside the page's directory), actions, the event stream, file downloads.

#include "tools/sandbox/web_server.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/sandbox/sandbox_config.h"

namespace imbridge::sandbox {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class WebServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/sandbox-web-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    std::ofstream(dir_ + "/index.html") << "<!doctype html><title>page</title>";
    std::ofstream(dir_ + "/app.js") << "'use strict';";
    std::ofstream(dir_ + "/.hidden") << "no";
    // The webhooks go nowhere: nothing listens on port 9 (discard).
    absl::StatusOr<v1::SandboxConfig> config = ParseSandboxConfig(
        R"(
teamspirit: {api_key: k, webhook_secret: s, webhook_url: "http://127.0.0.1:9/ts"}
slack: {bot_token: xoxb-t, signing_secret: s, events_url: "http://127.0.0.1:9/slack"}
telegram: {bot_token: "1:t"}
)",
        "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    sandbox_ = std::make_unique<Sandbox>(*config);
    ASSERT_TRUE(sandbox_->Start().ok());
    web_ = std::make_unique<WebServer>(sandbox_.get(), dir_, "127.0.0.1", 0);
    ASSERT_TRUE(web_->Start().ok());
  }

  void TearDown() override {
    web_.reset();
    sandbox_.reset();
    for (const char* f : {"/index.html", "/app.js", "/.hidden"}) {
      unlink((dir_ + f).c_str());
    }
    rmdir(dir_.c_str());
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", web_->port(), path);
  }

  HttpResponse Get(const std::string& path) {
    absl::StatusOr<HttpResponse> r = http_.Get(Url(path));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse();
  }

  HttpResponse Post(const std::string& path, const std::string& body) {
    absl::StatusOr<HttpResponse> r = http_.PostJson(Url(path), body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResponse();
  }

  std::string dir_;
  std::unique_ptr<Sandbox> sandbox_;
  std::unique_ptr<WebServer> web_;
  HttpClient http_;
};

TEST_F(WebServerTest, ServesThePageAndOnlyItsFiles) {
  HttpResponse index = Get("/");
  EXPECT_EQ(index.status, 200);
  EXPECT_THAT(index.Header("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(index.body, HasSubstr("<title>page</title>"));
  HttpResponse js = Get("/static/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.Header("Content-Type"), HasSubstr("text/javascript"));
  EXPECT_EQ(Get("/static/.hidden").status, 404);
  EXPECT_EQ(Get("/static/..%2Fetc%2Fpasswd").status, 404);
  EXPECT_EQ(Get("/static/missing.css").status, 404);
}

TEST_F(WebServerTest, ActionsStateEventsAndFiles) {
  HttpResponse bad = Post("/api/teamspirit/post", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["ok"], false);
  HttpResponse nobody =
      Post("/api/teamspirit/post", R"({"user":"u-nobody","text":"hi"})");
  EXPECT_EQ(nobody.status, 400);
  EXPECT_THAT(json::parse(nobody.body)["error"].get<std::string>(),
              HasSubstr("u-nobody"));
  EXPECT_EQ(Post("/api/telegram/delete", R"({"user":"1","id":"1"})").status,
            501);
  EXPECT_EQ(Post("/api/teamspirit", "{}").status, 404);

  HttpResponse posted =
      Post("/api/teamspirit/upload",
           json({{"user", "u-yuki"},
                 {"name", "a \"b\".txt"},
                 {"mime_type", "text/plain"},
                 {"content_base64", absl::Base64Escape("bytes")}})
               .dump());
  ASSERT_EQ(posted.status, 200) << posted.body;
  EXPECT_EQ(json::parse(posted.body)["ok"], true);

  json state = json::parse(Get("/api/state").body);
  ASSERT_EQ(state["order"], json({"teamspirit", "slack", "telegram"}));
  json messages = state["messengers"]["teamspirit"]["messages"];
  ASSERT_EQ(messages.size(), 1u);
  const std::string file_id = messages[0]["files"][0]["id"];

  HttpResponse file = Get(absl::StrCat("/files/teamspirit/", file_id));
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "bytes");
  EXPECT_EQ(file.Header("Content-Disposition"),
            "attachment; filename=\"a _b_.txt\"");
  EXPECT_EQ(Get("/files/teamspirit/f-none").status, 404);
  EXPECT_EQ(Get("/files/icq/x").status, 404);

  // The page's event stream is fed apart from the state: under load the
  // message may reach it a moment after /api/state shows it.
  HttpResponse events = Get("/events?after=0");
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       events.status == 200 &&
       events.body.find("event: message\n") == std::string::npos &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));
    events = Get("/events?after=0");
  }
  EXPECT_EQ(events.status, 200);
  EXPECT_THAT(events.Header("Content-Type"), HasSubstr("text/event-stream"));
  EXPECT_THAT(events.body, HasSubstr("event: message\n"));
  EXPECT_THAT(events.body, HasSubstr("a \\\"b\\\".txt"));
  EXPECT_EQ(Get("/events?after=x").status, 400);
}

}  // namespace
}  // namespace imbridge::sandbox
