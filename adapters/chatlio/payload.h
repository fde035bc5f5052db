#ifndef IMBRIDGE_ADAPTERS_CHATLIO_PAYLOAD_H_
#define IMBRIDGE_ADAPTERS_CHATLIO_PAYLOAD_H_

#include <string>

#include "absl/strings/string_view.h"

// Chatlio's webhook payloads (../shared/platforms.md §5, docs/chatlio.md):
// what the adapter reads of them. Chatlio does not name the type of a
// webhook in its body; the type is the one its URL names (each webhook type
// of a widget has its own URL in Chatlio's dashboard, ending in the type's
// path segment), else it is told by the body's shape.

namespace imbridge::adapters::chatlio {

// The webhook types of Chatlio's dashboard ("Webhooks and post-chat
// actions").
enum class WebhookKind {
  kUnknown,
  kNewConversation,  // "new conversation started"
  kOfflineMessage,   // "offline message"
  kFeedback,         // "visitor feedback"
  kNotAnswered,      // "visitor not answered in time"
  kTranscript,       // the transcript export at the end of a chat
};

// The type's path segment and name in event keys: "new-conversation",
// "offline-message", "feedback", "not-answered", "transcript" ("unknown").
absl::string_view WebhookKindName(WebhookKind kind);

// The kind named by a path segment (WebhookKindName), kUnknown if none.
WebhookKind WebhookKindFromName(absl::string_view name);

// The visitor as Chatlio describes it (`visitor{...}` of an event).
struct ChatlioVisitor {
  std::string uuid;          // UUID
  std::string name;          // name ("" unless the site identified them)
  std::string handle;        // handle, the channel-like name Chatlio made
  std::string email;         // email
  std::string location;      // location ("Costa Mesa, California, ...")
  std::string current_page;  // currentPage
  std::string referrer;      // referrerURL
};

// One webhook as the adapter understood it. Fields a payload lacks (or
// gives with another type than a string) are empty.
struct ChatlioWebhook {
  WebhookKind kind = WebhookKind::kUnknown;
  std::string conversation_uuid;  // conversationUUID
  // The visitor's Slack channel: slackChannelId / slackChannelName of an
  // event, channelId / channelName of a transcript.
  std::string channel_id;
  std::string channel_name;
  // An event's `message` (the visitor's first message, the offline message
  // or the feedback).
  std::string message;
  ChatlioVisitor visitor;
  // An offline message's own name and email (what the visitor typed).
  std::string sender_name;
  std::string sender_email;
  // A transcript's fields.
  std::string visitor_name;  // visitorName
  std::string agent_name;    // agentName
  std::string archive_url;   // archiveUrl
  std::string text_body;     // textBody
  std::string html_body;     // htmlBody
  std::string started_at;    // startedAt
  std::string ended_at;      // endedAt
  int message_count = 0;     // messages[].size()
};

// The outcome of parsing one webhook body.
enum class ParseOutcome {
  kParsed,     // *out holds a known webhook
  kMalformed,  // not a JSON object: 400
  kUnknown,    // a JSON object of no known shape: 200, counted
};

// Parses `body`. `named` is the type the URL named (kUnknown when it named
// none). The shape decides first: a body with textBody, htmlBody or
// messages[] and a conversationUUID is a transcript; one with emailPretty,
// or with a message but neither conversationUUID nor a visitor's Slack
// channel, is an offline message; one with a conversationUUID and a visitor
// is an event, of the type `named` (new conversation, feedback, not
// answered), a new conversation when the URL named none. A URL that names
// a type the shape contradicts (transcript for an event) makes it kUnknown.
// Pure; thread-safe; never throws.
ParseOutcome ParseChatlioWebhook(absl::string_view body, WebhookKind named,
                                 ChatlioWebhook* out, std::string* error);

// The visitor's name for people: visitor.name, else the offline message's
// name, else visitorName, else visitor.handle, else "a website visitor".
std::string VisitorDisplayName(const ChatlioWebhook& webhook);

}  // namespace imbridge::adapters::chatlio

#endif  // IMBRIDGE_ADAPTERS_CHATLIO_PAYLOAD_H_
