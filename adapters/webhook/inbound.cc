#include "adapters/webhook/inbound.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/webhook/format.h"
#include "common/http/percent_decode.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::webhook {
namespace {

constexpr char kPrefix[] = "/hooks/";

// The incoming-webhook API's own error shape, in the style of Slack's Web
// API (docs/webhook.md): {"ok":false,"error":"<code>","message":"..."}.
// Errors the HTTP server answers itself (413, 503 on overload) carry the
// adapters' common JsonErrorBody instead.
std::string ErrorBody(absl::string_view code, absl::string_view message) {
  nlohmann::json body;
  body["ok"] = false;
  body["error"] = code;
  body["message"] = message;
  // A message may quote input; bad UTF-8 in it is replaced, not thrown on.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A string field of `object`: "" when absent or null, false when present
// with another type.
bool OptionalString(const nlohmann::json& object, const char* name,
                    std::string* out) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

// 32 hex characters that identify one request: from its Idempotency-Key
// header (so a retried request is accepted once), else random.
std::string UniqueSuffix(absl::string_view idempotency_key) {
  unsigned char bytes[SHA256_DIGEST_LENGTH];
  if (!idempotency_key.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(idempotency_key.data()),
           idempotency_key.size(), bytes);
  } else if (RAND_bytes(bytes, 16) != 1) {
    // No entropy: fall back to the time, which is unique enough per id.
    std::string t = absl::StrCat(absl::ToUnixNanos(absl::Now()));
    SHA256(reinterpret_cast<const unsigned char*>(t.data()), t.size(), bytes);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), 16));
}

}  // namespace

bool ParseIncomingPayload(absl::string_view content_type,
                          absl::string_view body, IncomingMessage* message,
                          PayloadError* error) {
  std::string media = absl::AsciiStrToLower(absl::StripAsciiWhitespace(
      content_type.substr(0, content_type.find(';'))));
  std::string json_text;
  if (media == "application/x-www-form-urlencoded") {
    bool found = false;
    for (absl::string_view pair : absl::StrSplit(body, '&')) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      if (PercentDecode(kv.first, true) == "payload") {
        json_text = PercentDecode(kv.second, true);
        found = true;
        break;
      }
    }
    if (!found) {
      *error = {"bad_json", "form body without a 'payload' field"};
      return false;
    }
  } else {
    json_text = std::string(body);
  }

  nlohmann::json json = nlohmann::json::parse(json_text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    *error = {"bad_json", "the body is not a JSON object"};
    return false;
  }
  std::string text;
  if (!OptionalString(json, "text", &text)) {
    *error = {"bad_json", "'text' must be a string"};
    return false;
  }
  if (!OptionalString(json, "username", &message->username)) {
    *error = {"bad_json", "'username' must be a string"};
    return false;
  }
  if (!OptionalString(json, "icon_url", &message->icon_url)) {
    *error = {"bad_json", "'icon_url' must be a string"};
    return false;
  }
  bool formatting = true;
  if (auto it = json.find("mrkdwn"); it != json.end() && it->is_boolean()) {
    formatting = it->get<bool>();
  }
  auto attachments = json.find("attachments");
  if (attachments != json.end() && !attachments->is_null() &&
      !attachments->is_array()) {
    *error = {"bad_json", "'attachments' must be an array"};
    return false;
  }
  message->text.Clear();
  AppendMrkdwn(text, formatting, &message->text);
  if (attachments != json.end() && attachments->is_array()) {
    AppendSlackAttachments(*attachments, &message->text);
  }
  if (absl::StripAsciiWhitespace(message->text.text()).empty()) {
    *error = {"no_text", "the message has no text and no attachments"};
    return false;
  }
  return true;
}

v1::Event IncomingEvent(const std::string& account,
                        const std::string& webhook_id,
                        const std::string& unique,
                        const IncomingMessage& message, absl::Time now) {
  v1::Event event;
  event.set_key(IncomingEventKey(account, webhook_id, unique));
  v1::ChannelRef* channel = event.mutable_channel();
  channel->set_platform("webhook");
  channel->set_account(account);
  channel->set_chat_id(webhook_id);
  event.set_occurred_at_ms(absl::ToUnixMillis(now));
  v1::MessagePosted* posted = event.mutable_posted();
  posted->set_message_id(unique);
  v1::UserRef* sender = posted->mutable_sender();
  std::string name = message.username.empty() ? "webhook" : message.username;
  sender->set_platform("webhook");
  sender->set_id(absl::StrCat(webhook_id, "/", name));
  sender->set_display_name(name);
  sender->set_avatar_url(message.icon_url);
  sender->set_is_bot(true);
  *posted->mutable_text() = message.text;
  return event;
}

std::string IncomingEventKey(absl::string_view account,
                             absl::string_view webhook_id,
                             absl::string_view unique) {
  return absl::StrCat("webhook:", account, ":", webhook_id, ":", unique);
}

InboundRoute IncomingRoute(const IncomingPost& post) {
  InboundRoute route;
  route.chat = post.webhook_id;
  route.key = IncomingEventKey(post.account, post.webhook_id, post.unique);
  route.convert_here = true;
  return route;
}

InboundConversion IncomingConversion(const IncomingPost& post) {
  InboundConversion conversion;
  conversion.events.push_back(IncomingEvent(
      post.account, post.webhook_id, post.unique, post.message, post.received));
  return conversion;
}

IncomingWebhooks::IncomingWebhooks(std::vector<std::string> accounts,
                                   WebhookDirectory* directory,
                                   InboundPipeline* pipeline,
                                   InboundConnector<IncomingPost>* connector,
                                   CountRejection count_rejection)
    : accounts_(std::move(accounts)),
      directory_(directory),
      pipeline_(pipeline),
      connector_(connector),
      count_rejection_(std::move(count_rejection)) {}

