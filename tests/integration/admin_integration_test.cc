// The router's operator surface against the real binary: the Admin API
// (runtime links, dead letters, webhooks, auth), the webhook directory, the
// chat commands answered in any linked chat, and /metrics, /readyz.

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bridge/sqlite_store.h"
#include "common/http/http_client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "imbridge/v1/admin.grpc.pb.h"
#include "tests/integration/router_process.h"
#include "tests/integration/test_adapter.h"

namespace imbridge::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "admin-test-adapter-token-0123";
constexpr char kAdminToken[] = "admin-test-admin-token-456789";

std::string Config(const std::string& links, bool with_admin = true) {
  return absl::StrCat(
      "adapters:\n  - {name: tests, token: ", kToken, "}\n",
      with_admin ? absl::StrCat("admin_token: ", kAdminToken, "\n") : "",
      "store: {durability: normal}\n",
      "dispatch: {initial_backoff_ms: 50, max_backoff_ms: "
      "200}\n",
      links);
}

const char kPairLink[] = R"(links:
  - name: pair
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
)";

class AdminIntegrationTest : public ::testing::Test {
 protected:
  void Connect(RouterProcess& router) {
    auto channel = grpc::CreateChannel(router.address(),
                                       grpc::InsecureChannelCredentials());
    admin_ = v1::Admin::NewStub(channel);
    directory_ = v1::WebhookDirectory::NewStub(channel);
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(20));
    ctx->set_wait_for_ready(true);  // Across router restarts.
    return ctx;
  }

  std::unique_ptr<TestAdapter> Adapter(RouterProcess& router,
                                       const std::string& platform,
                                       const std::string& account) {
    auto a = std::make_unique<TestAdapter>(platform, account, router.address(),
                                           kToken);
    a->Start();
    EXPECT_TRUE(a->WaitAttached()) << platform;
    return a;
  }

  static std::vector<std::string> Posts(const TestAdapter& a) {
    std::vector<std::string> out;
    for (const auto& c : a.calls()) {
      if (c.kind == "post") out.push_back(c.text);
    }
    return out;
  }

  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::WebhookDirectory::Stub> directory_;
};

TEST_F(AdminIntegrationTest, AdminCallsNeedTheAdminToken) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  v1::ListLinksRequest req;
  v1::ListLinksResponse resp;
  EXPECT_EQ(admin_->ListLinks(Ctx("").get(), req, &resp).error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_EQ(admin_->ListLinks(Ctx(kToken).get(), req, &resp).error_code(),
            grpc::UNAUTHENTICATED);
  ASSERT_TRUE(admin_->ListLinks(Ctx(kAdminToken).get(), req, &resp).ok());
  ASSERT_EQ(resp.links_size(), 1);
  EXPECT_EQ(resp.links(0).source(), v1::CONFIG);
  EXPECT_THAT(router.ReadLog(), Not(HasSubstr(kAdminToken)));
  EXPECT_THAT(router.ReadLog(), HasSubstr("missing or wrong admin token"));

  RouterProcess disabled(Config(kPairLink, /*with_admin=*/false));
  ASSERT_TRUE(disabled.Start().ok());
  Connect(disabled);
  EXPECT_EQ(admin_->ListLinks(Ctx(kAdminToken).get(), req, &resp).error_code(),
            grpc::UNIMPLEMENTED);
}

