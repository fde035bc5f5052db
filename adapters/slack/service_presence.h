#ifndef IMBRIDGE_ADAPTERS_SLACK_SERVICE_PRESENCE_H_
#define IMBRIDGE_ADAPTERS_SLACK_SERVICE_PRESENCE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/slack/slack_api.h"
#include "imbridge/v1/router.pb.h"
#include "imbridge/v1/slack_config.pb.h"

namespace imbridge::adapters::slack {

// The service user's Slack presence, following other people's presence
// (SlackServicePresence in slack_config.proto): "auto" while at least one of
// the people counted is online (presence ONLINE or DND), "away" otherwise.
// So an integration that shows "online" while someone in Slack is active
// (Chatlio) does so exactly while an agent on the other messenger can answer.
//
// The people's presence comes from the router's presence deliveries carried
// by the configured links (the adapter announces "presence" for that). Each
// person's last state is kept in the delivery journal's state values
// ("slack/service_presence/<account>/<platform>/<user id>"), so a restart
// starts from what was known; Start() tells Slack the result again.
// users.setPresence is called (with the user token) only when the wanted
// presence differs from what Slack was last told successfully.
//
// Thread-safe. Start() and Apply() block for the journal and Slack.
class ServicePresence {
 public:
  // `user_api` (the service user's client) and `journal` must outlive it.
  ServicePresence(std::string account, const v1::SlackServicePresence& config,
                  const SlackApi* user_api, DeliveryJournal* journal);

  // Whether presence deliveries carried by `link` count.
  bool Follows(absl::string_view link) const;

  // Reads the people's state from the journal and tells Slack the wanted
  // presence. Returns the error of either (the next Apply() tries again).
  absl::Status Start();

  // A presence delivery of a followed link: records the person's state and
  // tells Slack when the wanted presence changed. A person not among
  // `people` (when that is set) changes nothing. Errors: the journal's or
  // users.setPresence's (retryable ones are retried by the router).
  absl::Status Apply(const v1::Delivery& delivery);

  // "auto" or "away", from what is known now.
  std::string Wanted() const;

 private:
  // Tells Slack `wanted` unless it was already told so.
  absl::Status Tell(const std::string& wanted);
  std::string StateName(absl::string_view person) const;
  // Reads the people's state from the journal, once.
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string account_;
  const std::vector<std::string> links_;
  const absl::flat_hash_set<std::string> people_;
  const SlackApi* const user_api_;
  DeliveryJournal* const journal_;

  mutable absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  // "platform/user_id" of the people online.
  absl::flat_hash_set<std::string> online_ ABSL_GUARDED_BY(mu_);
  // What users.setPresence last set successfully.
  std::optional<std::string> told_ ABSL_GUARDED_BY(mu_);
  // Serialises the calls to Slack, so that they happen in the order of
  // the changes.
  absl::Mutex tell_mu_ ABSL_ACQUIRED_BEFORE(mu_);
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SERVICE_PRESENCE_H_
