#include "emulators/slow_answers.h"

#include <thread>
#include <utility>

#include "absl/time/clock.h"

namespace imbridge::fakes {

void SlowAnswers::Set(const std::string& method, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  delays_[method] = delay;
}

SlowAnswers::Slot::Slot(absl::Duration delay,
                        std::shared_ptr<std::atomic<int>> pending)
    : delay_(delay), pending_(std::move(pending)) {
  if (pending_ != nullptr) ++*pending_;
}

SlowAnswers::Slot::Slot(Slot&& other) noexcept
    : delay_(other.delay_), pending_(std::move(other.pending_)) {
  other.pending_ = nullptr;
}

SlowAnswers::Slot::~Slot() {
  if (pending_ != nullptr) --*pending_;
}

SlowAnswers::Slot SlowAnswers::Take(const std::string& method) {
  absl::Duration delay = absl::ZeroDuration();
  if (!method.empty()) {
    absl::MutexLock lock(&mu_);
    auto it = delays_.find(method);
    if (it != delays_.end()) delay = it->second;
  }
  return Slot(delay, delay > absl::ZeroDuration() ? pending_ : nullptr);
}

void SlowAnswers::Respond(Slot slot, std::shared_ptr<Responder> responder,
                          int status, std::string content_type,
                          std::string body, HttpHeaderList headers) {
  if (slot.pending_ == nullptr) {
    responder->Respond(status, content_type, std::move(body),
                       std::move(headers));
    return;
  }
  std::thread([slot = std::move(slot), responder = std::move(responder), status,
               content_type = std::move(content_type), body = std::move(body),
               headers = std::move(headers)]() mutable {
    absl::SleepFor(slot.delay_);
    responder->Respond(status, content_type, std::move(body),
                       std::move(headers));
    Slot answered = std::move(slot);  // No longer pending.
  }).detach();
}

}  // namespace imbridge::fakes