TEST_F(AdminIntegrationTest, RuntimeLinkCarriesAtOnceAndSurvivesRestart) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  auto alpha = Adapter(router, "alpha", "a");
  auto gamma = Adapter(router, "gamma", "g");

  v1::CreateLinkRequest create;
  create.mutable_link()->set_name("runtime");
  auto* m1 = create.mutable_link()->add_members();
  m1->set_platform("alpha");
  m1->set_account("a");
  m1->set_chat_id("A2");
  auto* m2 = create.mutable_link()->add_members();
  m2->set_platform("gamma");
  m2->set_account("g");
  m2->set_chat_id("G1");
  v1::LinkInfo info;
  ASSERT_TRUE(admin_->CreateLink(Ctx(kAdminToken).get(), create, &info).ok());
  EXPECT_EQ(info.source(), v1::RUNTIME);

  alpha->Post("A2", "first over the runtime link");
  ASSERT_TRUE(gamma->WaitForCalls(1));
  EXPECT_EQ(Posts(*gamma)[0], "first over the runtime link");

  // Names are unique across config and runtime links; config links are
  // read-only through the API.
  v1::CreateLinkRequest dup = create;
  dup.mutable_link()->set_name("pair");
  EXPECT_EQ(admin_->CreateLink(Ctx(kAdminToken).get(), dup, &info).error_code(),
            grpc::ALREADY_EXISTS);
  v1::UpdateLinkRequest update;
  *update.mutable_link() = dup.link();
  EXPECT_EQ(
      admin_->UpdateLink(Ctx(kAdminToken).get(), update, &info).error_code(),
      grpc::FAILED_PRECONDITION);
  v1::CreateLinkRequest bad = create;
  bad.mutable_link()->set_name("bad");
  bad.mutable_link()->mutable_members(0)->clear_chat_id();
  grpc::Status bad_status =
      admin_->CreateLink(Ctx(kAdminToken).get(), bad, &info);
  EXPECT_EQ(bad_status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(bad_status.error_message(), HasSubstr("chat_id"));

  alpha->Stop();
  gamma->Stop();
  router.Kill();
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  auto alpha2 = Adapter(router, "alpha", "a");
  auto gamma2 = Adapter(router, "gamma", "g");
  v1::ListLinksResponse links;
  ASSERT_TRUE(
      admin_->ListLinks(Ctx(kAdminToken).get(), v1::ListLinksRequest(), &links)
          .ok());
  ASSERT_EQ(links.links_size(), 2);
  EXPECT_EQ(links.links(1).link().name(), "runtime");
  // A new message id: the restarted TestAdapter counts its ids from 1 again.
  v1::Event after;
  after.mutable_channel()->set_platform("alpha");
  after.mutable_channel()->set_account("a");
  after.mutable_channel()->set_chat_id("A2");
  after.mutable_posted()->set_message_id("after-restart-1");
  after.mutable_posted()->mutable_text()->set_text("after the restart");
  ASSERT_EQ(alpha2->Publish(after).outcome(), v1::PublishAck::ACCEPTED);
  ASSERT_TRUE(gamma2->WaitForCalls(1));
  EXPECT_EQ(Posts(*gamma2)[0], "after the restart");

  v1::DeleteLinkRequest del;
  del.set_name("runtime");
  v1::DeleteLinkResponse deleted;
  ASSERT_TRUE(admin_->DeleteLink(Ctx(kAdminToken).get(), del, &deleted).ok());
  after.mutable_posted()->set_message_id("after-delete-1");
  after.set_key("");
  EXPECT_EQ(alpha2->Publish(after).outcome(), v1::PublishAck::DROPPED);
}

