#include "adapters/common/delivery_handler.h"

#include <cstdint>
#include <exception>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/logging.h"
#include "common/utf8.h"

namespace imbridge::adapters {
namespace {

// Status payload that carries a retry-after: decimal milliseconds.
constexpr absl::string_view kRetryAfterUrl = "type.imbridge/retry-after";

}  // namespace

absl::StatusOr<std::vector<std::string>> DeliverGuarded(
    DeliveryHandler& handler, const v1::Delivery& delivery) {
  absl::StatusOr<std::vector<std::string>> outcome;
  try {
    outcome = handler.Deliver(delivery);
  } catch (const std::exception& e) {
    outcome = absl::InternalError(
        absl::StrCat("the adapter failed on this delivery: ", e.what()));
  } catch (...) {
    outcome = absl::InternalError(
        "the adapter failed on this delivery (an unknown exception)");
  }
  if (outcome.ok()) {
    for (const std::string& id : *outcome) {
      if (!IsValidUtf8(id)) {
        outcome = absl::InternalError(
            "the adapter returned a native id that is not valid UTF-8");
        break;
      }
    }
  }
  if (outcome.status().code() == absl::StatusCode::kInternal) {
    LogError("delivery failed in the adapter",
             {{"delivery_id", absl::StrCat(delivery.id())},
              {"idempotency_key", delivery.idempotency_key()},
              {"error", ToValidUtf8(outcome.status().message())}});
  }
  return outcome;
}

absl::Status RetryableError(absl::string_view message,
                            absl::Duration retry_after) {
  return WithRetryAfter(absl::UnavailableError(message), retry_after);
}

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

absl::Duration RetryAfter(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterUrl);
  if (!payload.has_value()) return absl::ZeroDuration();
  int64_t ms = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &ms) || ms <= 0) {
    return absl::ZeroDuration();
  }
  return absl::Milliseconds(ms);
}

absl::Status WithRetryAfter(absl::Status status, absl::Duration retry_after) {
  if (retry_after <= absl::ZeroDuration()) {
    status.ErasePayload(kRetryAfterUrl);
    return status;
  }
  // Rounded up so that a sub-millisecond wait is not lost.
  int64_t ms =
      absl::ToInt64Milliseconds(absl::Ceil(retry_after, absl::Milliseconds(1)));
  status.SetPayload(kRetryAfterUrl, absl::Cord(std::to_string(ms)));
  return status;
}

bool IsRetryableHttpStatus(int http_status) {
  return http_status == 0 || http_status == 429 || http_status >= 500;
}

}  // namespace imbridge::adapters
