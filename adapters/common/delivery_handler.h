#ifndef IMBRIDGE_ADAPTERS_COMMON_DELIVERY_HANDLER_H_
#define IMBRIDGE_ADAPTERS_COMMON_DELIVERY_HANDLER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters {

// What an adapter implements to render the router's deliveries on its
// messenger (mautrix's "connector" for the outbound side).
//
// Threading: Deliver() is called on the RouterClient's worker threads. Calls
// for one target channel (ChannelRef incl. thread) are made one at a time, in
// the router's order; calls for different targets may run concurrently. It
// may block (it makes HTTP calls), but should honour the messenger's
// rate limits itself.
class DeliveryHandler {
 public:
  virtual ~DeliveryHandler() = default;

  // Renders `delivery` on the messenger. On success returns the native ids
  // of what was created (one message may become several; empty for edits,
  // deletes and presence). On failure returns a Status: retryable failures
  // (rate limits, 5xx, timeouts) use RetryableError(); anything else is
  // treated as permanent and the delivery is dead-lettered.
  virtual absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) = 0;
};

// Calls handler.Deliver(delivery) behind an exception barrier: whatever it
// throws becomes a permanent failure (kInternal) whose message carries the
// exception's, and so do native ids that are not UTF-8 (the router could not
// take them). Such failures are logged. For whoever calls a handler.
absl::StatusOr<std::vector<std::string>> DeliverGuarded(
    DeliveryHandler& handler, const v1::Delivery& delivery);

// A failure worth retrying later; `retry_after` is what the messenger asked
// for (zero if it did not say). Code kUnavailable.
absl::Status RetryableError(absl::string_view message,
                            absl::Duration retry_after = absl::ZeroDuration());

// True for the codes the router retries: kUnavailable, kResourceExhausted,
// kDeadlineExceeded, kAborted.
bool IsRetryable(const absl::Status& status);

// Whether a messenger's HTTP answer is worth retrying: 429 (rate limited),
// 5xx, and 0 (no answer: a transport failure or timeout). Every other status
// is a permanent failure of the request.
bool IsRetryableHttpStatus(int http_status);

// The retry-after a status carries (zero if none).
absl::Duration RetryAfter(const absl::Status& status);

// Returns `status` with a retry-after attached.
absl::Status WithRetryAfter(absl::Status status, absl::Duration retry_after);

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_DELIVERY_HANDLER_H_
