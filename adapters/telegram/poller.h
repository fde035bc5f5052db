#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_POLLER_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_POLLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "adapters/telegram/telegram_api.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {

// Long-polls getUpdates for one bot and hands each batch of updates to a
// processor, which returns how many of them (from the front) the router has
// acknowledged. The next getUpdates asks for updates after the last
// acknowledged one (`offset`), which is also how Telegram learns that they
// may be forgotten; unacknowledged updates are fetched again after
// `retry_delay`. The offset is handed to `save_offset` each time it moves
// and a start resumes from `initial_offset`, so that a restart does not
// fetch (and download the files of) updates the router already has. With
// no initial offset Telegram hands out every unconfirmed update again (the
// router drops the repeats).
//
// Threading: Start() and Stop() from one controlling thread; the processor
// runs on the poller's own thread and may block, but should return soon
// after `stopping()` becomes true.
class Poller {
 public:
  struct Options {
    std::string account;
    absl::Duration long_poll = absl::Seconds(30);
    int limit = 100;
    std::vector<std::string> allowed_updates;
    absl::Duration retry_delay = absl::Seconds(1);
    // The offset of the first getUpdates (0: none).
    int64_t initial_offset = 0;
    // Called on the poller's thread, while Stop() waits for it, each time
    // the offset moves (may be empty). It may block briefly (a journal
    // write).
    std::function<void(int64_t offset)> save_offset;
  };
  // Processes `updates` in order; returns how many from the front are done.
  using Processor =
      std::function<size_t(const std::vector<nlohmann::json>& updates)>;

  // The poller and its thread share `api` (and the HttpClient it holds):
  // a thread left to finish a getUpdates after Stop() keeps them alive.
  Poller(Options options, std::shared_ptr<const BotApi> api,
         Processor processor);
  ~Poller();  // Calls Stop().

  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  void Start();

  // Stops polling. Waits for the processor to return; a getUpdates call in
  // progress is not waited for (up to the long-poll timeout): its thread is
  // left to finish on its own and then exits without touching anything but
  // the shared BotApi.
  void Stop();

  // True once Stop() was called; for the processor.
  bool stopping() const;

  // OK while the last getUpdates succeeded (or none was made yet).
  absl::Status health() const;

 private:
  struct Shared;
  void Run(std::shared_ptr<Shared> shared);

  const Options options_;
  Processor processor_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_POLLER_H_
