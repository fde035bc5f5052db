#include "adapters/chatlio/payload.h"

#include "nlohmann/json.hpp"

namespace imbridge::adapters::chatlio {
namespace {

using nlohmann::json;

// A string field of `object`; "" when absent or of another type.
std::string Str(const json& object, const char* name) {
  if (!object.is_object()) return "";
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool Has(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && !it->is_null();
}

ChatlioVisitor ReadVisitor(const json& v) {
  ChatlioVisitor visitor;
  visitor.uuid = Str(v, "UUID");
  visitor.name = Str(v, "name");
  visitor.handle = Str(v, "handle");
  visitor.email = Str(v, "email");
  visitor.location = Str(v, "location");
  visitor.current_page = Str(v, "currentPage");
  visitor.referrer = Str(v, "referrerURL");
  return visitor;
}

}  // namespace

absl::string_view WebhookKindName(WebhookKind kind) {
  switch (kind) {
    case WebhookKind::kNewConversation:
      return "new-conversation";
    case WebhookKind::kOfflineMessage:
      return "offline-message";
    case WebhookKind::kFeedback:
      return "feedback";
    case WebhookKind::kNotAnswered:
      return "not-answered";
    case WebhookKind::kTranscript:
      return "transcript";
    case WebhookKind::kUnknown:
      break;
  }
  return "unknown";
}

WebhookKind WebhookKindFromName(absl::string_view name) {
  for (WebhookKind kind :
       {WebhookKind::kNewConversation, WebhookKind::kOfflineMessage,
        WebhookKind::kFeedback, WebhookKind::kNotAnswered,
        WebhookKind::kTranscript}) {
    if (WebhookKindName(kind) == name) return kind;
  }
  return WebhookKind::kUnknown;
}

ParseOutcome ParseChatlioWebhook(absl::string_view body, WebhookKind named,
                                 ChatlioWebhook* out, std::string* error) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "the body is not a JSON object";
    return ParseOutcome::kMalformed;
  }
  *out = ChatlioWebhook();
  out->conversation_uuid = Str(j, "conversationUUID");
  out->message = Str(j, "message");
  const json empty = json::object();
  auto visitor = j.find("visitor");
  const bool has_visitor = visitor != j.end() && visitor->is_object();
  out->visitor = ReadVisitor(has_visitor ? *visitor : empty);

  const bool transcript_shape =
      Has(j, "textBody") || Has(j, "htmlBody") ||
      (j.contains("messages") && j["messages"].is_array());
  const bool has_channel = Has(j, "slackChannelId") || Has(j, "channelId");
  WebhookKind kind = WebhookKind::kUnknown;
  if (transcript_shape && !out->conversation_uuid.empty()) {
    kind = WebhookKind::kTranscript;
  } else if (Has(j, "emailPretty") ||
             (!transcript_shape && !out->message.empty() &&
              out->conversation_uuid.empty() && !has_channel)) {
    kind = WebhookKind::kOfflineMessage;
  } else if (!transcript_shape && !out->conversation_uuid.empty() &&
             has_visitor) {
    switch (named) {
      case WebhookKind::kUnknown:
        kind = WebhookKind::kNewConversation;
        break;
      case WebhookKind::kNewConversation:
      case WebhookKind::kFeedback:
      case WebhookKind::kNotAnswered:
        kind = named;
        break;
      default:  // An event body at a transcript's or offline message's URL.
        break;
    }
  }
  // The URL names another type than the body's shape is.
  if (named != WebhookKind::kUnknown && kind != named) {
    kind = WebhookKind::kUnknown;
  }
  if (kind == WebhookKind::kUnknown) {
    *error = "a JSON object of no known Chatlio webhook shape";
    return ParseOutcome::kUnknown;
  }
  out->kind = kind;

  if (kind == WebhookKind::kTranscript) {
    out->channel_id = Str(j, "channelId");
    out->channel_name = Str(j, "channelName");
    out->visitor_name = Str(j, "visitorName");
    out->agent_name = Str(j, "agentName");
    out->archive_url = Str(j, "archiveUrl");
    out->text_body = Str(j, "textBody");
    out->html_body = Str(j, "htmlBody");
    out->started_at = Str(j, "startedAt");
    out->ended_at = Str(j, "endedAt");
    if (j.contains("messages") && j["messages"].is_array()) {
      out->message_count = static_cast<int>(j["messages"].size());
    }
    if (out->visitor.email.empty()) out->visitor.email = Str(j, "visitorEmail");
  } else {
    out->channel_id = Str(j, "slackChannelId");
    if (out->channel_id.empty()) out->channel_id = Str(j, "channelId");
    out->channel_name = Str(j, "slackChannelName");
    if (out->channel_name.empty()) out->channel_name = Str(j, "channelName");
    out->sender_name = Str(j, "name");
    out->sender_email = Str(j, "email");
  }
  return ParseOutcome::kParsed;
}

std::string VisitorDisplayName(const ChatlioWebhook& webhook) {
  for (const std::string* name :
       {&webhook.visitor.name, &webhook.sender_name, &webhook.visitor_name,
        &webhook.visitor.handle}) {
    if (!name->empty()) return *name;
  }
  return "a website visitor";
}

}  // namespace imbridge::adapters::chatlio
