#include "adapters/teamspirit/inbound.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/attachment_kind.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/inbound_answer.h"
#include "adapters/common/markup/markdown.h"
#include "adapters/common/presence_names.h"
#include "adapters/teamspirit/signature.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::teamspirit {
namespace {

constexpr absl::string_view kJson = "application/json";

v1::UserRef ToUserRef(const TsUser& user) {
  v1::UserRef ref;
  ref.set_platform(kPlatform);
  ref.set_id(user.id);
  ref.set_display_name(user.name);
  ref.set_avatar_url(user.avatar_url);
  ref.set_is_bot(user.is_bot);
  return ref;
}

v1::RichText ToRichText(const TsMessage& message) {
  if (message.markdown) return markup::MarkdownToRichText(message.text);
  v1::RichText plain;
  plain.set_text(message.text);
  return plain;
}

}  // namespace

InboundTranslation TranslateWebhookEvent(const TsWebhookEvent& e,
                                         const InboundContext& context) {
  InboundTranslation out;
  if (e.type == TsEventType::kUnknown) {
    out.ignored_reason = "unknown_type";
    return out;
  }
  const TsUser& user = *e.user;
  if (!context.bot_user_id.empty() && user.id == context.bot_user_id) {
    out.ignored_reason = "own_post";
    return out;
  }
  if (e.message.has_value() && e.message->author.has_value() &&
      !context.external_user_prefix.empty() &&
      absl::StartsWith(e.message->author->external_id,
                       context.external_user_prefix)) {
    out.ignored_reason = "own_post";
    return out;
  }

  v1::Event event;
  event.set_key(absl::StrCat(kPlatform, ":", context.account, ":", e.event_id));
  event.mutable_channel()->set_platform(kPlatform);
  event.mutable_channel()->set_account(context.account);
  event.mutable_channel()->set_chat_id(e.chat_id);
  // A message in a thread is in the thread's channel too, so that a link
  // member narrowed to that thread (a runtime link made for a thread, such
  // as a Botsplash conversation) gets it; whole-chat members get it as
  // before.
  if (e.message.has_value() && !e.message->thread_id.empty()) {
    event.mutable_channel()->set_thread_id(e.message->thread_id);
  }
  if (e.created_at != absl::InfinitePast()) {
    event.set_occurred_at_ms(absl::ToUnixMillis(e.created_at));
  }
  switch (e.type) {
    case TsEventType::kMessageCreated: {
      const TsMessage& m = *e.message;
      v1::MessagePosted* posted = event.mutable_posted();
      posted->set_message_id(m.id);
      *posted->mutable_sender() = ToUserRef(user);
      *posted->mutable_text() = ToRichText(m);
      posted->set_reply_to_message_id(m.reply_to);
      posted->set_thread_root_id(m.thread_id);
      for (const TsFile& f : m.files) {
        v1::Attachment* a = posted->add_attachments();
        a->set_name(f.name.empty() ? f.id : f.name);
        a->set_mime_type(f.mime_type.empty() ? "application/octet-stream"
                                             : f.mime_type);
        a->set_size(f.size);
        a->set_kind(AttachmentKindForMime(a->mime_type()));
        out.files.push_back(f);
      }
      break;
    }
    case TsEventType::kMessageUpdated: {
      v1::MessageEdited* edited = event.mutable_edited();
      edited->set_message_id(e.message->id);
      *edited->mutable_editor() = ToUserRef(user);
      *edited->mutable_text() = ToRichText(*e.message);
      break;
    }
    case TsEventType::kMessageDeleted: {
      v1::MessageDeleted* deleted = event.mutable_deleted();
      deleted->set_message_id(e.message->id);
      *deleted->mutable_deleted_by() = ToUserRef(user);
      break;
    }
    case TsEventType::kPresenceChanged: {
      if (!context.external_user_prefix.empty() &&
          absl::StartsWith(user.id, context.external_user_prefix)) {
        // A person the bridge itself shows on TeamSpirit.
        out.ignored_reason = "own_post";
        return out;
      }
      v1::PresenceChanged* presence = event.mutable_presence();
      *presence->mutable_user() = ToUserRef(user);
      presence->set_presence(PresenceFromName(e.presence->status));
      presence->set_status_text(e.presence->text);
      event.mutable_channel()->clear_chat_id();
      break;
    }
    case TsEventType::kMemberJoined:
    case TsEventType::kMemberLeft: {
      v1::MembershipChanged* membership = event.mutable_membership();
      *membership->mutable_user() = ToUserRef(user);
      membership->set_joined(e.type == TsEventType::kMemberJoined);
      break;
    }
    case TsEventType::kUnknown:
      break;
  }
  out.event = std::move(event);
  return out;
}

WebhookReceiver::WebhookReceiver(Options options, TeamSpiritApi* api,
                                 InboundPipeline* pipeline,
                                 RejectionCounter count_rejection,
                                 InboundConnector<TsInboundEvent>* connector)
    : options_(std::move(options)),
      api_(api),
      pipeline_(pipeline),
      count_rejection_(std::move(count_rejection)),
      connector_(connector != nullptr ? connector : this) {}

