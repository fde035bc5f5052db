#ifndef IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_
#define IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/slack/inbound.h"
#include "adapters/slack/slack_api.h"
#include "adapters/slack/user_directory.h"
#include "imbridge/v1/events.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// Turns the Events API callbacks of one account, from either transport
// (HTTP or Socket Mode), into bridge events: the conversion behind the
// SlackAdapter's inbound connector, which routes each callback to its
// account's processor. One lane per channel (events of a channel are
// published in the order they came, a message waiting for its file
// included), keyed by `event_id` (a retry arriving while the first attempt
// still runs joins it; a later one is published again and the router
// answers DUPLICATE). The work (users.info look-ups, file downloads into the
// router's blob store) runs on the pipeline's workers.
//
// Threading: SetIdentity() from any thread; Route() and Convert() are
// called by the pipeline from several threads.
class EventProcessor {
 public:
  struct Options {
    std::string account;
    // Larger files are announced with an unavailable_reason only.
    uint64_t max_file_bytes = 100 << 20;
    // Time for one file download.
    absl::Duration download_timeout = absl::Seconds(30);
    // Called with each posted message before it is published (presence
    // tracking).
    std::function<void(const v1::Event&)> on_posted;
    // Called with a channel Slack reports created (channel_created), on a
    // pipeline worker; an error makes the event answered for a retry.
    std::function<absl::Status(const SlackChannel&)> on_channel_created;
    // Tells the service user's copies from the service user's own messages
    // (ConvertEventCallback); none when the account has no service user.
    CopyCheck is_copy;
  };

  // All pointers must outlive the processor.
  EventProcessor(Options options, const SlackApi* api, UserDirectory* users);

  // The bot's identity; callbacks are answered 503 until it is known.
  void SetIdentity(BotIdentity identity);
  std::optional<BotIdentity> identity() const;

  // As InboundConnector: the lane is the account's channel, the key the
  // account's event_id.
  absl::StatusOr<InboundRoute> Route(const nlohmann::json& callback);
  // A retryable error while the identity is not known.
  absl::StatusOr<adapters::InboundConversion> Convert(
      const nlohmann::json& callback);

 private:
  const Options options_;
  const SlackApi* api_;
  UserDirectory* users_;

  mutable absl::Mutex mu_;
  std::optional<BotIdentity> identity_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_
