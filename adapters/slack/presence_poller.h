#ifndef IMBRIDGE_ADAPTERS_SLACK_PRESENCE_POLLER_H_
#define IMBRIDGE_ADAPTERS_SLACK_PRESENCE_POLLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/bounded_cache.h"
#include "adapters/slack/slack_api.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::adapters::slack {

// Mirrors Slack presence by polling (platforms.md 1.8: presence_change is
// RTM-only, so there is no push on the Events API).
//
// The people polled are the ones who posted in linked channels (Track()),
// at most `max_users` (the least recently seen are forgotten). Each person
// is asked with users.getPresence about every `interval`; the calls are
// spread so that there are never more than `calls_per_minute` (Tier 3
// allows about 50 per minute), so a long list makes the interval longer.
// A presence event (ONLINE for "active", AWAY for "away") is published for
// the account (chat_id empty) only when the answer differs from the last
// one published for that person (the first answer counts as a change).
// Key: "slack:<account>:presence:<user>:<unix ms of the poll>".
//
// Threading: Track() from any thread, never blocks; Start()/Stop() from one
// controlling thread; the polling runs on its own thread.
class PresencePoller {
 public:
  using Publisher = std::function<absl::Status(v1::Event event)>;

  struct Options {
    std::string account;
    absl::Duration interval = absl::Seconds(60);
    int calls_per_minute = 40;
    size_t max_users = 200;
  };

  PresencePoller(Options options, const SlackApi* api, Publisher publish);
  ~PresencePoller();  // Calls Stop().

  // Adds (or refreshes) a person to poll.
  void Track(const v1::UserRef& user);

  void Start();
  void Stop();

 private:
  struct Person {
    v1::UserRef user;
    absl::Time next_poll;
    v1::Presence last = v1::PRESENCE_UNSPECIFIED;
  };

  void Run();

  const Options options_;
  const SlackApi* api_;
  Publisher publish_;
  absl::Mutex mu_;
  // By user id; Track() makes a person the most recently used.
  BoundedCache<std::string, Person> people_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_PRESENCE_POLLER_H_
