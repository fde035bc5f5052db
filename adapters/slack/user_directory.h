#ifndef IMBRIDGE_ADAPTERS_SLACK_USER_DIRECTORY_H_
#define IMBRIDGE_ADAPTERS_SLACK_USER_DIRECTORY_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/bounded_cache.h"
#include "adapters/slack/slack_api.h"

namespace imbridge::adapters::slack {

// A cache of users.info answers: the names and avatars of Slack users, for
// senders and `<@U…>` mentions.
//
// Lookup() blocks for one users.info call on a miss (bounded by
// `timeout`); answers are kept for `ttl`, at most `capacity` of them (the
// least recently used go first). A failed look-up returns the id as the name
// and is not cached. Thread-safe; calls for different users run in parallel.
class UserDirectory {
 public:
  UserDirectory(const SlackApi* api, absl::Duration timeout,
                absl::Duration ttl = absl::Hours(1), size_t capacity = 5000);

  SlackUser Lookup(absl::string_view user_id);

  // How many users.info calls were made (for tests and metrics).
  uint64_t calls() const;

 private:
  struct Entry {
    SlackUser user;
    absl::Time expires;
  };

  const SlackApi* api_;
  const absl::Duration timeout_;
  const absl::Duration ttl_;
  mutable absl::Mutex mu_;
  BoundedCache<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_USER_DIRECTORY_H_
