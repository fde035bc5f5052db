#include "bridge/store_common.h"

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

absl::StatusOr<std::optional<std::string>> Store::GetRecord(
    absl::string_view kind, absl::string_view name) {
  IMB_ASSIGN_OR_RETURN(auto records, ListRecords(kind));
  for (auto& [n, payload] : records) {
    if (n == name) return std::optional<std::string>(std::move(payload));
  }
  return std::nullopt;
}

int64_t ToStoreMillis(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMillis(t);
}

absl::Time FromStoreMillis(int64_t ms) {
  if (ms == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  if (ms == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  return absl::FromUnixMillis(ms);
}

std::string NewStoreRouterId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

absl::Status ParseDeliveryColumns(absl::string_view target,
                                  std::optional<absl::string_view> payload,
                                  DeliveryRecord& record) {
  if (!record.target.ParseFromArray(target.data(),
                                    static_cast<int>(target.size()))) {
    return absl::InternalError(
        absl::StrCat("store: delivery ", record.id, " has a corrupt target"));
  }
  if (!payload.has_value()) {
    return absl::InternalError(absl::StrCat("store: delivery ", record.id,
                                            " refers to missing event ",
                                            record.event_id));
  }
  auto event = std::make_shared<v1::Event>();
  if (!event->ParseFromArray(payload->data(),
                             static_cast<int>(payload->size()))) {
    return absl::InternalError(absl::StrCat("store: event ", record.event_id,
                                            " of delivery ", record.id,
                                            " is corrupt"));
  }
  record.event = std::move(event);
  return absl::OkStatus();
}

}  // namespace imbridge::bridge
