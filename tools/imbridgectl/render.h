#ifndef IMBRIDGE_TOOLS_IMBRIDGECTL_RENDER_H_
#define IMBRIDGE_TOOLS_IMBRIDGECTL_RENDER_H_

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "imbridge/v1/admin.pb.h"

namespace imbridge::ctl {

// How imbridgectl shows the Admin API's answers to a person: aligned tables
// and short "key: value" blocks. `now` turns timestamps into ages. Pure
// functions; thread-safe. Every result ends in '\n'.

std::string RenderLinks(const v1::ListLinksResponse& links);
std::string RenderLink(const v1::LinkInfo& link);
std::string RenderAdapters(const v1::ListAdaptersResponse& adapters,
                           absl::Time now);
std::string RenderQueues(const v1::ListQueuesResponse& queues);
std::string RenderDeadLetters(const v1::ListDeadLettersResponse& dead,
                              absl::Time now);
std::string RenderWebhooks(const v1::ListWebhooksResponse& webhooks);
std::string RenderStats(const v1::Stats& stats, absl::Time now);
// The new webhook with its key or secret and the warning that it is shown
// only this once.
std::string RenderCreatedWebhook(const v1::CreateWebhookResponse& created);

// The path the webhook adapter serves a webhook on: "/hooks/<id>".
std::string WebhookPath(const std::string& id);

// `message` in protobuf's JSON mapping (lowerCamelCase names, 64-bit
// integers as strings, enums by name, fields with default values included),
// indented, ending in '\n'.
std::string ToJson(const google::protobuf::Message& message);

// The webhook create answer as JSON: ToJson(created) plus "urlPath".
std::string CreatedWebhookJson(const v1::CreateWebhookResponse& created);

// A duration for people: "0s", "42s", "5m12s", "3h04m", "2d03h".
std::string FormatAge(absl::Duration age);

// Unix milliseconds as "2026-01-02 10:00:00 UTC"; "-" for 0.
std::string FormatTimeMs(int64_t unix_ms);

}  // namespace imbridge::ctl

#endif  // IMBRIDGE_TOOLS_IMBRIDGECTL_RENDER_H_