void IncomingWebhooks::Register(HttpServer& server) {
  server.HandlePrefix(
      "POST", kPrefix,
      [this](HttpRequest request, std::shared_ptr<Responder> r) {
        Handle(std::move(request), std::move(r));
      },
      {"application/json", "application/x-www-form-urlencoded"});
}

void IncomingWebhooks::Refuse(const std::shared_ptr<Responder>& responder,
                              int status, absl::string_view reason,
                              absl::string_view code,
                              absl::string_view message) {
  count_rejection_(reason);
  responder->Respond(status, "application/json", ErrorBody(code, message));
}

void IncomingWebhooks::Handle(HttpRequest request,
                              std::shared_ptr<Responder> responder) {
  // /hooks/<id> or /hooks/<id>/<key>.
  absl::string_view rest = request.path;
  if (!absl::ConsumePrefix(&rest, kPrefix)) {
    Refuse(responder, 404, "not_found", "not_found", "no such webhook path");
    return;
  }
  if (absl::EndsWith(rest, "/")) rest.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  if (parts.empty() || parts.size() > 2 || parts[0].empty()) {
    Refuse(responder, 404, "not_found", "not_found",
           "expected /hooks/<id> or /hooks/<id>/<key>");
    return;
  }
  std::string id = PercentDecode(parts[0], false);
  std::string key;
  if (parts.size() == 2) {
    key = PercentDecode(parts[1], false);
  } else {
    absl::string_view auth =
        absl::StripAsciiWhitespace(request.Header("authorization"));
    if (auth.size() > 7 &&
        absl::EqualsIgnoreCase(auth.substr(0, 7), "bearer ")) {
      key = std::string(absl::StripAsciiWhitespace(auth.substr(7)));
    }
  }
  if (key.empty()) {
    Refuse(responder, 401, "missing_key", "missing_key",
           "give the webhook's API key as 'Authorization: Bearer <key>' or "
           "in the path /hooks/<id>/<key>");
    return;
  }

  // The request moves into the callback, which runs on a gRPC thread.
  auto shared_request = std::make_shared<HttpRequest>(std::move(request));
  directory_->CheckIncomingKey(
      id, key,
      [this, id, shared_request,
       responder](absl::StatusOr<v1::WebhookInfo> webhook) mutable {
        if (!webhook.ok()) {
          switch (webhook.status().code()) {
            case absl::StatusCode::kPermissionDenied:
            case absl::StatusCode::kNotFound:
            case absl::StatusCode::kFailedPrecondition:
              Refuse(responder, 401, "invalid_key", "invalid_key",
                     "unknown webhook, wrong key or revoked webhook");
              return;
            case absl::StatusCode::kUnavailable:
            case absl::StatusCode::kDeadlineExceeded:
              LogWarn(
                  "cannot check an incoming webhook's key with the "
                  "router",
                  {{"webhook_id", id}, {"error", webhook.status().message()}});
              Refuse(responder, 503, "router_unavailable", "router_unavailable",
                     "the router cannot be reached; try again later");
              return;
            default:
              LogError(
                  "the router refused to check an incoming webhook's key",
                  {{"webhook_id", id},
                   {"code", absl::StatusCodeToString(webhook.status().code())},
                   {"error", webhook.status().message()}});
              Refuse(responder, 500, "directory_error", "internal",
                     "the key could not be checked");
              return;
          }
        }
        const std::string& account =
            webhook->account().empty() ? accounts_.front() : webhook->account();
        if (webhook->direction() != v1::INCOMING ||
            std::find(accounts_.begin(), accounts_.end(), account) ==
                accounts_.end()) {
          Refuse(responder, 401, "invalid_key", "invalid_key",
                 "unknown webhook, wrong key or revoked webhook");
          return;
        }
        Accept(account, id, *shared_request, std::move(responder));
      });
}

void IncomingWebhooks::Accept(const std::string& account,
                              const std::string& webhook_id,
                              const HttpRequest& request,
                              std::shared_ptr<Responder> responder) {
  IncomingMessage message;
  PayloadError error;
  if (!ParseIncomingPayload(request.Header("content-type"), request.body,
                            &message, &error)) {
    Refuse(responder, 400, error.reason, error.reason, error.message);
    return;
  }
  IncomingPost post;
  post.account = account;
  post.webhook_id = webhook_id;
  post.unique = UniqueSuffix(request.Header("idempotency-key"));
  post.message = std::move(message);
  post.received = absl::Now();
  absl::Status submitted = pipeline_->Submit(
      connector_, std::move(post), [responder](const InboundResult& result) {
        switch (result.outcome) {
          case InboundResult::Outcome::kOk:
            responder->Respond(200, "application/json", R"({"ok":true})");
            return;
          case InboundResult::Outcome::kRetry:
            responder->Respond(503, "application/json",
                               ErrorBody("router_unavailable", result.detail));
            return;
          case InboundResult::Outcome::kInvalid:
            // The message made an event the router refuses (not UTF-8, ...).
            responder->Respond(400, "application/json",
                               ErrorBody("invalid_event", result.detail));
            return;
          case InboundResult::Outcome::kFailed:
            LogWarn("router did not store an incoming webhook's message",
                    {{"detail", result.detail}});
            responder->Respond(500, "application/json",
                               ErrorBody("not_stored", result.detail));
            return;
        }
      });
  if (!submitted.ok()) {
    Refuse(responder, 503, "busy", "router_unavailable", submitted.message());
  }
}

}  // namespace imbridge::adapters::webhook
