#include "adapters/common/polled_batch.h"

#include <algorithm>
#include <utility>

#include "absl/time/time.h"
#include "common/logging.h"

namespace imbridge::adapters {

PolledBatch::PolledBatch(std::string account, std::string skipped)
    : account_(std::move(account)), skipped_(std::move(skipped)) {}

size_t PolledBatch::Add() {
  absl::MutexLock lock(&mu_);
  states_.push_back(State::kPending);
  return states_.size() - 1;
}

InboundPipeline::DoneCallback PolledBatch::Done(size_t index) {
  return [self = shared_from_this(), index](const InboundResult& result) {
    const bool invalid = result.outcome == InboundResult::Outcome::kInvalid;
    if (invalid) {
      LogWarn(self->skipped_,
              {{"account", self->account_}, {"error", result.detail}});
    }
    self->Set(index,
              result.ok() || invalid ? State::kDone : State::kFetchAgain);
  };
}

void PolledBatch::Skip(size_t index) { Set(index, State::kDone); }

void PolledBatch::FetchAgain(size_t index) { Set(index, State::kFetchAgain); }

void PolledBatch::Set(size_t index, State state) {
  absl::MutexLock lock(&mu_);
  states_[index] = state;
}

size_t PolledBatch::AwaitDone(const std::function<bool()>& stopping) {
  absl::MutexLock lock(&mu_);
  // Runs with mu_ held (here and in Await); clang's analysis cannot name
  // the mutex of the lambda's argument, so the lambda asserts it.
  auto settled = [](PolledBatch* b) {
    b->mu_.AssertHeld();
    return std::none_of(b->states_.begin(), b->states_.end(),
                        [](State s) { return s == State::kPending; });
  };
  while (!settled(this)) {
    mu_.AwaitWithTimeout(absl::Condition(+settled, this),
                         absl::Milliseconds(200));
    if (stopping()) break;
  }
  size_t done = 0;
  while (done < states_.size() && states_[done] == State::kDone) ++done;
  return done;
}

}  // namespace imbridge::adapters
