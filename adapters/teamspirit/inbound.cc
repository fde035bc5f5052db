#include "adapters/teamspirit/inbound.h"

#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/presence_names.h"
#include "adapters/common/signature.h"
#include "adapters/common/temp_file.h"
#include "adapters/teamspirit/format.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::teamspirit {
namespace {

constexpr absl::string_view kJson = "application/json";

std::string ErrorBody(absl::string_view code, absl::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

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
  if (message.markdown) return MarkdownToRichText(message.text);
  v1::RichText plain;
  plain.set_text(message.text);
  return plain;
}

}  // namespace

v1::Attachment::Kind AttachmentKindFor(absl::string_view mime_type) {
  if (mime_type == "image/gif") return v1::Attachment::ANIMATION;
  if (absl::StartsWith(mime_type, "image/")) return v1::Attachment::IMAGE;
  if (absl::StartsWith(mime_type, "video/")) return v1::Attachment::VIDEO;
  if (absl::StartsWith(mime_type, "audio/")) return v1::Attachment::AUDIO;
  return v1::Attachment::FILE;
}

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
        a->set_kind(AttachmentKindFor(a->mime_type()));
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
                                 EventSink* sink, Executor* executor)
    : options_(std::move(options)),
      api_(api),
      sink_(sink),
      executor_(executor) {}

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
  absl::Status verified =
      VerifyTeamSpiritSignature(options_.webhook_secret, timestamp, signature,
                                request.body, now, options_.signature_window);
  if (!verified.ok()) {
    if (verified.code() != absl::StatusCode::kUnauthenticated) {
      LogError("outgoing webhook secret is not usable",
               {{"error", verified.message()}});
      responder->Respond(
          500, kJson, ErrorBody("internal", "webhook secret not configured"));
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
    sink_->CountRejection(reason);
    LogWarn("rejected outgoing webhook", {{"reason", reason},
                                          {"error", verified.message()},
                                          {"peer", request.remote_address}});
    responder->Respond(401, kJson,
                       ErrorBody("unauthorized", verified.message()));
    return;
  }

  // 2. Parse.
  absl::StatusOr<TsWebhookEvent> parsed = ParseWebhookEvent(request.body);
  if (!parsed.ok()) {
    sink_->CountRejection("bad_json");
    LogWarn("malformed outgoing webhook",
            {{"error", parsed.status().message()}});
    responder->Respond(400, kJson,
                       ErrorBody("bad_request", parsed.status().message()));
    return;
  }
  absl::string_view header_id = request.Header("X-TeamSpirit-Event-Id");
  if (!header_id.empty() && header_id != parsed->event_id) {
    sink_->CountRejection("bad_event_id");
    responder->Respond(
        400, kJson,
        ErrorBody("bad_request",
                  "X-TeamSpirit-Event-Id differs from the body's event_id"));
    return;
  }

  // 3. Translate and filter.
  InboundContext context;
  context.account = options_.account;
  context.external_user_prefix = options_.external_user_prefix;
  {
    absl::MutexLock lock(&mu_);
    context.bot_user_id = bot_user_id_;
  }
  if (context.bot_user_id.empty() && parsed->type != TsEventType::kUnknown) {
    // Without the bot's id its own posts cannot be recognised; TeamSpirit
    // retries later.
    responder->Respond(503, kJson,
                       ErrorBody("unavailable", "bot identity not known yet"));
    return;
  }
  InboundTranslation translation = TranslateWebhookEvent(*parsed, context);
  if (!translation.event.has_value()) {
    sink_->CountRejection(translation.ignored_reason);
    LogDebug("ignored outgoing webhook",
             {{"reason", translation.ignored_reason},
              {"type", parsed->type_name},
              {"event_id", parsed->event_id}});
    responder->Respond(200, kJson, R"({"ok":true})");
    return;
  }

  // 4. One attempt per event at a time; a retry joins it.
  const std::string event_id = parsed->event_id;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = pending_.try_emplace(event_id);
    it->second.responders.push_back(std::move(responder));
    if (!inserted) return;
  }
  if (translation.files.empty()) {
    PublishAndAnswer(event_id, std::move(*translation.event));
    return;
  }
  auto shared = std::make_shared<InboundTranslation>(std::move(translation));
  executor_->Post([this, event_id, shared] {
    absl::Status copied = CopyFiles(shared.get());
    if (!copied.ok()) {
      LogWarn("could not copy a TeamSpirit file; TeamSpirit will retry",
              {{"event_id", event_id}, {"error", copied.message()}});
      Finish(event_id, 503, ErrorBody("unavailable", copied.message()));
      return;
    }
    PublishAndAnswer(event_id, std::move(*shared->event));
  });
}

