#ifndef IMBRIDGE_ADAPTERS_TEAMSPIRIT_BOT_PRESENCE_H_
#define IMBRIDGE_ADAPTERS_TEAMSPIRIT_BOT_PRESENCE_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/teamspirit/teamspirit_api.h"

namespace imbridge::adapters::teamspirit {

// Shows the bridge's health as the bot's own TeamSpirit presence:
//   "online"  attached to the router and deliveries succeed;
//   "away"    degraded: the router connection has been lost for longer than
//             `degraded_after_detached`, or the last
//             `degraded_after_failures` deliveries all failed (they are
//             being retried), or a delivery failed permanently (the router
//             dead-letters it, so the dead-letter queue is growing) within
//             the last `dead_letter_window`; the reason is in the status
//             text;
//   "offline" after Stop() (a clean shutdown).
// Nothing is set before the first attach. A presence that could not be set
// is tried again at the next tick.
//
// Thread-safe. Start() and Stop() from one controlling thread; Stop() blocks
// for one REST call at most.
class BotPresence {
 public:
  struct Options {
    int degraded_after_failures = 5;
    absl::Duration degraded_after_detached = absl::Seconds(30);
    absl::Duration dead_letter_window = absl::Minutes(10);
    std::string online_text = "Relaying messages";
    std::string away_text = "Bridge degraded";
    std::string offline_text = "Bridge stopped";
    // How often the state is evaluated.
    absl::Duration tick = absl::Seconds(1);
  };

  // `api` must outlive this. `attached` reports whether the router
  // connection is up; it must be quick.
  BotPresence(Options options, TeamSpiritApi* api,
              std::function<bool()> attached);
  ~BotPresence();  // Stops the thread (without setting "offline").

  BotPresence(const BotPresence&) = delete;
  BotPresence& operator=(const BotPresence&) = delete;

  void Start();

  // Stops evaluating and sets "offline". Idempotent.
  void Stop();

  // Records the outcome of one delivery (a failure that is not retryable is
  // dead-lettered by the router).
  void RecordDelivery(const absl::Status& outcome,
                      absl::Time now = absl::Now());

  // Evaluates the state once and sets the presence if it changed. Called by
  // the thread every tick; exposed for tests.
  void Tick(absl::Time now);

  // The status last set successfully ("", "online", "away", "offline").
  std::string published() const;

 private:
  void Loop();
  void StopThread();

  const Options options_;
  TeamSpiritApi* const api_;
  const std::function<bool()> attached_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool ever_attached_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_attached_ ABSL_GUARDED_BY(mu_);
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_dead_letter_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string published_ ABSL_GUARDED_BY(mu_);
  std::string published_text_ ABSL_GUARDED_BY(mu_);
  // Serializes presence calls so that "offline" is the last one.
  absl::Mutex call_mu_;
  std::thread thread_;
};

}  // namespace imbridge::adapters::teamspirit

#endif  // IMBRIDGE_ADAPTERS_TEAMSPIRIT_BOT_PRESENCE_H_