TEST_F(AdminIntegrationTest, DeadLetterIsListedRetriedAndArrives) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  beta->FailNext(1, /*retryable=*/false);
  alpha->Post("A1", "lost at first");

  v1::ListDeadLettersResponse dead;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    dead.Clear();
    ASSERT_TRUE(admin_
                    ->ListDeadLetters(Ctx(kAdminToken).get(),
                                      v1::ListDeadLettersRequest(), &dead)
                    .ok());
    if (dead.dead_letters_size() > 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(dead.dead_letters_size(), 1);
  EXPECT_EQ(dead.dead_letters(0).text_preview(), "lost at first");
  EXPECT_EQ(dead.dead_letters(0).target().platform(), "beta");

  v1::DeadLetterSelection select;
  select.add_ids(dead.dead_letters(0).id());
  v1::DeadLetterActionResponse acted;
  ASSERT_TRUE(
      admin_->RetryDeadLetters(Ctx(kAdminToken).get(), select, &acted).ok());
  EXPECT_EQ(acted.count(), 1u);
  deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && Posts(*beta).empty()) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Posts(*beta), std::vector<std::string>{"lost at first"});
  EXPECT_EQ(admin_->RetryDeadLetters(Ctx(kAdminToken).get(), select, &acted)
                .error_code(),
            grpc::NOT_FOUND);

  // Beta's messenger has the post before beta reports the delivery to the
  // router: the router counts it a moment later.
  v1::Stats stats;
  deadline = absl::Now() + absl::Seconds(20);
  do {
    ASSERT_TRUE(
        admin_->GetStats(Ctx(kAdminToken).get(), v1::GetStatsRequest(), &stats)
            .ok());
    if (stats.deliveries_ok() > 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(stats.events_accepted(), 1u);
  EXPECT_EQ(stats.deliveries_dead_lettered(), 1u);
  EXPECT_EQ(stats.deliveries_ok(), 1u);
  EXPECT_EQ(stats.attached_adapters(), 2u);
}

// Writes `count` dead letters for beta's chat B1 straight into the router's
// store in `data_dir`, as a long outage would have left them.
void WriteDeadLetters(const std::string& data_dir, int count) {
  auto store = bridge::OpenSqliteStore(data_dir, v1::NORMAL);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::ChannelRef target;
  target.set_platform("beta");
  target.set_account("b");
  target.set_chat_id("B1");
  bridge::CommitBatch batch;
  batch.now = absl::Now();
  for (int i = 0; i < count; ++i) {
    auto event = std::make_shared<v1::Event>();
    event->set_key(absl::StrCat("alpha:old:", i));
    event->mutable_channel()->set_platform("alpha");
    event->mutable_channel()->set_account("a");
    event->mutable_channel()->set_chat_id("A1");
    event->mutable_posted()->set_message_id(absl::StrCat("old-", i));
    event->mutable_posted()->mutable_text()->set_text("from the outage");
    bridge::NewEvent& entry = batch.events.emplace_back();
    entry.event = std::move(event);
    bridge::DeliveryRecord& d = entry.deliveries.emplace_back();
    d.target = target;
    d.target_key = bridge::ChannelKey(target, true);
    d.link = "pair";
    d.created_at = batch.now;
    d.next_attempt_at = batch.now;
  }
  absl::Status written = (*store)->Apply(batch);
  ASSERT_TRUE(written.ok()) << written;
  bridge::CommitBatch dead;
  dead.now = batch.now;
  for (const bridge::NewEvent& entry : batch.events) {
    ASSERT_NE(entry.id, 0);
    dead.dead_letters.push_back({entry.deliveries[0].id, "outage"});
  }
  written = (*store)->Apply(dead);
  ASSERT_TRUE(written.ok()) << written;
}

// More dead letters than one page of the list and of a drop: listing page
// by page (before_id) shows each once, newest first, and drop --all
// removes them all.
TEST_F(AdminIntegrationTest, DeadLettersAreListedAndDroppedPageByPage) {
  constexpr int kDead = 4500;
  RouterProcess router(Config(kPairLink));
  WriteDeadLetters(router.data_dir(), kDead);
  ASSERT_TRUE(router.Start().ok());
  Connect(router);

  std::vector<uint64_t> listed;
  uint64_t before_id = 0;
  int pages = 0;
  do {
    v1::ListDeadLettersRequest request;
    request.set_limit(1000);
    request.set_before_id(before_id);
    v1::ListDeadLettersResponse page;
    grpc::Status status =
        admin_->ListDeadLetters(Ctx(kAdminToken).get(), request, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_LE(page.dead_letters_size(), 1000);
    for (const v1::DeadLetter& d : page.dead_letters()) {
      listed.push_back(d.id());
      EXPECT_EQ(d.text_preview(), "from the outage");
    }
    before_id = page.next_before_id();
    if (before_id != 0) {
      EXPECT_EQ(before_id, listed.back());
    }
    ++pages;
  } while (before_id != 0 && pages < 100);
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(listed.size(), static_cast<size_t>(kDead));
  EXPECT_TRUE(std::is_sorted(listed.rbegin(), listed.rend()));
  EXPECT_EQ(std::adjacent_find(listed.begin(), listed.end()), listed.end());

  v1::ListDeadLettersRequest too_many;
  too_many.set_limit(1001);
  v1::ListDeadLettersResponse unused;
  grpc::Status refused =
      admin_->ListDeadLetters(Ctx(kAdminToken).get(), too_many, &unused);
  EXPECT_EQ(refused.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("page with before_id"));

  v1::DeadLetterSelection all;
  all.set_all(true);
  v1::DeadLetterActionResponse acted;
  auto ctx = Ctx(kAdminToken);
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(120));
  grpc::Status status = admin_->DropDeadLetters(ctx.get(), all, &acted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acted.count(), static_cast<uint32_t>(kDead));
  v1::Stats stats;
  ASSERT_TRUE(
      admin_->GetStats(Ctx(kAdminToken).get(), v1::GetStatsRequest(), &stats)
          .ok());
  EXPECT_EQ(stats.dead_letters(), 0);
  v1::ListDeadLettersResponse none;
  ASSERT_TRUE(admin_
                  ->ListDeadLetters(Ctx(kAdminToken).get(),
                                    v1::ListDeadLettersRequest(), &none)
                  .ok());
  EXPECT_EQ(none.dead_letters_size(), 0);
  EXPECT_EQ(none.next_before_id(), 0u);
}

TEST_F(AdminIntegrationTest, RetryAllRetriesEveryDeadLetterBeyondAnyPage) {
  constexpr int kDead = 150000;
  RouterProcess router(Config(kPairLink));
  WriteDeadLetters(router.data_dir(), kDead);
  ASSERT_TRUE(router.Start().ok());
  Connect(router);

  v1::Stats stats;
  ASSERT_TRUE(
      admin_->GetStats(Ctx(kAdminToken).get(), v1::GetStatsRequest(), &stats)
          .ok());
  ASSERT_EQ(stats.dead_letters(), kDead);
  v1::ListQueuesResponse queues;
  ASSERT_TRUE(
      admin_
          ->ListQueues(Ctx(kAdminToken).get(), v1::ListQueuesRequest(), &queues)
          .ok());
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).target().chat_id(), "B1");
  EXPECT_EQ(queues.queues(0).dead(), kDead);

  v1::DeadLetterSelection all;
  all.set_all(true);
  v1::DeadLetterActionResponse acted;
  auto ctx = Ctx(kAdminToken);
  // Generous for a loaded machine; the retry commits page by page.
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(300));
  grpc::Status status = admin_->RetryDeadLetters(ctx.get(), all, &acted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acted.count(), static_cast<uint32_t>(kDead));

  stats.Clear();
  ASSERT_TRUE(
      admin_->GetStats(Ctx(kAdminToken).get(), v1::GetStatsRequest(), &stats)
          .ok());
  EXPECT_EQ(stats.dead_letters(), 0);
  queues.Clear();
  ASSERT_TRUE(
      admin_
          ->ListQueues(Ctx(kAdminToken).get(), v1::ListQueuesRequest(), &queues)
          .ok());
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_EQ(queues.queues(0).pending(), kDead);
  EXPECT_EQ(queues.queues(0).dead(), 0);

  // Nothing is left for a second --all.
  ctx = Ctx(kAdminToken);
  ASSERT_TRUE(admin_->DropDeadLetters(ctx.get(), all, &acted).ok());
  EXPECT_EQ(acted.count(), 0u);
}

