// Fuzzes the Slack Events API inbound path: the request body as JSON, its
// `type` read as the adapter dispatches on it (EventsRequestType), then what
// the adapter does with an event_callback (fuzz/slack_event_callback.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "adapters/slack/inbound.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/slack_event_callback.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace slack = imbridge::adapters::slack;
  using imbridge::fuzz::Check;
  nlohmann::json body = nlohmann::json::parse(data, data + size, nullptr,
                                              /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  // The adapter answers 400 exactly for a body that is not an object or
  // whose type is not a string; every other body is dispatched.
  absl::StatusOr<std::string> type = slack::EventsRequestType(body);
  const bool dispatchable =
      body.is_object() && (!body.contains("type") || body["type"].is_string());
  Check(type.ok() == dispatchable,
        "EventsRequestType refuses exactly a non-object or a non-string type");
  Check(type.ok() || absl::IsInvalidArgument(type.status()),
        "EventsRequestType refuses with kInvalidArgument");
  if (!body.is_object()) return 0;
  // Every object, not only an event_callback: the conversion must hold up
  // to any body a signed request can carry.
  slack::FuzzEventCallback(body);
  return 0;
}
