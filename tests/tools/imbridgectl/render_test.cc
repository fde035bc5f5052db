// Tables and text that imbridgectl prints for people, and its JSON.

#include "tools/imbridgectl/render.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/imbridgectl/table.h"

namespace imbridge::ctl {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1763719200);  // 2025-11-21 10:00
const int64_t kNowMs = 1763719200000;

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table table({"ID", "NAME", "NOTE"});
  table.AddRow({"1", "support", ""});
  table.AddRow({"12345", "x", "last"});
  EXPECT_EQ(table.Render(),
            "ID     NAME     NOTE\n"
            "1      support\n"
            "12345  x        last\n");
}

TEST(TableTest, MeasuresUtf8CharactersAndFlattensNewlines) {
  Table table({"A", "B"});
  table.AddRow({"Привет", "x"});
  table.AddRow({"two\nlines", "y"});
  EXPECT_EQ(table.Render(),
            "A          B\n"
            "Привет     x\n"
            "two lines  y\n");
  EXPECT_EQ(DisplayWidth("Привет"), 6u);
}

TEST(TableTest, MissingCellsAreEmptyAndExtraOnesDropped) {
  Table table({"A", "B"});
  table.AddRow({"only"});
  table.AddRow({"1", "2", "3"});
  EXPECT_EQ(table.Render(), "A     B\nonly\n1     2\n");
  EXPECT_EQ(table.rows(), 2u);
}

