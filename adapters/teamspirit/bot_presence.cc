#include "adapters/teamspirit/bot_presence.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::teamspirit {

BotPresence::BotPresence(Options options, TeamSpiritApi* api,
                         std::function<bool()> attached)
    : options_(std::move(options)), api_(api), attached_(std::move(attached)) {}

BotPresence::~BotPresence() { StopThread(); }

void BotPresence::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopped_) return;
  thread_ = std::thread([this] { Loop(); });
}

void BotPresence::StopThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void BotPresence::Stop() {
  StopThread();
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  absl::MutexLock call(&call_mu_);
  absl::Status s = api_->SetPresence({"offline", options_.offline_text});
  if (!s.ok()) {
    LogWarn("could not set the bot offline", {{"error", s.message()}});
    return;
  }
  absl::MutexLock lock(&mu_);
  published_ = "offline";
}

void BotPresence::RecordDelivery(const absl::Status& outcome, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (outcome.ok()) {
    consecutive_failures_ = 0;
    return;
  }
  ++consecutive_failures_;
  if (!IsRetryable(outcome)) last_dead_letter_ = now;
}

std::string BotPresence::published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

void BotPresence::Tick(absl::Time now) {
  bool attached = attached_();
  TsPresence wanted;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    if (attached) {
      ever_attached_ = true;
      last_attached_ = now;
    }
    if (!ever_attached_) return;
    std::string reason;
    if (!attached && now - last_attached_ > options_.degraded_after_detached) {
      reason = "router connection lost";
    } else if (options_.degraded_after_failures > 0 &&
               consecutive_failures_ >= options_.degraded_after_failures) {
      reason = "deliveries are failing";
    } else if (now - last_dead_letter_ < options_.dead_letter_window) {
      reason = "deliveries are being dead-lettered";
    }
    if (reason.empty()) {
      wanted = {"online", options_.online_text};
    } else {
      wanted = {"away", absl::StrCat(options_.away_text, ": ", reason)};
    }
    if (wanted.status == published_ && wanted.text == published_text_) return;
  }
  absl::MutexLock call(&call_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
  }
  absl::Status s = api_->SetPresence(wanted);
  if (!s.ok()) {
    LogWarn("could not set the bot's presence",
            {{"status", wanted.status}, {"error", s.message()}});
    return;
  }
  LogInfo("bot presence set",
          {{"status", wanted.status}, {"text", wanted.text}});
  absl::MutexLock lock(&mu_);
  published_ = wanted.status;
  published_text_ = wanted.text;
}

void BotPresence::Loop() {
  while (true) {
    Tick(absl::Now());
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick);
    if (stopping_) return;
  }
}

}  // namespace imbridge::adapters::teamspirit
