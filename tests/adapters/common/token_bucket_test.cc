#include "adapters/common/token_bucket.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(TokenBucketTest, AboutOnePerSecondPerKeyAfterABurst) {
  TokenBucket bucket(1.0, 3);
  absl::Time t = kStart;
  EXPECT_EQ(bucket.Reserve("C1", t), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve("C1", t), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve("C1", t), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve("C1", t), absl::Seconds(1));
  EXPECT_EQ(bucket.Reserve("C1", t), absl::Seconds(2));
  // Another key has its own bucket.
  EXPECT_EQ(bucket.Reserve("C2", t), absl::ZeroDuration());
  // Tokens come back with time.
  EXPECT_EQ(bucket.Reserve("C1", t + absl::Seconds(10)), absl::ZeroDuration());
}

TEST(TokenBucketTest, RefillsButNeverAboveTheBurst) {
  TokenBucket bucket(20, 20);
  absl::Time now = kStart;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(bucket.Reserve("bot", now), absl::ZeroDuration()) << i;
  }
  EXPECT_EQ(bucket.Reserve("bot", now), absl::Milliseconds(50));
  EXPECT_EQ(bucket.Reserve("bot", now), absl::Milliseconds(100));
  now += absl::Seconds(10);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(bucket.Reserve("bot", now), absl::ZeroDuration()) << i;
  }
  EXPECT_EQ(bucket.Reserve("bot", now), absl::Milliseconds(50));
}

TEST(TokenBucketTest, WaitForTakesNothing) {
  TokenBucket bucket(1, 1);
  EXPECT_EQ(bucket.WaitFor("k", kStart), absl::ZeroDuration());
  EXPECT_EQ(bucket.WaitFor("k", kStart), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve("k", kStart), absl::ZeroDuration());
  EXPECT_EQ(bucket.WaitFor("k", kStart), absl::Seconds(1));
  EXPECT_EQ(bucket.WaitFor("k", kStart), absl::Seconds(1));
  EXPECT_EQ(bucket.Reserve("k", kStart), absl::Seconds(1));
  EXPECT_EQ(bucket.WaitFor("k", kStart + absl::Milliseconds(500)),
            absl::Milliseconds(1500));
}

TEST(TokenBucketTest, PauseHoldsEveryCallerOfThatKey) {
  TokenBucket bucket(20, 20);
  bucket.PauseUntil("bot", kStart + absl::Seconds(2));
  EXPECT_EQ(bucket.WaitFor("bot", kStart), absl::Seconds(2));
  EXPECT_EQ(bucket.Reserve("bot", kStart), absl::Seconds(2));
  EXPECT_EQ(bucket.Reserve("bot", kStart),
            absl::Seconds(2) + absl::Milliseconds(50));
  EXPECT_EQ(bucket.Reserve("other", kStart), absl::ZeroDuration());
  // An earlier pause does not shorten the wait.
  bucket.PauseUntil("bot", kStart + absl::Seconds(1));
  EXPECT_EQ(bucket.Reserve("bot", kStart),
            absl::Seconds(2) + absl::Milliseconds(100));
  // After the pause the bucket refills as usual.
  EXPECT_EQ(bucket.Reserve("bot", kStart + absl::Seconds(60)),
            absl::ZeroDuration());
}

TEST(TokenBucketTest, NonPositiveRateIsUnlimitedAndBurstIsAtLeastOne) {
  TokenBucket unlimited(0, 0);
  unlimited.PauseUntil("k", kStart + absl::Hours(1));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(unlimited.Reserve("k", kStart), absl::ZeroDuration());
  }
  EXPECT_EQ(unlimited.WaitFor("k", kStart), absl::ZeroDuration());

  TokenBucket one(2, 0.1);
  EXPECT_EQ(one.Reserve("k", kStart), absl::ZeroDuration());
  EXPECT_EQ(one.Reserve("k", kStart), absl::Milliseconds(500));
}

TEST(TokenBucketTest, ConcurrentCallersGetDistinctSlots) {
  TokenBucket bucket(10, 1);
  absl::Mutex mu;
  std::vector<absl::Duration> waits;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        absl::Duration wait = bucket.Reserve("k", kStart);
        absl::MutexLock lock(&mu);
        waits.push_back(wait);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::sort(waits.begin(), waits.end());
  ASSERT_EQ(waits.size(), 100u);
  for (size_t i = 0; i < waits.size(); ++i) {
    EXPECT_EQ(waits[i], absl::Milliseconds(100) * static_cast<int64_t>(i)) << i;
  }
}

}  // namespace
}  // namespace imbridge::adapters
