#ifndef IMBRIDGE_ADAPTERS_SLACK_POSTS_IN_FLIGHT_H_
#define IMBRIDGE_ADAPTERS_SLACK_POSTS_IN_FLIGHT_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imbridge::adapters::slack {

// The deliveries an account is posting with its service user's token, per
// channel, from before the first Slack call until their native ids are in
// the delivery journal. Slack may report such a post (a message of the
// service user, without bot_id) before chat.postMessage has answered; the
// echo check waits here before it decides that a message of the service
// user that the journal does not know is a person's own.
//
// Thread-safe.
class PostsInFlight {
 public:
  // One delivery in flight to a channel, from construction to destruction.
  class Scope {
   public:
    Scope(PostsInFlight* posts, std::string channel);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PostsInFlight* const posts_;
    const std::string channel_;
  };

  // Blocks until no delivery to `channel` is in flight, or `timeout` has
  // passed; returns false in the latter case.
  bool WaitIdle(const std::string& channel, absl::Duration timeout);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_POSTS_IN_FLIGHT_H_
