#ifndef IMBRIDGE_ADAPTERS_COMMON_POLLED_BATCH_H_
#define IMBRIDGE_ADAPTERS_COMMON_POLLED_BATCH_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/inbound_pipeline.h"

namespace imbridge::adapters {

// The outcomes of one batch of polled inputs (Telegram's getUpdates,
// Bitrix24's Event.get) that a poller submits to an InboundPipeline, so
// that it moves its offset past the inputs that are done and fetches the
// others again. An input is pending until its result comes; then it is done
// (the router has it, or it is invalid and skipped with a warning) or to be
// fetched again (any other result).
//
// Create it with std::make_shared: the callbacks of Done() share it, for
// results that come after the poller stopped waiting. Thread-safe.
class PolledBatch : public std::enable_shared_from_this<PolledBatch> {
 public:
  // `account` and `skipped` (the message, "malformed update skipped") name
  // the warning logged for an invalid input.
  PolledBatch(std::string account, std::string skipped);

  PolledBatch(const PolledBatch&) = delete;
  PolledBatch& operator=(const PolledBatch&) = delete;

  // Adds an input, pending, after the others; returns its index (0, 1, ...).
  size_t Add();

  // The `done` callback of InboundPipeline::Submit() for input `index`.
  InboundPipeline::DoneCallback Done(size_t index);

  // Input `index` is done without a result (Submit() refused it as
  // invalid), or is to be fetched again (Submit() refused it otherwise).
  void Skip(size_t index);
  void FetchAgain(size_t index);

  // Blocks until no input is pending, or until `stopping` (asked every
  // 200 ms) returns true. Returns how many inputs from the first on are
  // done: those the poller's offset may move past.
  size_t AwaitDone(const std::function<bool()>& stopping);

 private:
  enum class State { kPending, kDone, kFetchAgain };

  void Set(size_t index, State state);

  const std::string account_;
  const std::string skipped_;
  mutable absl::Mutex mu_;
  std::vector<State> states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_POLLED_BATCH_H_
