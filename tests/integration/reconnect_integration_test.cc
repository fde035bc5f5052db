// Issue 11, item 4: an adapter is attached again at once after the router
// restarts. The real router and the real webhook adapter run as child
// processes; the router is stopped long enough for any growing backoff to
// have grown, then started again on the same port, and the time from the
// router serving to the adapter's /readyz saying "attached" is measured.

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/http_client.h"
#include "gtest/gtest.h"
#include "tests/integration/adapter_process.h"
#include "tests/integration/router_process.h"

namespace imbridge::testing {
namespace {

constexpr char kAdapterToken[] = "reconnect-adapter-token-0123456789";
// How long the router stays down: the client's old backoff (100 ms doubling)
// was at 3.2 s by then, with gRPC's own under it.
constexpr absl::Duration kRouterDown = absl::Seconds(6);
// What the issue promises.
constexpr absl::Duration kReattachBound = absl::Seconds(1);

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(poll);
  }
  return condition();
}

class ReconnectIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_unique<RouterProcess>(
        absl::StrCat("adapters:\n  - {name: hooks, token: ", kAdapterToken,
                     "}\n", "store: {durability: normal}\n"));
    absl::Status started = router_->Start();
    ASSERT_TRUE(started.ok()) << started << router_->ReadLog();
    adapter_ = std::make_unique<AdapterProcess>(
        "adapters/webhook/imbridge-adapter-webhook",
        absl::StrCat("router: {address: \"", router_->address(),
                     "\", token: ", kAdapterToken, "}\n"));
    started = adapter_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(WaitFor([this] { return Attached(); }, absl::Seconds(60)))
        << adapter_->ReadLog();
  }

  // The adapter's own view: /readyz is 200 only while it is attached.
  bool Attached() {
    absl::StatusOr<HttpResponse> r =
        client_.Get(adapter_->base_url() + "/readyz");
    return r.ok() && r->status == 200;
  }

  // Restarts the router after `kRouterDown` and returns how long after it
  // served again the adapter was attached.
  absl::Duration Restart(const std::function<void()>& stop) {
    stop();
    EXPECT_TRUE(WaitFor([this] { return !Attached(); }, absl::Seconds(30)));
    absl::SleepFor(kRouterDown);
    absl::Status started = router_->Start();
    // Start() returns once the router wrote its port file, after its gRPC
    // server started: the router serves from here on.
    absl::Time serving = absl::Now();
    EXPECT_TRUE(started.ok()) << started << router_->ReadLog();
    bool attached = WaitFor([this] { return Attached(); }, absl::Seconds(60));
    absl::Duration took = absl::Now() - serving;
    EXPECT_TRUE(attached) << adapter_->ReadLog();
    return took;
  }

  std::unique_ptr<RouterProcess> router_;
  std::unique_ptr<AdapterProcess> adapter_;
  HttpClient client_;
};

TEST_F(ReconnectIntegrationTest, AttachedWithinASecondAfterARouterCrash) {
  absl::Duration took = Restart([this] { router_->Kill(); });
  std::printf("re-attached %s after the router served again (crash)\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, kReattachBound) << adapter_->ReadLog();
}

TEST_F(ReconnectIntegrationTest, AttachedWithinASecondAfterARouterStop) {
  absl::Duration took = Restart([this] { EXPECT_EQ(router_->Terminate(), 0); });
  std::printf("re-attached %s after the router served again (stop)\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, kReattachBound) << adapter_->ReadLog();
}

}  // namespace
}  // namespace imbridge::testing
