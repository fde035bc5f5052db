#ifndef IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_
#define IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "adapters/slack/inbound.h"
#include "adapters/slack/slack_api.h"
#include "adapters/slack/user_directory.h"
#include "common/executor.h"
#include "imbridge/v1/router.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// Turns the Events API callbacks of one account, from either transport
// (HTTP or Socket Mode), into published bridge events.
//
// Each callback is deduplicated by `event_id` (Slack's retries, a retry
// arriving while the first attempt still runs, both transports): a callback
// already handled is answered at once without any work; one in progress gets
// the same answer as the first attempt when it finishes; one that failed is
// handled again. The work (users.info look-ups, file downloads into the
// router's blob store) runs on `executor`, never on the caller's thread.
//
// Threading: Handle() and SetIdentity() from any thread; never blocks.
// `done` runs exactly once, on an executor or router-client thread, unless
// the router never acknowledges (the HTTP server then answers 503 by
// itself; Socket Mode does not ack, so Slack resends).
class EventProcessor {
 public:
  // Answer for the transport: 200 when the router acknowledged the event
  // (accepted, duplicate or dropped) or it is deliberately ignored; 500 when
  // the router refused it; 503 when it cannot be handled now (identity not
  // known yet, router queue full, a file download failed for a retryable
  // reason).
  using Done = std::function<void(int http_status)>;
  // Publishes an event; `ack` gets the router's answer.
  using Publisher = std::function<absl::Status(
      v1::Event event, std::function<void(const v1::PublishAck&)> ack)>;
  // Stores file bytes in the router's blob store.
  using BlobStore = std::function<absl::StatusOr<v1::BlobRef>(
      const v1::BlobMeta& meta, absl::string_view data)>;

  struct Options {
    std::string account;
    // Larger files are announced with an unavailable_reason only.
    uint64_t max_file_bytes = 100 << 20;
    // Time for one file download.
    absl::Duration download_timeout = absl::Seconds(30);
    // Handled event ids remembered for deduplication.
    size_t dedupe_capacity = 20000;
    // Called after the router accepted a posted message (presence tracking).
    std::function<void(const v1::Event&)> on_posted;
  };

  // All pointers must outlive the processor.
  EventProcessor(Options options, const SlackApi* api, UserDirectory* users,
                 Executor* executor, Publisher publish, BlobStore blobs);

  // The bot's identity; callbacks are answered 503 until it is known.
  void SetIdentity(BotIdentity identity);
  std::optional<BotIdentity> identity() const;

  // Handles one `event_callback` envelope.
  void Handle(nlohmann::json callback, Done done);

  // Callbacks answered from the dedupe memory (for tests and metrics).
  uint64_t deduplicated() const;

 private:
  struct Pending {
    bool done = false;
    std::vector<Done> waiters;
  };

  void Process(const nlohmann::json& callback, const std::string& event_id);
  // Downloads the files of a posted event into the blob store. Fails only
  // for retryable reasons; permanent ones become unavailable_reason.
  absl::Status CopyFiles(const std::vector<std::string>& urls,
                         v1::MessagePosted* posted);
  void Finish(const std::string& event_id, int http_status);

  const Options options_;
  const SlackApi* api_;
  UserDirectory* users_;
  Executor* executor_;
  Publisher publish_;
  BlobStore blobs_;

  mutable absl::Mutex mu_;
  std::optional<BotIdentity> identity_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Pending> seen_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> done_order_ ABSL_GUARDED_BY(mu_);
  uint64_t deduplicated_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_EVENT_PROCESSOR_H_
