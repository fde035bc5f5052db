#include "adapters/chatlio/format.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace imbridge::adapters::chatlio {
namespace {

// Appends text and spans to one RichText, spans in offset order.
class TextBuilder {
 public:
  void Plain(absl::string_view text) {
    out_.mutable_text()->append(text.data(), text.size());
  }
  void Styled(v1::Span::Kind kind, absl::string_view text,
              absl::string_view url = "") {
    if (text.empty()) return;
    v1::Span* span = out_.add_spans();
    span->set_kind(kind);
    span->set_offset(static_cast<uint32_t>(out_.text().size()));
    span->set_length(static_cast<uint32_t>(text.size()));
    if (!url.empty()) span->set_url(std::string(url));
    Plain(text);
  }
  // "\n<label>: <value>" (the value a link when it looks like one); nothing
  // for an empty value.
  void Field(absl::string_view label, absl::string_view value) {
    value = absl::StripAsciiWhitespace(value);
    if (value.empty()) return;
    Plain(absl::StrCat("\n", label, ": "));
    if (absl::StartsWith(value, "http://") ||
        absl::StartsWith(value, "https://")) {
      Styled(v1::Span::LINK, value, value);
    } else {
      Plain(value);
    }
  }
  void Link(absl::string_view label, absl::string_view text,
            absl::string_view url) {
    if (url.empty()) return;
    Plain(absl::StrCat("\n", label, ": "));
    Styled(v1::Span::LINK, text.empty() ? url : text, url);
  }
  v1::RichText Take() { return std::move(out_); }

 private:
  v1::RichText out_;
};

std::string ChannelLabel(const ChatlioWebhook& webhook) {
  if (!webhook.channel_name.empty()) {
    return absl::StrCat("#", webhook.channel_name);
  }
  return webhook.channel_id;
}

std::string ShortSha256(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), 8));
}

}  // namespace

std::string SlackChannelUrl(absl::string_view workspace_url,
                            absl::string_view channel_id) {
  if (channel_id.empty()) return "";
  workspace_url = absl::StripSuffix(workspace_url, "/");
  if (workspace_url.empty()) {
    return absl::StrCat("https://slack.com/app_redirect?channel=", channel_id);
  }
  return absl::StrCat(workspace_url, "/archives/", channel_id);
}

std::string WebhookEventKey(absl::string_view account,
                            const ChatlioWebhook& webhook) {
  if (webhook.kind == WebhookKind::kOfflineMessage) {
    return absl::StrCat(
        "chatlio:", account, ":offline-message:", webhook.visitor.uuid, ":",
        ShortSha256(absl::StrCat(webhook.sender_email, "\n", webhook.message)));
  }
  return absl::StrCat("chatlio:", account, ":", webhook.conversation_uuid, ":",
                      WebhookKindName(webhook.kind));
}

v1::RichText NoticeText(const ChatlioWebhook& webhook,
                        absl::string_view workspace_url) {
  TextBuilder b;
  const std::string visitor = VisitorDisplayName(webhook);
  absl::string_view message_label = "Message";
  switch (webhook.kind) {
    case WebhookKind::kNewConversation:
      b.Styled(v1::Span::BOLD,
               absl::StrCat("New website conversation with ", visitor));
      message_label = "First message";
      break;
    case WebhookKind::kOfflineMessage:
      b.Styled(v1::Span::BOLD, absl::StrCat("Offline message from ", visitor));
      break;
    case WebhookKind::kFeedback:
      b.Styled(v1::Span::BOLD, absl::StrCat("Feedback from ", visitor));
      message_label = "Feedback";
      break;
    case WebhookKind::kNotAnswered:
      b.Styled(v1::Span::BOLD,
               absl::StrCat(visitor, " was not answered in time"));
      break;
    default:
      b.Styled(v1::Span::BOLD, absl::StrCat("Chatlio: ", visitor));
      break;
  }
  b.Field("Location", webhook.visitor.location);
  b.Field("Page", webhook.visitor.current_page);
  b.Field("Referrer", webhook.visitor.referrer);
  b.Field("Email", webhook.sender_email.empty() ? webhook.visitor.email
                                                : webhook.sender_email);
  b.Field(message_label, webhook.message);
  b.Link("Slack channel", ChannelLabel(webhook),
         SlackChannelUrl(workspace_url, webhook.channel_id));
  return b.Take();
}

v1::RichText TranscriptText(const ChatlioWebhook& webhook,
                            absl::string_view workspace_url) {
  TextBuilder b;
  std::string title = absl::StrCat("Transcript of the conversation with ",
                                   VisitorDisplayName(webhook));
  if (!webhook.agent_name.empty()) {
    absl::StrAppend(&title, " (agent ", webhook.agent_name, ")");
  }
  b.Styled(v1::Span::BOLD, title);
  b.Field("Messages", webhook.message_count > 0
                          ? absl::StrCat(webhook.message_count)
                          : std::string());
  b.Field("Email", webhook.visitor.email);
  std::string link = webhook.archive_url;
  if (link.empty()) link = SlackChannelUrl(workspace_url, webhook.channel_id);
  b.Link("Slack channel", ChannelLabel(webhook), link);
  absl::string_view body =
      absl::StripTrailingAsciiWhitespace(webhook.text_body);
  if (!body.empty()) {
    b.Plain("\n\n");
    b.Plain(body);
  }
  return b.Take();
}

std::string TranscriptFileName(const ChatlioWebhook& webhook) {
  std::string base = webhook.channel_name.empty() ? webhook.conversation_uuid
                                                  : webhook.channel_name;
  for (char& c : base) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      c = '-';
    }
  }
  return absl::StrCat("chatlio-transcript-", base, ".html");
}

std::string NoticeMessageId(absl::string_view account,
                            const ChatlioWebhook& webhook) {
  if (webhook.kind == WebhookKind::kOfflineMessage) {
    return std::string(
        absl::StripPrefix(WebhookEventKey(account, webhook),
                          absl::StrCat("chatlio:", account, ":")));
  }
  return absl::StrCat(WebhookKindName(webhook.kind), ":",
                      webhook.conversation_uuid);
}

v1::Event WebhookEvent(absl::string_view account, const ChatlioWebhook& webhook,
                       absl::string_view workspace_url, absl::Time now) {
  v1::Event event;
  event.set_key(WebhookEventKey(account, webhook));
  v1::ChannelRef* channel = event.mutable_channel();
  channel->set_platform("chatlio");
  channel->set_account(std::string(account));
  channel->set_chat_id(kNoticesChat);
  event.set_occurred_at_ms(absl::ToUnixMillis(now));
  v1::MessagePosted* posted = event.mutable_posted();
  posted->set_message_id(NoticeMessageId(account, webhook));
  v1::UserRef* sender = posted->mutable_sender();
  sender->set_platform("chatlio");
  sender->set_id("chatlio");
  sender->set_display_name("Chatlio");
  sender->set_is_bot(true);
  if (webhook.kind == WebhookKind::kTranscript) {
    *posted->mutable_text() = TranscriptText(webhook, workspace_url);
    if (!webhook.html_body.empty()) {
      v1::Attachment* file = posted->add_attachments();
      file->set_name(TranscriptFileName(webhook));
      file->set_mime_type("text/html");
      file->set_size(webhook.html_body.size());
      file->set_kind(v1::Attachment::FILE);
    }
  } else {
    *posted->mutable_text() = NoticeText(webhook, workspace_url);
  }
  return event;
}

}  // namespace imbridge::adapters::chatlio