void WebhookReceiver::PublishAndAnswer(const std::string& event_id,
                                       v1::Event event) {
  std::string key = event.key();
  sink_->Publish(std::move(event), [this, event_id,
                                    key](absl::StatusOr<v1::PublishAck> ack) {
    if (!ack.ok()) {
      Finish(event_id, 503, ErrorBody("unavailable", ack.status().message()));
      return;
    }
    switch (ack->outcome()) {
      case v1::PublishAck::ACCEPTED:
      case v1::PublishAck::DUPLICATE:
      case v1::PublishAck::DROPPED:
        Finish(event_id, 200, R"({"ok":true})");
        return;
      default:
        LogError("router did not take a TeamSpirit event",
                 {{"event_key", key},
                  {"outcome", v1::PublishAck::Outcome_Name(ack->outcome())},
                  {"detail", ack->detail()}});
        Finish(event_id, 500, ErrorBody("internal", ack->detail()));
        return;
    }
  });
}

void WebhookReceiver::Finish(const std::string& event_id, int status,
                             std::string body) {
  std::vector<std::shared_ptr<Responder>> responders;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(event_id);
    if (it == pending_.end()) return;
    responders = std::move(it->second.responders);
    pending_.erase(it);
  }
  for (const auto& r : responders) r->Respond(status, kJson, body);
}

absl::Status WebhookReceiver::CopyFiles(InboundTranslation* translation) {
  v1::MessagePosted* posted = translation->event->mutable_posted();
  for (size_t i = 0; i < translation->files.size(); ++i) {
    absl::Status s =
        CopyFile(translation->files[i], posted->mutable_attachments(i));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status WebhookReceiver::CopyFile(const TsFile& file,
                                       v1::Attachment* attachment) {
  if (file.size > options_.max_file_bytes) {
    attachment->set_unavailable_reason(
        absl::StrCat("file is larger than the bridge's limit of ",
                     options_.max_file_bytes, " bytes"));
    return absl::OkStatus();
  }
  TempFile temp;
  if (temp.get() == nullptr) {
    return RetryableError("cannot create a temporary file for a download");
  }
  uint64_t received = 0;
  absl::Status downloaded = api_->DownloadFile(
      file.id, options_.max_file_bytes, [&](absl::string_view chunk) {
        if (!temp.Append(chunk)) {
          return RetryableError("cannot write a temporary file");
        }
        received += chunk.size();
        return absl::OkStatus();
      });
  if (!downloaded.ok()) {
    if (IsRetryable(downloaded)) return downloaded;
    attachment->set_unavailable_reason(
        downloaded.code() == absl::StatusCode::kOutOfRange
            ? absl::StrCat("file is larger than the bridge's limit of ",
                           options_.max_file_bytes, " bytes")
            : absl::StrCat("TeamSpirit did not provide the file: ",
                           downloaded.message()));
    return absl::OkStatus();
  }
  if (!temp.Rewind()) {
    return RetryableError("cannot read back a temporary file");
  }
  v1::BlobMeta meta;
  meta.set_name(attachment->name());
  meta.set_mime_type(attachment->mime_type());
  meta.set_size(received);
  FILE* f = temp.get();
  absl::StatusOr<v1::BlobRef> ref = sink_->PutBlob(
      meta, [f](char* buffer, size_t max) -> absl::StatusOr<size_t> {
        size_t n = std::fread(buffer, 1, max, f);
        if (n == 0 && std::ferror(f)) {
          return absl::DataLossError("cannot read a temporary file");
        }
        return n;
      });
  if (!ref.ok()) {
    if (ref.status().code() == absl::StatusCode::kResourceExhausted) {
      attachment->set_unavailable_reason(
          "file is larger than the router's blob limit");
      return absl::OkStatus();
    }
    return RetryableError(
        absl::StrCat("router blob store: ", ref.status().message()));
  }
  attachment->set_blob_id(ref->blob_id());
  attachment->set_size(ref->size());
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::teamspirit
