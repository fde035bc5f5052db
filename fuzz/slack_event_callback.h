#ifndef IMBRIDGE_FUZZ_SLACK_EVENT_CALLBACK_H_
#define IMBRIDGE_FUZZ_SLACK_EVENT_CALLBACK_H_

#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// What the Slack adapter does with an event_callback from either transport
// (Events API or Socket Mode) before any I/O: routes it as the inbound
// pipeline does (EventProcessor::Route) and converts it
// (ConvertEventCallback), checking the result's invariants. For the fuzz
// targets; aborts on a violated invariant.
void FuzzEventCallback(const nlohmann::json& callback);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_FUZZ_SLACK_EVENT_CALLBACK_H_
