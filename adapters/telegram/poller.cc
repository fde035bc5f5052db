#include "adapters/telegram/poller.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"

namespace imbridge::adapters::telegram {

// State shared between the controller and the polling thread, which may
// outlive the Poller while a getUpdates call is in progress.
struct Poller::Shared {
  std::shared_ptr<const BotApi> api;
  Poller::Options options;
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // True while the thread runs the processor (Stop() then waits).
  bool processing ABSL_GUARDED_BY(mu) = false;
  bool exited ABSL_GUARDED_BY(mu) = false;
  absl::Status health ABSL_GUARDED_BY(mu);
};

Poller::Poller(Options options, std::shared_ptr<const BotApi> api,
               Processor processor)
    : options_(std::move(options)),
      processor_(std::move(processor)),
      shared_(std::make_shared<Shared>()) {
  shared_->api = std::move(api);
  shared_->options = options_;
}

Poller::~Poller() { Stop(); }

void Poller::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, shared = shared_] { Run(shared); });
}

void Poller::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stopping = true;
    // The processor touches the adapter: wait for it. A getUpdates call only
    // touches `shared`.
    shared_->mu.Await(absl::Condition(
        +[](Shared* s)
             ABSL_SHARED_LOCKS_REQUIRED(s->mu) { return !s->processing; },
        shared_.get()));
    if (!shared_->exited) {
      thread_.detach();
      return;
    }
  }
  thread_.join();
}

bool Poller::stopping() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->stopping;
}

absl::Status Poller::health() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->health;
}

void Poller::Run(std::shared_ptr<Shared> shared) {
  // 0: no offset yet (the first call after a start without a saved one).
  int64_t offset = shared->options.initial_offset;
  while (true) {
    nlohmann::json params = {
        {"timeout", absl::ToInt64Seconds(shared->options.long_poll)},
        {"limit", shared->options.limit}};
    if (offset != 0) params["offset"] = offset;
    if (!shared->options.allowed_updates.empty()) {
      params["allowed_updates"] = shared->options.allowed_updates;
    }
    absl::StatusOr<nlohmann::json> result =
        shared->api->Call("getUpdates", params, nullptr,
                          shared->options.long_poll + absl::Seconds(15));
    std::vector<nlohmann::json> updates;
    {
      absl::MutexLock lock(&shared->mu);
      if (shared->stopping) {
        shared->exited = true;
        return;  // `this` may be gone.
      }
      shared->health = result.ok() ? absl::OkStatus() : result.status();
      if (result.ok() && result->is_array()) {
        for (nlohmann::json& u : *result) updates.push_back(std::move(u));
      }
      shared->processing = !updates.empty();
    }
    if (!result.ok()) {
      LogWarn("getUpdates failed", {{"account", shared->options.account},
                                    {"error", result.status().message()}});
    }
    size_t done = 0;
    if (!updates.empty()) {
      done = processor_(updates);
      const int64_t before = offset;
      for (size_t i = 0; i < done; ++i) {
        auto id = updates[i].find("update_id");
        if (id != updates[i].end() && id->is_number_integer()) {
          offset = std::max(offset, id->get<int64_t>() + 1);
        }
      }
      if (offset != before && shared->options.save_offset) {
        shared->options.save_offset(offset);
      }
    }
    absl::MutexLock lock(&shared->mu);
    shared->processing = false;
    bool pause = !result.ok() || done < updates.size();
    if (pause) {
      shared->mu.AwaitWithTimeout(absl::Condition(
                                      +[](Shared* s) ABSL_SHARED_LOCKS_REQUIRED(
                                           s->mu) { return s->stopping; },
                                      shared.get()),
                                  shared->options.retry_delay);
    }
    if (shared->stopping) {
      shared->exited = true;
      return;
    }
  }
}

}  // namespace imbridge::adapters::telegram
