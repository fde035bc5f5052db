#include "adapters/webhook/outbound.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/common/presence_names.h"
#include "adapters/common/signature.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::webhook {
namespace {

HttpClient::Options ClientOptions(const OutgoingWebhooks::Options& options) {
  HttpClient::Options client = MessengerClientOptions("webhook");
  client.timeout = options.timeout;
  client.connect_timeout = std::min(options.timeout, absl::Seconds(10));
  client.ca_file = options.ca_file;
  client.max_response_bytes = 1 << 20;
  client.user_agent = "imbridge-webhook/0.1";
  return client;
}

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

std::string Rfc3339(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

const char* AttachmentKind(v1::Attachment::Kind kind) {
  switch (kind) {
    case v1::Attachment::IMAGE:
      return "image";
    case v1::Attachment::VIDEO:
      return "video";
    case v1::Attachment::AUDIO:
      return "audio";
    case v1::Attachment::VOICE:
      return "voice";
    case v1::Attachment::ANIMATION:
      return "animation";
    case v1::Attachment::STICKER:
      return "sticker";
    default:
      return "file";
  }
}

// The presence as the outgoing JSON names it ("unknown" when unspecified).
std::string PresenceStatus(v1::Presence presence) {
  absl::string_view name = PresenceName(presence);
  return name.empty() ? "unknown" : std::string(name);
}

// The message id a receiver may return: {"message_id": "..."} or a number.
std::string MessageIdFromAnswer(const std::string& body) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return "";
  auto it = json.find("message_id");
  if (it == json.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  return "";
}

}  // namespace

std::string OutgoingType(const v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kPosted:
      return "message.posted";
    case v1::Event::kEdited:
      return "message.edited";
    case v1::Event::kDeleted:
      return "message.deleted";
    case v1::Event::kPresence:
      return "presence.changed";
    case v1::Event::kMembership:
      return event.membership().joined() ? "member.joined" : "member.left";
    default:
      return "";
  }
}

std::string OutgoingBody(const v1::Delivery& delivery,
                         const std::string& webhook_id) {
  const v1::Event& event = delivery.event();
  nlohmann::json body;
  body["type"] = OutgoingType(event);
  body["webhook_id"] = webhook_id;
  body["link"] = delivery.link();
  body["event_key"] = event.key();
  body["delivery_id"] = delivery.id();
  body["idempotency_key"] = delivery.idempotency_key();
  body["attempt"] = delivery.attempt();
  body["origin"] = {{"platform", event.channel().platform()},
                    {"account", event.channel().account()},
                    {"chat_id", event.channel().chat_id()},
                    {"thread_id", NullIfEmpty(event.channel().thread_id())}};

  const v1::UserRef* user = nullptr;
  const v1::RichText* text = nullptr;
  std::string message_id;
  switch (event.kind_case()) {
    case v1::Event::kPosted:
      user = &event.posted().sender();
      text = &event.posted().text();
      message_id = event.posted().message_id();
      break;
    case v1::Event::kEdited:
      user = &event.edited().editor();
      text = &event.edited().text();
      message_id = event.edited().message_id();
      break;
    case v1::Event::kDeleted:
      user = &event.deleted().deleted_by();
      message_id = event.deleted().message_id();
      break;
    case v1::Event::kPresence:
      user = &event.presence().user();
      body["presence"] = {
          {"status", PresenceStatus(event.presence().presence())},
          {"text", event.presence().status_text()}};
      break;
    case v1::Event::kMembership:
      user = &event.membership().user();
      break;
    default:
      break;
  }
  nlohmann::json sender = nlohmann::json::object();
  if (user != nullptr) {
    std::string name = delivery.sender_name().empty() ? user->display_name()
                                                      : delivery.sender_name();
    sender = {{"name", name},
              {"display_name", user->display_name()},
              {"platform", user->platform().empty() ? event.channel().platform()
                                                    : user->platform()},
              {"id", user->id()},
              {"avatar_url", NullIfEmpty(user->avatar_url())},
              {"is_bot", user->is_bot()}};
  }
  body["sender"] = sender;
  body["text"] = text != nullptr ? text->text() : "";
  if (text != nullptr && text->spans_size() > 0) {
    body["markdown"] = markup::RichTextToMarkdown(*text);
  }
  body["message_id"] = NullIfEmpty(message_id);
  body["target_message_ids"] = nlohmann::json::array();
  for (const std::string& id : delivery.target_message_ids()) {
    body["target_message_ids"].push_back(id);
  }
  body["reply_to"] = NullIfEmpty(delivery.reply_to_target_id());
  body["thread_root"] = NullIfEmpty(delivery.thread_root_target_id());
  nlohmann::json attachments = nlohmann::json::array();
  if (event.has_posted()) {
    for (const v1::Attachment& a : event.posted().attachments()) {
      nlohmann::json item = {{"name", a.name()},
                             {"mime_type", a.mime_type()},
                             {"size", a.size()},
                             {"kind", AttachmentKind(a.kind())}};
      if (!a.unavailable_reason().empty()) {
        item["unavailable_reason"] = a.unavailable_reason();
      }
      attachments.push_back(std::move(item));
    }
  }
  body["attachments"] = std::move(attachments);
  body["occurred_at"] = event.occurred_at_ms() > 0
                            ? nlohmann::json(Rfc3339(event.occurred_at_ms()))
                            : nlohmann::json();
  return body.dump();
}