void WebhookReceiver::SetBotUserId(std::string id) {
  absl::MutexLock lock(&mu_);
  bot_user_id_ = std::move(id);
}

void WebhookReceiver::Handle(HttpRequest request,
                             std::shared_ptr<Responder> responder) {
  // 1. Authenticate the raw bytes before looking at them.
  absl::string_view timestamp = request.Header("X-TeamSpirit-Timestamp");
  absl::string_view signature = request.Header("X-TeamSpirit-Signature");
  absl::Time now = options_.clock();
  absl::Status verified = VerifyTimestampedSignature(
      kTeamSpiritSignature, options_.webhook_secret, timestamp, signature,
      request.body, now, options_.signature_window);
  if (!verified.ok()) {
    if (verified.code() != absl::StatusCode::kUnauthenticated) {
      LogError("outgoing webhook secret is not usable",
               {{"error", verified.message()}});
      responder->Respond(
          500, kJson,
          JsonErrorBody("internal", "webhook secret not configured"));
      return;
    }
    int64_t ts = 0;
    std::string reason = "bad_signature";
    if (timestamp.empty() || signature.empty()) {
      reason = "missing_signature";
    } else if (absl::SimpleAtoi(timestamp, &ts) &&
               absl::AbsDuration(now - absl::FromUnixSeconds(ts)) >
                   options_.signature_window) {
      reason = "stale_timestamp";
    }
    count_rejection_(reason);
    LogWarn("rejected outgoing webhook", {{"reason", reason},
                                          {"error", verified.message()},
                                          {"peer", request.remote_address}});
    responder->Respond(401, kJson,
                       JsonErrorBody("unauthorized", verified.message()));
    return;
  }

  // 2. Parse.
  absl::StatusOr<TsWebhookEvent> parsed = ParseWebhookEvent(request.body);
  if (!parsed.ok()) {
    count_rejection_("bad_json");
    LogWarn("malformed outgoing webhook",
            {{"error", parsed.status().message()}});
    responder->Respond(400, kJson,
                       JsonErrorBody("bad_request", parsed.status().message()));
    return;
  }
  absl::string_view header_id = request.Header("X-TeamSpirit-Event-Id");
  if (!header_id.empty() && header_id != parsed->event_id) {
    count_rejection_("bad_event_id");
    responder->Respond(
        400, kJson,
        JsonErrorBody(
            "bad_request",
            "X-TeamSpirit-Event-Id differs from the body's event_id"));
    return;
  }
  if (parsed->type == TsEventType::kUnknown) {
    count_rejection_("unknown_type");
    LogDebug("ignored outgoing webhook of an unknown type",
             {{"type", parsed->type_name}, {"event_id", parsed->event_id}});
    responder->Respond(200, kJson, R"({"ok":true})");
    return;
  }

  // 3. Into its chat's lane, with the context of now.
  TsInboundEvent raw;
  raw.context.account = options_.account;
  raw.context.external_user_prefix = options_.external_user_prefix;
  {
    absl::MutexLock lock(&mu_);
    raw.context.bot_user_id = bot_user_id_;
  }
  if (raw.context.bot_user_id.empty()) {
    // Without the bot's id its own posts cannot be recognised; TeamSpirit
    // retries later.
    responder->Respond(
        503, kJson, JsonErrorBody("unavailable", "bot identity not known yet"));
    return;
  }
  raw.event = *std::move(parsed);
  absl::Status submitted = pipeline_->Submit<TsInboundEvent>(
      connector_, std::move(raw),
      AnswerInboundWhenDone(responder, R"({"ok":true})"));
  if (!submitted.ok()) AnswerRefusedInbound(*responder, submitted);
}

absl::StatusOr<InboundRoute> WebhookReceiver::Route(const TsInboundEvent& raw) {
  return AccountInboundRoute(raw.context.account, raw.event.chat_id,
                             raw.event.event_id);
}

absl::StatusOr<InboundConversion> WebhookReceiver::Convert(
    const TsInboundEvent& raw) {
  InboundTranslation translation =
      TranslateWebhookEvent(raw.event, raw.context);
  InboundConversion conversion;
  if (!translation.event.has_value()) {
    count_rejection_(translation.ignored_reason);
    LogDebug("ignored outgoing webhook",
             {{"reason", translation.ignored_reason},
              {"type", raw.event.type_name},
              {"event_id", raw.event.event_id}});
    return conversion;
  }
  conversion.events.push_back(*std::move(translation.event));
  for (size_t i = 0; i < translation.files.size(); ++i) {
    InboundFile file;
    file.attachment_index = static_cast<int>(i);
    file.download =
        [api = api_, id = translation.files[i].id,
         limit = options_.max_file_bytes](
            uint64_t max_bytes,
            const std::function<absl::Status(absl::string_view)>& write) {
          absl::Status s =
              api->DownloadFile(id, std::min(max_bytes, limit), write);
          if (s.ok() || IsRetryable(s) || absl::IsOutOfRange(s)) return s;
          return absl::Status(
              s.code(), absl::StrCat("TeamSpirit did not provide the file: ",
                                     s.message()));
        };
    conversion.files.push_back(std::move(file));
  }
  return conversion;
}

}  // namespace imbridge::adapters::teamspirit