TEST(FormatTest, Ages) {
  EXPECT_EQ(FormatAge(absl::Seconds(0)), "0s");
  EXPECT_EQ(FormatAge(absl::Seconds(-5)), "0s");
  EXPECT_EQ(FormatAge(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAge(absl::Seconds(312)), "5m12s");
  EXPECT_EQ(FormatAge(absl::Seconds(3 * 3600 + 4 * 60 + 59)), "3h04m");
  EXPECT_EQ(FormatAge(absl::Hours(51)), "2d03h");
  EXPECT_EQ(FormatTimeMs(0), "-");
  EXPECT_EQ(FormatTimeMs(kNowMs), "2025-11-21 10:00:00 UTC");
}

TEST(RenderTest, Links) {
  v1::ListLinksResponse links;
  EXPECT_EQ(RenderLinks(links), "no links\n");
  v1::LinkInfo* config = links.add_links();
  config->mutable_link()->set_name("support");
  config->set_source(v1::CONFIG);
  auto* m = config->mutable_link()->add_members();
  m->set_platform("slack");
  m->set_account("acme");
  m->set_chat_id("C1");
  m = config->mutable_link()->add_members();
  m->set_platform("telegram");
  m->set_account("bot");
  m->set_chat_id("-100");
  m->set_thread_id("5");
  m->set_direction(v1::IN);
  v1::LinkInfo* runtime = links.add_links();
  runtime->mutable_link()->set_name("ops");
  runtime->set_source(v1::RUNTIME);
  runtime->set_created_at_ms(kNowMs);
  runtime->add_webhook_ids("wh1");
  EXPECT_EQ(RenderLinks(links),
            "NAME     SOURCE   MEMBERS                               "
            "WEBHOOKS  CREATED\n"
            "support  config   slack:acme:C1 telegram:bot:-100#5:in  -"
            "         -\n"
            "ops      runtime                                        "
            "wh1       2025-11-21 10:00:00 UTC\n");
}

TEST(RenderTest, LinksAnAdapterCreatedNameTheirOwner) {
  v1::ListLinksResponse links;
  v1::LinkInfo* info = links.add_links();
  info->mutable_link()->set_name("visitor");
  info->set_source(v1::RUNTIME);
  info->set_owner_platform("botsplash");
  auto* m = info->mutable_link()->add_members();
  m->set_platform("botsplash");
  m->set_account("main");
  m->set_chat_id("visitor:1");
  EXPECT_EQ(RenderLinks(links),
            "NAME     SOURCE               MEMBERS                   "
            "WEBHOOKS  CREATED\n"
            "visitor  runtime (botsplash)  botsplash:main:visitor:1  -         "
            "-\n");
  std::string out = RenderLink(*info);
  EXPECT_THAT(out, HasSubstr("owner:    botsplash\n"));
}

TEST(RenderTest, AMemberWaitingForItsThreadSaysSo) {
  v1::LinkInfo info;
  info.mutable_link()->set_name("chatlio-u-1");
  auto* m = info.mutable_link()->add_members();
  m->set_platform("teamspirit");
  m->set_account("corp");
  m->set_chat_id("c-web");
  m->set_pending_thread_root(17);
  EXPECT_THAT(RenderLink(info), HasSubstr("c-web  pending (copy of event 17)"));
  m->clear_pending_thread_root();
  m->set_thread_id("m-77");
  EXPECT_THAT(RenderLink(info), HasSubstr("c-web  m-77"));
}

TEST(RenderTest, LinkDetailsShowOptionsThatDifferFromDefaults) {
  v1::LinkInfo info;
  info.mutable_link()->set_name("support");
  info.set_source(v1::RUNTIME);
  info.set_created_at_ms(kNowMs);
  auto* m = info.mutable_link()->add_members();
  m->set_platform("slack");
  m->set_account("acme");
  m->set_chat_id("C1");
  m->mutable_options()->set_edits(false);
  m->mutable_options()->set_files(true);
  m->mutable_options()->set_sender_format("{name}");
  std::string out = RenderLink(info);
  EXPECT_THAT(out, HasSubstr("link:     support\n"));
  EXPECT_THAT(out, HasSubstr("source:   runtime\n"));
  EXPECT_THAT(out, HasSubstr("created:  2025-11-21 10:00:00 UTC\n"));
  EXPECT_THAT(out, HasSubstr("webhooks: -\n"));
  EXPECT_THAT(out, HasSubstr("slack     acme     C1    -       both       "
                             "edits=no format='{name}'\n"));
  EXPECT_THAT(out, Not(HasSubstr("files=")));
}

TEST(RenderTest, QueuesAndDeadLetters) {
  v1::ListQueuesResponse queues;
  EXPECT_EQ(RenderQueues(queues), "no queues\n");
  v1::QueueInfo* q = queues.add_queues();
  q->set_target_key("slack/acme/C1");
  q->set_pending(3);
  q->set_oldest_age_ms(75000);
  q->set_dead(1);
  q->set_attached(true);
  EXPECT_EQ(RenderQueues(queues),
            "TARGET         PENDING  OLDEST  DEAD  ATTACHED\n"
            "slack/acme/C1  3        1m15s   1     yes\n");
  // Routers sharing a database: each queue's sender, "-" for none now.
  q->set_owner("db1:4242:0badf00d");
  v1::QueueInfo* idle = queues.add_queues();
  idle->set_target_key("tg/bot/7");
  EXPECT_EQ(
      RenderQueues(queues),
      "TARGET         PENDING  OLDEST  DEAD  ATTACHED  OWNER\n"
      "slack/acme/C1  3        1m15s   1     yes       db1:4242:0badf00d\n"
      "tg/bot/7       0        -       0     no        -\n");

  v1::ListDeadLettersResponse dead;
  EXPECT_EQ(RenderDeadLetters(dead, kNow), "no dead letters\n");
  v1::DeadLetter* d = dead.add_dead_letters();
  d->set_id(17);
  d->mutable_target()->set_platform("slack");
  d->mutable_target()->set_account("acme");
  d->mutable_target()->set_chat_id("C1");
  d->set_link("support");
  d->set_event_kind("posted");
  d->set_attempts(1);
  d->set_created_at_ms(kNowMs - 3600 * 1000);
  d->set_reason("HTTP 403: not_in_channel");
  d->set_text_preview(std::string(50, 'x'));
  std::string out = RenderDeadLetters(dead, kNow);
  EXPECT_THAT(out, HasSubstr("ID  TARGET         LINK     KIND    ATTEMPTS"));
  EXPECT_THAT(out, HasSubstr("17  slack/acme/C1  support  posted  1         "
                             "1h00m  HTTP 403: not_in_channel  "));
  // The preview is cut to 40 characters with an ellipsis.
  EXPECT_THAT(out, HasSubstr(std::string(39, 'x') + "\xE2\x80\xA6\n"));
  EXPECT_THAT(out, Not(HasSubstr("more:")));
  // When more follow, the last line says how to see them.
  dead.set_next_before_id(17);
  out = RenderDeadLetters(dead, kNow);
  EXPECT_THAT(out,
              EndsWith("\nmore: imbridgectl deadletter list --before 17\n"));
}

TEST(RenderTest, AdaptersAndStats) {
  v1::ListAdaptersResponse adapters;
  EXPECT_EQ(RenderAdapters(adapters, kNow), "no adapters attached\n");
  v1::AdapterInfo* a = adapters.add_adapters();
  a->set_credential_name("local");
  a->set_adapter_name("slack-1");
  a->set_platform("slack");
  a->add_accounts("acme");
  a->add_accounts("beta");
  a->add_capabilities("edits");
  a->set_connected_since_ms(kNowMs - 90 * 1000);
  a->set_in_flight(2);
  a->set_peer("ipv4:127.0.0.1:5555");
  std::string out = RenderAdapters(adapters, kNow);
  EXPECT_THAT(out, HasSubstr("local       slack-1  slack     acme,beta  "
                             "1m30s      2          ipv4:127.0.0.1:5555  "
                             "edits         -\n"));

  v1::Stats stats;
  stats.set_router_id("r-1");
  stats.set_started_at_ms(kNowMs - 7200 * 1000);
  stats.set_events_accepted(10);
  stats.set_dead_letters(2);
  out = RenderStats(stats, kNow);
  EXPECT_THAT(out, HasSubstr("router id:                r-1\n"));
  EXPECT_THAT(out, HasSubstr("started:                  2025-11-21 08:00:00 "
                             "UTC (up 2h00m)\n"));
  EXPECT_THAT(out, HasSubstr("events accepted:          10\n"));
  EXPECT_THAT(out, HasSubstr("dead letters:             2\n"));
}

TEST(RenderTest, WebhooksNeverShowSecretsInLists) {
  v1::ListWebhooksResponse list;
  EXPECT_EQ(RenderWebhooks(list), "no webhooks\n");
  v1::WebhookInfo* in = list.add_webhooks();
  in->set_id("wh-in");
  in->set_link("support");
  in->set_direction(v1::INCOMING);
  in->set_account("default");
  in->set_created_at_ms(kNowMs);
  v1::WebhookInfo* out_hook = list.add_webhooks();
  out_hook->set_id("wh-out");
  out_hook->set_link("support");
  out_hook->set_direction(v1::OUTGOING);
  out_hook->set_url("https://example.com/x");
  out_hook->set_created_at_ms(kNowMs);
  out_hook->set_revoked_at_ms(kNowMs);
  out_hook->set_description("ci");
  std::string out = RenderWebhooks(list);
  EXPECT_THAT(out, HasSubstr("wh-in   incoming   support  default  "
                             "/hooks/wh-in"));
  EXPECT_THAT(out, HasSubstr("active"));
  EXPECT_THAT(out, HasSubstr("wh-out  outgoing   support  -        "
                             "https://example.com/x"));
  EXPECT_THAT(out, HasSubstr("revoked 2025-11-21 10:00:00 UTC  ci\n"));
}

TEST(RenderTest, CreatedWebhookShowsTheKeyOnceWithAWarning) {
  v1::CreateWebhookResponse created;
  created.mutable_webhook()->set_id("abc");
  created.mutable_webhook()->set_link("support");
  created.mutable_webhook()->set_direction(v1::INCOMING);
  created.mutable_webhook()->set_account("default");
  created.set_secret("the-key");
  std::string out = RenderCreatedWebhook(created);
  EXPECT_THAT(out, HasSubstr("url path:  /hooks/abc\n"));
  EXPECT_THAT(out, HasSubstr("api key:   the-key\n"));
  EXPECT_THAT(out, HasSubstr("WARNING: the API key is shown only now"));

  created.mutable_webhook()->set_direction(v1::OUTGOING);
  created.mutable_webhook()->set_url("https://example.com/in");
  out = RenderCreatedWebhook(created);
  EXPECT_THAT(out, HasSubstr("posts to:       https://example.com/in\n"));
  EXPECT_THAT(out, HasSubstr("signing secret: the-key\n"));
  EXPECT_THAT(out, HasSubstr("WARNING: the signing secret is shown only now"));
}

TEST(RenderTest, JsonUsesTheProtobufMappingWithDefaults) {
  v1::ListQueuesResponse queues;
  v1::QueueInfo* q = queues.add_queues();
  q->set_target_key("slack/acme/C1");
  q->set_pending(3);
  nlohmann::json json = nlohmann::json::parse(ToJson(queues));
  EXPECT_EQ(json["queues"][0]["targetKey"], "slack/acme/C1");
  EXPECT_EQ(json["queues"][0]["pending"], "3");  // int64 as a string
  EXPECT_EQ(json["queues"][0]["dead"], "0");     // defaults are printed
  EXPECT_EQ(json["queues"][0]["attached"], false);

  v1::CreateWebhookResponse created;
  created.mutable_webhook()->set_id("abc");
  created.mutable_webhook()->set_direction(v1::INCOMING);
  created.set_secret("k");
  json = nlohmann::json::parse(CreatedWebhookJson(created));
  EXPECT_EQ(json["urlPath"], "/hooks/abc");
  EXPECT_EQ(json["secret"], "k");
  EXPECT_EQ(json["webhook"]["direction"], "INCOMING");
}

}  // namespace
}  // namespace imbridge::ctl
