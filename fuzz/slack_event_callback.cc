#include "fuzz/slack_event_callback.h"

#include <string>

#include "absl/strings/string_view.h"
#include "adapters/slack/event_processor.h"
#include "adapters/slack/inbound.h"
#include "fuzz/fuzz_support.h"

namespace imbridge::adapters::slack {
namespace {

BotIdentity Self() {
  BotIdentity self;
  self.team_id = "T1";
  self.user_id = "UBOT";
  self.bot_id = "BBOT";
  self.app_id = "AAPP";
  return self;
}

}  // namespace

void FuzzEventCallback(const nlohmann::json& callback) {
  static EventProcessor* processor = [] {
    EventProcessor::Options options;
    options.account = "work";
    // Route() uses neither the API nor the user directory.
    return new EventProcessor(options, nullptr, nullptr);
  }();
  // The adapter routes only callbacks with a non-empty string event_id
  // (SlackAdapter::HandleCallback answers the others itself).
  auto event_id = callback.find("event_id");
  if (event_id != callback.end() && event_id->is_string() &&
      !event_id->get<std::string>().empty()) {
    (void)processor->Route(callback);
  }
  UserLookup lookup = [](absl::string_view id) {
    SlackUser user;
    user.id = std::string(id);
    user.display_name = id == "U1" ? "Ann" : std::string(id);
    return user;
  };
  InboundConversion c = ConvertEventCallback(callback, "work", Self(), lookup);
  if (!c.event.has_value()) return;
  const v1::Event& event = *c.event;
  if (event.has_posted()) {
    fuzz::CheckSpansInRange(event.posted().text(), "ConvertEventCallback");
    fuzz::Check(c.file_urls.size() ==
                    static_cast<size_t>(event.posted().attachments_size()),
                "one file URL per attachment");
  }
  if (event.has_edited()) {
    fuzz::CheckSpansInRange(event.edited().text(), "ConvertEventCallback");
  }
}

}  // namespace imbridge::adapters::slack