TEST_F(AdminIntegrationTest, WebhookKeysAreCheckedAndRevokedAtOnce) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  v1::CreateWebhookRequest create;
  create.set_link("pair");
  create.set_direction(v1::INCOMING);
  v1::CreateWebhookResponse hook;
  ASSERT_TRUE(
      admin_->CreateWebhook(Ctx(kAdminToken).get(), create, &hook).ok());
  ASSERT_THAT(hook.secret(), HasSubstr("imbk_"));

  v1::CheckIncomingKeyRequest check;
  check.set_id(hook.webhook().id());
  check.set_key(hook.secret());
  v1::WebhookInfo info;
  ASSERT_TRUE(
      directory_->CheckIncomingKey(Ctx(kToken).get(), check, &info).ok());
  EXPECT_EQ(info.link(), "pair");
  EXPECT_EQ(directory_->CheckIncomingKey(Ctx(kAdminToken).get(), check, &info)
                .error_code(),
            grpc::UNAUTHENTICATED);
  v1::CheckIncomingKeyRequest wrong = check;
  wrong.set_key(hook.secret() + "x");
  EXPECT_EQ(directory_->CheckIncomingKey(Ctx(kToken).get(), wrong, &info)
                .error_code(),
            grpc::PERMISSION_DENIED);

  // The key is stored only as a salted hash.
  router.Kill();
  std::ifstream db(router.data_dir() + "/imbridge.db", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(db)),
                    std::istreambuf_iterator<char>());
  std::ifstream wal(router.data_dir() + "/imbridge.db-wal", std::ios::binary);
  bytes.append((std::istreambuf_iterator<char>(wal)),
               std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find(hook.secret()), std::string::npos);
  ASSERT_TRUE(router.Start().ok());
  Connect(router);
  grpc::Status after_restart =
      directory_->CheckIncomingKey(Ctx(kToken).get(), check, &info);
  ASSERT_TRUE(after_restart.ok()) << after_restart.error_message();

  v1::RevokeWebhookRequest revoke;
  revoke.set_id(hook.webhook().id());
  v1::RevokeWebhookResponse revoked;
  ASSERT_TRUE(
      admin_->RevokeWebhook(Ctx(kAdminToken).get(), revoke, &revoked).ok());
  EXPECT_EQ(directory_->CheckIncomingKey(Ctx(kToken).get(), check, &info)
                .error_code(),
            grpc::PERMISSION_DENIED);

  create.set_direction(v1::OUTGOING);
  create.set_url("https://example.invalid/hook");
  ASSERT_TRUE(
      admin_->CreateWebhook(Ctx(kAdminToken).get(), create, &hook).ok());
  v1::GetOutgoingRequest get;
  get.set_id(hook.webhook().id());
  v1::OutgoingWebhook outgoing;
  ASSERT_TRUE(directory_->GetOutgoing(Ctx(kToken).get(), get, &outgoing).ok());
  EXPECT_EQ(outgoing.secret(), hook.secret());
  EXPECT_EQ(outgoing.webhook().url(), "https://example.invalid/hook");
  EXPECT_THAT(router.ReadLog(), Not(HasSubstr(hook.secret())));
}

