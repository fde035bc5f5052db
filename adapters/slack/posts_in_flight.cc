#include "adapters/slack/posts_in_flight.h"

#include <utility>

namespace imbridge::adapters::slack {

PostsInFlight::Scope::Scope(PostsInFlight* posts, std::string channel)
    : posts_(posts), channel_(std::move(channel)) {
  absl::MutexLock lock(&posts_->mu_);
  ++posts_->in_flight_[channel_];
}

PostsInFlight::Scope::~Scope() {
  absl::MutexLock lock(&posts_->mu_);
  auto it = posts_->in_flight_.find(channel_);
  if (it != posts_->in_flight_.end() && --it->second <= 0) {
    posts_->in_flight_.erase(it);
  }
}

bool PostsInFlight::WaitIdle(const std::string& channel,
                             absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this, &channel]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !in_flight_.contains(channel);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

}  // namespace imbridge::adapters::slack
