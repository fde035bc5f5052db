// SlackOutbound against the fake Slack: the pacing of one channel's writes.

#include "adapters/slack/outbound.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/http/http_client.h"
#include "emulators/slack/fake_slack.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::slack {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

v1::Delivery Posted(const std::string& channel, const std::string& text,
                    int id) {
  v1::Delivery d;
  d.set_id(id);
  d.mutable_target()->set_platform("slack");
  d.mutable_target()->set_account("main");
  d.mutable_target()->set_chat_id(channel);
  d.set_sender_name("Ivan (teamspirit)");
  d.set_idempotency_key(absl::StrCat("key-", id));
  v1::Event* e = d.mutable_event();
  e->set_key(absl::StrCat("teamspirit:c-1:", id));
  e->mutable_channel()->set_platform("teamspirit");
  e->mutable_posted()->set_message_id(absl::StrCat("m-", id));
  e->mutable_posted()->mutable_text()->set_text(text);
  return d;
}

// A write waiting for the channel's pacing when the adapter stops gives up
// (retryable: the router sends it again) and is not made.
TEST(SlackOutboundTest, StopEndsAWaitForTheChannelsPacing) {
  fakes::FakeSlack slack{fakes::FakeSlack::Options()};
  ASSERT_TRUE(slack.Start().ok());
  slack.AddChannel("C1", "general");
  HttpClient http;
  SlackApi::Options api_options;
  api_options.base_url = slack.api_base_url();
  api_options.bot_token = slack.options().bot_token;
  SlackApi api(api_options, &http);
  std::unique_ptr<DeliveryJournal> journal =
      *DeliveryJournal::Open(DeliveryJournal::Options());
  SlackOutbound::Options options;
  options.account = "main";
  options.messages_per_second = 1.0 / 3600;  // one write an hour
  options.burst = 1;
  SlackOutbound outbound(
      options, &api,
      [](const std::string&, uint64_t) -> absl::StatusOr<std::string> {
        return absl::NotFoundError("no blobs here");
      },
      journal.get(), SlackOutbound::ServiceUser());

  auto first = outbound.SendMessage(Posted("C1", "first", 1));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::Status waited;
  std::thread sender([&] {
    waited = outbound.SendMessage(Posted("C1", "second", 2)).status();
  });
  absl::SleepFor(absl::Milliseconds(50));
  outbound.Stop();
  sender.join();  // without the stop's end of the wait: an hour (timeout)
  EXPECT_TRUE(IsRetryable(waited)) << waited;
  EXPECT_THAT(std::string(waited.message()), HasSubstr("stopping"));
  EXPECT_THAT(slack.Messages("C1"), SizeIs(1));
  // Later writes that would wait, an edit among them, fail at once.
  v1::Delivery edit = Posted("C1", "first, edited", 3);
  edit.mutable_event()->mutable_edited()->mutable_text()->set_text("edited");
  edit.add_target_message_ids((*first)[0]);
  EXPECT_TRUE(IsRetryable(outbound.EditMessage(edit)));
}

}  // namespace
}  // namespace imbridge::adapters::slack