OutgoingWebhooks::OutgoingWebhooks(Options options, WebhookDirectory* directory)
    : options_(std::move(options)),
      directory_(directory),
      http_(ClientOptions(options_)) {}

absl::StatusOr<std::vector<std::string>> OutgoingWebhooks::Deliver(
    const v1::Delivery& delivery) {
  const std::string& id = delivery.target().chat_id();
  if (std::find(options_.accounts.begin(), options_.accounts.end(),
                delivery.target().account()) == options_.accounts.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("account '", delivery.target().account(),
                     "' is not served by this adapter"));
  }
  absl::StatusOr<v1::OutgoingWebhook> hook = directory_->GetOutgoing(id);
  if (!hook.ok()) {
    switch (hook.status().code()) {
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kDeadlineExceeded:
      case absl::StatusCode::kResourceExhausted:
        return RetryableError(
            absl::StrCat("cannot ask the router about "
                         "webhook ",
                         id, ": ", hook.status().message()));
      default:
        return absl::FailedPreconditionError(
            absl::StrCat("outgoing webhook ", id, ": ",
                         absl::StatusCodeToString(hook.status().code()), ": ",
                         hook.status().message()));
    }
  }
  if (hook->webhook().direction() != v1::OUTGOING) {
    return absl::FailedPreconditionError(
        absl::StrCat("webhook ", id, " is not an outgoing webhook"));
  }
  if (hook->webhook().revoked_at_ms() > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("outgoing webhook ", id, " is revoked"));
  }

  std::string body = OutgoingBody(delivery, id);
  int64_t timestamp = absl::ToUnixSeconds(absl::Now());
  absl::StatusOr<std::string> signature =
      SignTeamSpirit(hook->secret(), timestamp, body);
  if (!signature.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("outgoing webhook ", id, " has no signing secret"));
  }
  HttpHeaderList headers = {
      {"Content-Type", "application/json"},
      {"X-Imbridge-Timestamp", absl::StrCat(timestamp)},
      {"X-Imbridge-Signature", *signature},
      {"X-Imbridge-Event", OutgoingType(delivery.event())},
      {"X-Imbridge-Webhook-Id", id},
      {"Idempotency-Key", delivery.idempotency_key()},
  };
  absl::StatusOr<HttpResponse> response = http_.PostJson(
      hook->webhook().url(), std::move(body), std::move(headers));
  if (!response.ok()) {
    switch (response.status().code()) {
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kDeadlineExceeded:
        return HttpFailure(0, absl::StrCat("POST to webhook ", id, ": ",
                                           response.status().message()));
      default:
        return absl::FailedPreconditionError(absl::StrCat(
            "POST to webhook ", id, ": ", response.status().message()));
    }
  }
  if (response->status >= 200 && response->status < 300) {
    if (!delivery.event().has_posted()) return std::vector<std::string>{};
    std::string native = MessageIdFromAnswer(response->body);
    return std::vector<std::string>{native.empty() ? delivery.idempotency_key()
                                                   : native};
  }
  absl::Duration retry_after =
      response->RetryAfter(absl::Now()).value_or(absl::ZeroDuration());
  // The answer's start, as printable ASCII (the reason must be valid UTF-8).
  std::string what;
  for (char c : absl::string_view(response->body).substr(0, 200)) {
    what += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  what = std::string(absl::StripAsciiWhitespace(what));
  return HttpFailure(response->status,
                     absl::StrCat("webhook ", id, " answered: ", what),
                     retry_after);
}

}  // namespace imbridge::adapters::webhook