TEST_F(AdminIntegrationTest, ChatCommandsAnswerInTheirOwnChatOnly) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "hello from alpha");
  ASSERT_TRUE(beta->WaitForCalls(1));
  alpha->SetPresence("user-alpha", v1::ONLINE);
  ASSERT_TRUE(beta->WaitForCalls(2));

  beta->Post("B1", "!bridge who");
  ASSERT_TRUE(beta->WaitForCalls(3));
  auto calls = beta->calls();
  const auto& who = calls.back();
  EXPECT_EQ(who.kind, "post");
  EXPECT_EQ(who.chat, "B1");
  EXPECT_EQ(who.sender_name, "imbridge");
  EXPECT_THAT(who.text, HasSubstr("Person on alpha (alpha): online"));
  EXPECT_FALSE(who.reply_to.empty());  // Answers the command message.

  beta->Post("B1", "!bridge status");
  ASSERT_TRUE(beta->WaitForCalls(4));
  std::string status = beta->calls().back().text;
  EXPECT_THAT(status, HasSubstr("Link pair: 2 members"));
  EXPECT_THAT(status, HasSubstr("alpha chat A1: attached, 0 queued"));

  beta->Post("B1", "!bridge");
  ASSERT_TRUE(beta->WaitForCalls(5));
  EXPECT_THAT(beta->calls().back().text, HasSubstr("!bridge who"));
  // None of the commands reached alpha.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(Posts(*alpha).empty());
}

TEST_F(AdminIntegrationTest, MetricsAreValidPrometheusTextAndReadyzAnswers) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "counted");
  ASSERT_TRUE(beta->WaitForCalls(1));

  HttpClient http;
  std::string base = absl::StrCat("http://127.0.0.1:", router.http_port());
  auto ready = http.Get(base + "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
  auto alive = http.Get(base + "/healthz");
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(alive->status, 200);

  // The adapter's result is committed (and counted) a moment after the
  // adapter handled the delivery.
  absl::StatusOr<HttpResponse> metrics;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    metrics = http.Get(base + "/metrics");
    ASSERT_TRUE(metrics.ok());
    if (absl::StrContains(metrics->body, "imbridge_router_deliveries_total")) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(metrics->status, 200);
  // Every line is a comment (# HELP / # TYPE) or "name{labels} value".
  std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (\+Inf|NaN)$)");
  std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  int samples = 0;
  for (absl::string_view line : absl::StrSplit(metrics->body, '\n')) {
    if (line.empty()) continue;
    std::string l(line);
    EXPECT_TRUE(std::regex_match(l, sample) || std::regex_match(l, comment))
        << l;
    if (l[0] != '#') ++samples;
  }
  EXPECT_GT(samples, 5);
  EXPECT_THAT(metrics->body, HasSubstr("imbridge_router_events_total{outcome="
                                       "\"accepted\",platform=\"alpha\"}"
                                       " 1\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_deliveries_total{platform=\"beta\","
                        "result=\"ok\"} 1\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_attached_adapters 2\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_delivery_latency_seconds_count{"
                        "platform=\"beta\"} 1\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_link_events_total{kind=\"message\","
                        "link=\"pair\"} 1\n"));
}

