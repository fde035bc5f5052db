// Fuzzes the Slack Socket Mode inbound path: one WebSocket text frame read
// as an envelope (ParseSocketModeMessage), and an events_api envelope's
// payload handled like an Events API callback
// (fuzz/slack_event_callback.h).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "adapters/slack/socket_mode.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/slack_event_callback.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using imbridge::adapters::slack::SocketModeMessage;
  SocketModeMessage m = imbridge::adapters::slack::ParseSocketModeMessage(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  imbridge::fuzz::Check(
      m.kind != SocketModeMessage::Kind::kEvent || m.payload.is_object(),
      "an events_api envelope's payload is an object");
  if (m.kind == SocketModeMessage::Kind::kEvent) {
    imbridge::adapters::slack::FuzzEventCallback(m.payload);
  }
  return 0;
}
