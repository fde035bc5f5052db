#include "adapters/webhook/outbound.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/common/presence_names.h"
#include "adapters/webhook/signature.h"
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

// A JSON object written straight into a string, without building a
// document first: one allocation (growing) instead of a node per field.
// Strings are written as nlohmann::json::dump() writes them: UTF-8 as it is,
// '"', '\\' and control characters escaped. The caller writes keys in the
// order it wants them and must pass valid UTF-8 (protobuf strings are).
class JsonBody {
 public:
  JsonBody() {
    out_.reserve(1024);
    out_.push_back('{');
  }

  JsonBody& Key(absl::string_view key) {
    Separate();
    AppendString(key);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  void String(absl::string_view value) {
    Separate();
    AppendString(value);
  }
  // null for an empty string.
  void StringOrNull(absl::string_view value) {
    if (value.empty()) {
      Null();
    } else {
      String(value);
    }
  }
  void Number(uint64_t value) {
    Separate();
    absl::StrAppend(&out_, value);
  }
  void Bool(bool value) {
    Separate();
    out_.append(value ? "true" : "false");
  }
  void Null() {
    Separate();
    out_.append("null");
  }
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // Closes the outermost object and returns the text.
  std::string Finish() && {
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  // A comma before every value but the first of its object or array, and
  // before no value that follows its key.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (first_) {
      first_ = false;
    } else {
      out_.push_back(',');
    }
  }
  void Open(char bracket) {
    Separate();
    out_.push_back(bracket);
    first_ = true;
  }
  void Close(char bracket) {
    out_.push_back(bracket);
    first_ = false;
  }
  void AppendString(absl::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_.push_back('"');
    for (char c : s) {
      switch (c) {
        case '"':
          out_.append("\\\"");
          break;
        case '\\':
          out_.append("\\\\");
          break;
        case '\b':
          out_.append("\\b");
          break;
        case '\f':
          out_.append("\\f");
          break;
        case '\n':
          out_.append("\\n");
          break;
        case '\r':
          out_.append("\\r");
          break;
        case '\t':
          out_.append("\\t");
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            out_.append("\\u00");
            out_.push_back(kHex[(c >> 4) & 0xf]);
            out_.push_back(kHex[c & 0xf]);
          } else {
            out_.push_back(c);
          }
      }
    }
    out_.push_back('"');
  }

  std::string out_;
  // The next value is the first of its object or array.
  bool first_ = true;
  // The next value follows its key.
  bool after_key_ = false;
};

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
  const v1::UserRef* user = nullptr;
  const v1::RichText* text = nullptr;
  const std::string* message_id = nullptr;
  switch (event.kind_case()) {
    case v1::Event::kPosted:
      user = &event.posted().sender();
      text = &event.posted().text();
      message_id = &event.posted().message_id();
      break;
    case v1::Event::kEdited:
      user = &event.edited().editor();
      text = &event.edited().text();
      message_id = &event.edited().message_id();
      break;
    case v1::Event::kDeleted:
      user = &event.deleted().deleted_by();
      message_id = &event.deleted().message_id();
      break;
    case v1::Event::kPresence:
      user = &event.presence().user();
      break;
    case v1::Event::kMembership:
      user = &event.membership().user();
      break;
    default:
      break;
  }
  // Written straight into the string, keys in alphabetical order (as the
  // body was when it was built as a JSON object first).
  JsonBody body;
  body.Key("attachments").BeginArray();
  if (event.has_posted()) {
    for (const v1::Attachment& a : event.posted().attachments()) {
      body.BeginObject();
      body.Key("kind").String(AttachmentKind(a.kind()));
      body.Key("mime_type").String(a.mime_type());
      body.Key("name").String(a.name());
      body.Key("size").Number(a.size());
      if (!a.unavailable_reason().empty()) {
        body.Key("unavailable_reason").String(a.unavailable_reason());
      }
      body.EndObject();
    }
  }
  body.EndArray();
  body.Key("attempt").Number(delivery.attempt());
  body.Key("delivery_id").Number(delivery.id());
  body.Key("event_key").String(event.key());
  body.Key("idempotency_key").String(delivery.idempotency_key());
  body.Key("link").String(delivery.link());
  if (text != nullptr && text->spans_size() > 0) {
    body.Key("markdown").String(markup::RichTextToMarkdown(*text));
  }
  body.Key("message_id").StringOrNull(message_id != nullptr ? *message_id : "");
  if (event.occurred_at_ms() > 0) {
    body.Key("occurred_at").String(Rfc3339(event.occurred_at_ms()));
  } else {
    body.Key("occurred_at").Null();
  }
  body.Key("origin").BeginObject();
  body.Key("account").String(event.channel().account());
  body.Key("chat_id").String(event.channel().chat_id());
  body.Key("platform").String(event.channel().platform());
  body.Key("thread_id").StringOrNull(event.channel().thread_id());
  body.EndObject();
  if (event.has_presence()) {
    body.Key("presence").BeginObject();
    body.Key("status").String(PresenceStatus(event.presence().presence()));
    body.Key("text").String(event.presence().status_text());
    body.EndObject();
  }
  body.Key("reply_to").StringOrNull(delivery.reply_to_target_id());
  body.Key("sender").BeginObject();
  if (user != nullptr) {
    body.Key("avatar_url").StringOrNull(user->avatar_url());
    body.Key("display_name").String(user->display_name());
    body.Key("id").String(user->id());
    body.Key("is_bot").Bool(user->is_bot());
    body.Key("name").String(delivery.sender_name().empty()
                                ? user->display_name()
                                : delivery.sender_name());
    body.Key("platform")
        .String(user->platform().empty() ? event.channel().platform()
                                         : user->platform());
  }
  body.EndObject();
  body.Key("target_message_ids").BeginArray();
  for (const std::string& id : delivery.target_message_ids()) {
    body.String(id);
  }
  body.EndArray();
  body.Key("text").String(text != nullptr ? text->text() : "");
  body.Key("thread_root").StringOrNull(delivery.thread_root_target_id());
  body.Key("type").String(OutgoingType(event));
  body.Key("webhook_id").String(webhook_id);
  return std::move(body).Finish();
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
  absl::StatusOr<std::string> signature = SignTimestamped(
      kOutgoingWebhookSignature, hook->secret(), timestamp, body);
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
