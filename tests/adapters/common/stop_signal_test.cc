#include "adapters/common/stop_signal.h"

#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/delivery_handler.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

TEST(StopSignalTest, AWaitWithoutAStopRunsItsTime) {
  StopSignal stop;
  EXPECT_FALSE(stop.WaitFor(absl::ZeroDuration()));
  EXPECT_FALSE(stop.WaitFor(absl::Milliseconds(-5)));
  const absl::Time start = absl::Now();
  EXPECT_FALSE(stop.WaitFor(absl::Milliseconds(20)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_FALSE(stop.stopped());
}

TEST(StopSignalTest, StopEndsAWaitInProgressAndEveryLaterOne) {
  StopSignal stop;
  bool stopped_during = false;
  std::thread waiter([&] { stopped_during = stop.WaitFor(absl::Hours(1)); });
  absl::SleepFor(absl::Milliseconds(20));
  stop.Stop();
  waiter.join();  // a missed stop hangs here: the test times out
  EXPECT_TRUE(stopped_during);
  EXPECT_TRUE(stop.stopped());
  EXPECT_TRUE(stop.WaitFor(absl::Hours(1)));
  EXPECT_TRUE(stop.WaitFor(absl::ZeroDuration()));
}

// Connectors and their clients stop from several places (the runtime's
// shutdown, a failed start); an absl::Notification aborts on a second
// Notify.
TEST(StopSignalTest, StopMayComeManyTimesFromManyThreads) {
  StopSignal stop;
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 8; ++i) {
    stoppers.emplace_back([&] {
      for (int j = 0; j < 100; ++j) stop.Stop();
    });
  }
  for (std::thread& t : stoppers) t.join();
  EXPECT_TRUE(stop.stopped());
}

// A delivery's pacing wait: the call goes ahead after it, or is given back
// to the router (a retryable error) when the adapter stops before or
// during it.
TEST(StopSignalTest, APauseEndsInARetryableErrorWhenTheStopComes) {
  StopSignal stop;
  EXPECT_TRUE(stop.Pause(absl::ZeroDuration()).ok());
  EXPECT_TRUE(stop.Pause(absl::Milliseconds(5)).ok());
  absl::Status paused;
  std::thread waiter([&] { paused = stop.Pause(absl::Hours(1)); });
  absl::SleepFor(absl::Milliseconds(20));
  stop.Stop();
  waiter.join();  // a missed stop hangs here: the test times out
  EXPECT_TRUE(IsRetryable(paused)) << paused;
  EXPECT_NE(paused.message().find("stopping"), absl::string_view::npos);
  EXPECT_TRUE(IsRetryable(stop.Pause(absl::Milliseconds(1))));
  // A call that needs no wait still goes.
  EXPECT_TRUE(stop.Pause(absl::ZeroDuration()).ok());
}

}  // namespace
}  // namespace imbridge::adapters
