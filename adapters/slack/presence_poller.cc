#include "adapters/slack/presence_poller.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {

PresencePoller::PresencePoller(Options options, const SlackApi* api,
                               Publisher publish)
    : options_(std::move(options)),
      api_(api),
      publish_(std::move(publish)),
      people_(options_.max_users) {}

PresencePoller::~PresencePoller() { Stop(); }

void PresencePoller::Track(const v1::UserRef& user) {
  if (user.id().empty() || user.is_bot()) return;
  absl::MutexLock lock(&mu_);
  if (Person* known = people_.Find(user.id())) {
    known->user = user;
    return;
  }
  Person p;
  p.user = user;
  p.next_poll = absl::Now();
  people_.Put(user.id(), std::move(p));
}

void PresencePoller::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void PresencePoller::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PresencePoller::Run() {
  const absl::Duration gap =
      absl::Seconds(60) / std::max(1, options_.calls_per_minute);
  absl::Time next_call = absl::Now();
  while (true) {
    // Wait for the pacing gap, then for the person due first.
    std::string user_id;
    v1::UserRef user;
    v1::Presence last = v1::PRESENCE_UNSPECIFIED;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]()
                          ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      absl::Time now = absl::Now();
      if (next_call > now &&
          mu_.AwaitWithTimeout(absl::Condition(&stopping), next_call - now)) {
        return;
      }
      if (stopping_) return;
      auto due = people_.end();
      for (auto i = people_.begin(); i != people_.end(); ++i) {
        if (due == people_.end() ||
            i->second.next_poll < due->second.next_poll) {
          due = i;
        }
      }
      now = absl::Now();
      if (due == people_.end() || due->second.next_poll > now) {
        absl::Duration wait = due == people_.end()
                                  ? absl::Milliseconds(200)
                                  : std::min(due->second.next_poll - now,
                                             absl::Milliseconds(200));
        mu_.AwaitWithTimeout(absl::Condition(&stopping), wait);
        continue;
      }
      due->second.next_poll = now + options_.interval;
      user_id = due->first;
      user = due->second.user;
      last = due->second.last;
    }
    next_call = absl::Now() + gap;
    auto answer = api_->GetPresence(user_id);
    if (!answer.ok()) {
      LogWarn("users.getPresence failed",
              {{"account", options_.account},
               {"user", user_id},
               {"error", answer.status().message()}});
      if (absl::Duration after = RetryAfter(answer.status());
          after > absl::ZeroDuration()) {
        next_call = absl::Now() + after;
      }
      continue;
    }
    v1::Presence presence = *answer == "active" ? v1::ONLINE : v1::AWAY;
    if (presence == last) continue;
    v1::Event event;
    int64_t now_ms = absl::ToUnixMillis(absl::Now());
    event.set_key(absl::StrCat("slack:", options_.account,
                               ":presence:", user_id, ":", now_ms));
    event.set_occurred_at_ms(now_ms);
    event.mutable_channel()->set_platform("slack");
    event.mutable_channel()->set_account(options_.account);
    *event.mutable_presence()->mutable_user() = user;
    event.mutable_presence()->set_presence(presence);
    absl::Status published = publish_(std::move(event));
    if (!published.ok()) {
      LogWarn("presence publish failed", {{"error", published.message()}});
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (Person* person = people_.Peek(user_id)) person->last = presence;
  }
}

}  // namespace imbridge::adapters::slack
