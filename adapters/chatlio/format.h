#ifndef IMBRIDGE_ADAPTERS_CHATLIO_FORMAT_H_
#define IMBRIDGE_ADAPTERS_CHATLIO_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/chatlio/payload.h"
#include "imbridge/v1/events.pb.h"

// How Chatlio's webhooks look in the bridge (docs/chatlio.md): each one is a
// message posted by "Chatlio" in the account's notices channel
// {chatlio, <account>, "notices"}, which the operator links to the chat that
// should see them. Pure functions; thread-safe.

namespace imbridge::adapters::chatlio {

// The chat id of an account's notices channel.
inline constexpr char kNoticesChat[] = "notices";

// The web link of a visitor's Slack channel: "<workspace_url>/archives/<id>"
// when the workspace's URL is configured, else Slack's
// "https://slack.com/app_redirect?channel=<id>". "" without a channel id.
std::string SlackChannelUrl(absl::string_view workspace_url,
                            absl::string_view channel_id);

// The bridge event's key, which the router deduplicates durably:
// "chatlio:<account>:<conversationUUID>:<kind>"; for an offline message
// (which has no conversation) "chatlio:<account>:offline-message:<visitor
// UUID>:<SHA-256 of the message, 16 hex digits>".
std::string WebhookEventKey(absl::string_view account,
                            const ChatlioWebhook& webhook);

// The notice text of a new conversation, offline message, feedback or
// unanswered visitor: a bold title naming the visitor, then one line each
// for what is known of location, current page, referrer, email, the message
// ("First message", "Message", "Feedback") and the link to the visitor's
// Slack channel.
v1::RichText NoticeText(const ChatlioWebhook& webhook,
                        absl::string_view workspace_url);

// A transcript's text: a bold title (visitor, agent, number of messages),
// the Slack channel's archive link, then textBody as it is.
v1::RichText TranscriptText(const ChatlioWebhook& webhook,
                            absl::string_view workspace_url);

// The transcript's HTML file name: "chatlio-transcript-<channel name or
// conversation>.html", with characters other than [A-Za-z0-9._-] as '-'.
std::string TranscriptFileName(const ChatlioWebhook& webhook);

// The notice's message id in the notices channel: "<kind>:<conversationUUID>"
// (the key's tail after "chatlio:<account>:" for an offline message).
std::string NoticeMessageId(absl::string_view account,
                            const ChatlioWebhook& webhook);

// The line a new-conversation notice ends with when the visitor gets a
// thread in the support chat (docs/chatlio.md, "A thread per visitor").
inline constexpr char kAnswerInThreadLine[] =
    "\nAnswer in this message's thread: the visitor sees only what is said "
    "there.";

// The bridge event of `webhook` for `account`: MessagePosted in the notices
// channel with key WebhookEventKey, message id "<kind>:<conversationUUID>"
// (the key's tail for an offline message), sender the bot "Chatlio", text
// NoticeText or TranscriptText. A transcript with an htmlBody carries one
// attachment (TranscriptFileName, text/html, its size) for the inbound
// pipeline to fill with the bytes.
v1::Event WebhookEvent(absl::string_view account, const ChatlioWebhook& webhook,
                       absl::string_view workspace_url, absl::Time now);

}  // namespace imbridge::adapters::chatlio

#endif  // IMBRIDGE_ADAPTERS_CHATLIO_FORMAT_H_
