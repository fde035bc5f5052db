// Fuzzes the Slack Events API inbound path: the request body as JSON, then
// what the adapter does with an event_callback (fuzz/slack_event_callback.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/slack_event_callback.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json body = nlohmann::json::parse(data, data + size, nullptr,
                                              /*allow_exceptions=*/false);
  if (!body.is_object()) return 0;
  imbridge::adapters::slack::FuzzEventCallback(body);
  return 0;
}
