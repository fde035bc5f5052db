#include "emulators/slow_answers.h"

#include <thread>
#include <utility>

#include "absl/time/clock.h"

namespace imbridge::fakes {

void SlowAnswers::Set(const std::string& method, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  delays_[method] = delay;
}

absl::Duration SlowAnswers::For(const std::string& method) const {
  absl::MutexLock lock(&mu_);
  auto it = delays_.find(method);
  return it == delays_.end() ? absl::ZeroDuration() : it->second;
}

void SlowAnswers::Respond(std::shared_ptr<Responder> responder,
                          absl::Duration delay, int status,
                          std::string content_type, std::string body,
                          HttpHeaderList headers) {
  if (delay <= absl::ZeroDuration()) {
    responder->Respond(status, content_type, std::move(body),
                       std::move(headers));
    return;
  }
  ++*pending_;
  std::thread([responder = std::move(responder), delay, status,
               content_type = std::move(content_type), body = std::move(body),
               headers = std::move(headers), pending = pending_]() mutable {
    absl::SleepFor(delay);
    responder->Respond(status, content_type, std::move(body),
                       std::move(headers));
    --*pending;
  }).detach();
}

}  // namespace imbridge::fakes