TEST_F(AdminIntegrationTest, LinkEventsCountEachEventOncePerLink) {
  RouterProcess router(Config(R"(links:
  - name: trio
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B1}
      - {platform: beta, account: b, chat_id: B2}
  - name: side
    members:
      - {platform: alpha, account: a, chat_id: A1}
      - {platform: beta, account: b, chat_id: B3}
  - name: quiet
    members:
      - {platform: alpha, account: a, chat_id: A9}
      - {platform: beta, account: b, chat_id: B9}
)"));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  auto beta = Adapter(router, "beta", "b");
  alpha->Post("A1", "first");
  alpha->Post("A1", "second");
  // Two messages, each to three chats over two links.
  ASSERT_TRUE(beta->WaitForCalls(6));
  HttpClient http;
  auto metrics = http.Get(
      absl::StrCat("http://127.0.0.1:", router.http_port(), "/metrics"));
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_link_events_total{kind=\"message\","
                        "link=\"trio\"} 2\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("imbridge_router_link_events_total{kind=\"message\","
                        "link=\"side\"} 2\n"));
  EXPECT_THAT(metrics->body, Not(HasSubstr("link=\"quiet\"")));
  // A linked channel that never had a delivery has its queue series, 0.
  EXPECT_THAT(
      metrics->body,
      HasSubstr("imbridge_router_queue_depth{target=\"beta/b/B9\"} 0\n"));
  EXPECT_THAT(
      metrics->body,
      HasSubstr("imbridge_router_queue_oldest_age_seconds{target=\"beta/"
                "b/B9\"} 0\n"));
}

TEST_F(AdminIntegrationTest, QueueDepthRisesWhileDetachedAndFallsToZero) {
  RouterProcess router(Config(kPairLink));
  ASSERT_TRUE(router.Start().ok());
  auto alpha = Adapter(router, "alpha", "a");
  alpha->Post("A1", "waits for beta");
  HttpClient http;
  std::string url =
      absl::StrCat("http://127.0.0.1:", router.http_port(), "/metrics");
  const std::string series =
      "imbridge_router_queue_depth{target=\"beta/b/B1\"} ";
  auto waiting = http.Get(url);
  ASSERT_TRUE(waiting.ok());
  EXPECT_THAT(waiting->body, HasSubstr(series + "1\n"));
  // The waiting delivery ages.
  const std::string age_series =
      "imbridge_router_queue_oldest_age_seconds{target=\"beta/b/B1\"} ";
  auto Age = [&](const std::string& body) {
    size_t at = body.find(age_series);
    if (at == std::string::npos) return -1.0;
    return std::stod(body.substr(at + age_series.size()));
  };
  absl::SleepFor(absl::Milliseconds(1100));
  auto aged = http.Get(url);
  ASSERT_TRUE(aged.ok());
  EXPECT_GE(Age(aged->body), 1.0) << aged->body;
  EXPECT_LT(Age(aged->body), 600.0);

  auto beta = Adapter(router, "beta", "b");
  ASSERT_TRUE(beta->WaitForCalls(1));
  std::string body;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto drained = http.Get(url);
    ASSERT_TRUE(drained.ok());
    body = drained->body;
    if (body.find(series + "0\n") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(body, HasSubstr(series + "0\n"));
  EXPECT_THAT(body, HasSubstr(age_series + "0\n"));
}

}  // namespace
}  // namespace imbridge::testing
