#ifndef IMBRIDGE_ADAPTERS_SLACK_USER_CHANNELS_H_
#define IMBRIDGE_ADAPTERS_SLACK_USER_CHANNELS_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/bounded_cache.h"
#include "adapters/slack/slack_api.h"
#include "imbridge/v1/slack_config.pb.h"

namespace imbridge::adapters::slack {

// Which channels of an account its deliveries are posted in as the service
// user (the user token) rather than as the bot: the SlackUserChannels rule
// of slack_config.proto. A channel is selected when its id is listed, when
// it was created by one of `created_by`, or when its name starts with one
// of `name_prefixes`.
//
// The creator and name come from conversations.info (asked once per
// channel with the bot's client, then remembered for the life of the
// process, at most `cache_size` channels) or from a channel_created event
// (Learn()). A channel renamed later keeps the decision made for it.
//
// Thread-safe. PostsAsUser() may block for conversations.info.
class UserChannels {
 public:
  // `api` answers conversations.info and must outlive the object; it is
  // not called when the rule has no created_by and no name_prefixes.
  UserChannels(const v1::SlackUserChannels& rule, const SlackApi* api,
               size_t cache_size = 10000);

  // Whether the rule can select any channel at all.
  bool empty() const;

  // The rule alone: whether `channel` is selected.
  bool Selects(const SlackChannel& channel) const;

  // Whether deliveries to `channel_id` go out with the user token. A listed
  // id answers at once; otherwise, when the rule needs the channel's
  // creator or name, conversations.info is asked (its errors are returned
  // as they are: retryable ones are retried by the router).
  absl::StatusOr<bool> PostsAsUser(absl::string_view channel_id);

  // Remembers the decision for a channel described by a channel_created
  // event (so that no conversations.info is needed). Returns it.
  bool Learn(const SlackChannel& channel);

 private:
  const v1::SlackUserChannels rule_;
  const absl::flat_hash_set<std::string> listed_;
  const SlackApi* const api_;
  absl::Mutex mu_;
  BoundedCache<std::string, bool> decided_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_USER_CHANNELS_H_
