// The outcomes of a polled batch: which inputs a poller's offset moves past.

#include "adapters/common/polled_batch.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

InboundResult Result(InboundResult::Outcome outcome) {
  InboundResult result;
  result.outcome = outcome;
  return result;
}

bool Never() { return false; }

TEST(PolledBatchTest, TheOffsetMovesPastTheDoneInputsFromTheFirstOn) {
  auto batch = std::make_shared<PolledBatch>("main", "malformed skipped");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(batch->Add(), static_cast<size_t>(i));
  batch->Done(0)(Result(InboundResult::Outcome::kOk));
  // An invalid input is skipped, not fetched again.
  batch->Done(1)(Result(InboundResult::Outcome::kInvalid));
  batch->Skip(2);
  batch->Done(3)(Result(InboundResult::Outcome::kRetry));
  batch->Done(4)(Result(InboundResult::Outcome::kOk));
  EXPECT_EQ(batch->AwaitDone(Never), 3u);
}

TEST(PolledBatchTest, AnInputToFetchAgainStopsTheOffset) {
  auto batch = std::make_shared<PolledBatch>("main", "malformed skipped");
  batch->Add();
  batch->Add();
  batch->FetchAgain(0);
  batch->Done(1)(Result(InboundResult::Outcome::kOk));
  EXPECT_EQ(batch->AwaitDone(Never), 0u);
  auto failed = std::make_shared<PolledBatch>("main", "malformed skipped");
  failed->Add();
  failed->Done(0)(Result(InboundResult::Outcome::kFailed));
  EXPECT_EQ(failed->AwaitDone(Never), 0u);
  auto empty = std::make_shared<PolledBatch>("main", "malformed skipped");
  EXPECT_EQ(empty->AwaitDone(Never), 0u);
}

TEST(PolledBatchTest, AwaitDoneWaitsForTheResultsThatComeLater) {
  auto batch = std::make_shared<PolledBatch>("main", "malformed skipped");
  batch->Add();
  batch->Add();
  InboundPipeline::DoneCallback first = batch->Done(0);
  InboundPipeline::DoneCallback second = batch->Done(1);
  std::thread router([&] {
    absl::SleepFor(absl::Milliseconds(50));
    first(Result(InboundResult::Outcome::kOk));
    absl::SleepFor(absl::Milliseconds(50));
    second(Result(InboundResult::Outcome::kOk));
  });
  EXPECT_EQ(batch->AwaitDone(Never), 2u);
  router.join();
}

TEST(PolledBatchTest, AStopEndsTheWaitAndALateResultIsStillTaken) {
  auto batch = std::make_shared<PolledBatch>("main", "malformed skipped");
  batch->Add();
  InboundPipeline::DoneCallback done = batch->Done(0);
  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(50));
    stopping = true;
  });
  EXPECT_EQ(batch->AwaitDone([&] { return stopping.load(); }), 0u);
  stopper.join();
  // The callback keeps the batch alive after the poller let go of it.
  batch.reset();
  done(Result(InboundResult::Outcome::kOk));
}

}  // namespace
}  // namespace imbridge::adapters
