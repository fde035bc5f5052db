// The long-polling loop against the fake Bot API.

#include "adapters/telegram/poller.h"

#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "adapters/telegram/telegram_api.h"
#include "common/http/http_client.h"
#include "emulators/telegram/fake_telegram.h"
#include "gtest/gtest.h"

namespace imbridge::adapters::telegram {
namespace {

// Stop() does not wait for a getUpdates in progress: the poller's thread
// finishes it on its own. The adapter that owned the poller, its BotApi and
// its HttpClient may be destroyed meanwhile; the thread keeps the client
// alive until it ends, and then frees it. (Before, BotApi pointed at the
// adapter's client: when a Telegram adapter stopped during a long poll, the
// answer arrived on a freed client, a heap-use-after-free that the ASan
// build of TelegramIntegrationTest.PollingAdvancesOnlyPastAcknowledgedUpdates
// hit.)
TEST(PollerTest, AGetUpdatesLeftRunningByStopKeepsItsClientUntilItEnds) {
  fakes::FakeTelegram fake;
  ASSERT_TRUE(fake.Start().ok());
  std::weak_ptr<HttpClient> client;
  {
    auto http = std::make_shared<HttpClient>();
    client = http;
    auto api = std::make_shared<BotApi>(
        BotApi::Options{fake.base_url(), fake.token(), absl::Seconds(10)},
        http);
    Poller::Options options;
    options.account = "main";
    options.long_poll = absl::Seconds(1);
    Poller poller(options, api, [](const std::vector<nlohmann::json>& updates) {
      return updates.size();
    });
    poller.Start();
    ASSERT_TRUE(fake.WaitForCalls("getUpdates", 1));
    poller.Stop();  // the long poll in progress is left to its thread
  }
  // The owner's references are gone; the thread still holds the client
  // while the call waits (up to the 1 s long poll), then lets it go.
  EXPECT_TRUE(
      fake.WaitFor([&] { return client.expired(); }, absl::Seconds(30)));
}

}  // namespace
}  // namespace imbridge::adapters::telegram
