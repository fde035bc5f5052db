#include "adapters/telegram/outbound.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::adapters::telegram {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxPhotoBytes = 10ull << 20;
constexpr size_t kMaxAlbum = 10;

absl::flat_hash_map<std::string, OutboundAccount> ByName(
    std::vector<OutboundAccount> accounts) {
  absl::flat_hash_map<std::string, OutboundAccount> out;
  for (OutboundAccount& a : accounts) {
    std::string name = a.name;
    out.emplace(std::move(name), std::move(a));
  }
  return out;
}

// A chat id as JSON: a number when it is one (Telegram also takes
// "@channelname").
json ChatIdJson(const std::string& chat_id) {
  int64_t id = 0;
  if (absl::SimpleAtoi(chat_id, &id)) return id;
  return chat_id;
}

std::string MessageIdOf(const json& message) {
  if (message.is_object()) {
    auto it = message.find("message_id");
    if (it != message.end() && it->is_number_integer()) {
      return absl::StrCat(it->get<int64_t>());
    }
  }
  return "";
}

bool IsAlbumKind(v1::Attachment::Kind k) {
  return k == v1::Attachment::IMAGE || k == v1::Attachment::VIDEO;
}

// Whether two attachments may share one sendMediaGroup (Telegram allows
// photos and videos mixed, or only documents, or only audio).
bool AlbumCompatible(const v1::Attachment& a, const v1::Attachment& b) {
  if (IsAlbumKind(a.kind()) && IsAlbumKind(b.kind())) return true;
  return a.kind() == b.kind() && (a.kind() == v1::Attachment::FILE ||
                                  a.kind() == v1::Attachment::AUDIO);
}

bool IsStickerMime(const std::string& mime) {
  return mime == "image/webp" || mime == "application/x-tgsticker" ||
         mime == "video/webm";
}

// The Bot API method and its file field for one attachment.
std::pair<std::string, std::string> UploadMethod(const v1::Attachment& a) {
  switch (a.kind()) {
    case v1::Attachment::IMAGE:
      if (a.size() <= kMaxPhotoBytes) return {"sendPhoto", "photo"};
      break;
    case v1::Attachment::VIDEO:
      return {"sendVideo", "video"};
    case v1::Attachment::AUDIO:
      return {"sendAudio", "audio"};
    case v1::Attachment::VOICE:
      return {"sendVoice", "voice"};
    case v1::Attachment::ANIMATION:
      return {"sendAnimation", "animation"};
    case v1::Attachment::STICKER:
      if (IsStickerMime(a.mime_type())) return {"sendSticker", "sticker"};
      break;
    default:
      break;
  }
  return {"sendDocument", "document"};
}

// The InputMedia type of an album item.
std::string MediaType(const v1::Attachment& a) {
  switch (a.kind()) {
    case v1::Attachment::IMAGE:
      return a.size() <= kMaxPhotoBytes ? "photo" : "document";
    case v1::Attachment::VIDEO:
      return "video";
    case v1::Attachment::AUDIO:
      return "audio";
    default:
      return "document";
  }
}

MultipartPart Field(std::string name, std::string value) {
  MultipartPart p;
  p.name = std::move(name);
  p.data = std::move(value);
  return p;
}

// The bold sender name alone (for a file's caption without text).
TelegramText NameOnly(const std::string& sender_name) {
  TelegramText t;
  if (sender_name.empty()) return t;
  t = Truncate(TelegramText{sender_name, {}}, 256);
  t.entities.push_back({"bold", 0, Utf16Length(t.text), "", "", 0, ""});
  return t;
}

// A line for a file that is not uploaded.
std::string FileNotice(const v1::Attachment& a, const std::string& reason) {
  std::string name = a.name().empty() ? "file" : a.name();
  std::string size =
      a.size() > 0 ? absl::StrCat(" (", FormatSize(a.size()), ")") : "";
  return absl::StrCat("\xF0\x9F\x93\x8E ", name, size, ": ", reason);
}

}  // namespace

// The chat a delivery goes to.
struct Outbound::Target {
  const OutboundAccount* account = nullptr;
  std::string linked_chat;  // As links know it.
  std::string chat;         // As Telegram knows it now.
  std::string thread;       // message_thread_id, or empty.
  bool is_group = false;
};

Outbound::Outbound(std::vector<OutboundAccount> accounts, ChatAliases* aliases,
                   RateLimiter* limiter, BlobReader blobs,
                   DeliveryJournal* journal, OpenSendPolicy policy)
    : accounts_(ByName(std::move(accounts))),
      aliases_(aliases),
      limiter_(limiter),
      blobs_(std::move(blobs)),
      journal_(journal),
      policy_(policy) {}

absl::StatusOr<Outbound::Target> Outbound::TargetOf(
    const v1::Delivery& d) const {
  auto account = accounts_.find(d.target().account());
  if (account == accounts_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no telegram account named '", d.target().account(), "'"));
  }
  Target target;
  target.account = &account->second;
  target.linked_chat = d.target().chat_id();
  target.chat = aliases_->Current(account->first, target.linked_chat);
  target.thread = d.target().thread_id();
  target.is_group = absl::StartsWith(target.chat, "-");
  return target;
}

absl::StatusOr<std::vector<std::string>> Outbound::SendMessage(
    const v1::Delivery& d) {
  IMB_ASSIGN_OR_RETURN(Target target, TargetOf(d));
  return Posted(d, target);
}

absl::Status Outbound::EditMessage(const v1::Delivery& d) {
  IMB_ASSIGN_OR_RETURN(Target target, TargetOf(d));
  return Edited(d, target);
}

absl::Status Outbound::DeleteMessage(const v1::Delivery& d) {
  IMB_ASSIGN_OR_RETURN(Target target, TargetOf(d));
  return Deleted(d, target);
}

absl::StatusOr<std::vector<std::string>> Outbound::SendMembership(
    const v1::Delivery& d) {
  IMB_ASSIGN_OR_RETURN(Target target, TargetOf(d));
  return Membership(d, target);
}

absl::Status Outbound::TakeToken(Target& target) {
  bool granted = false;
  absl::Duration wait =
      limiter_->Reserve(target.account->name, target.chat, target.is_group,
                        absl::Now(), &granted);
  if (!granted) {
    return RetryableError(
        absl::StrCat("telegram rate limit for chat ", target.chat), wait);
  }
  return stopping_.Pause(wait);
}

absl::StatusOr<json> Outbound::Call(
    Target& target, const std::string& method,
    const std::function<json(const std::string&)>& make, BotApiError* error) {
  BotApiError local;
  BotApiError& e = error != nullptr ? *error : local;
  for (int attempt = 0;; ++attempt) {
    absl::Status token = TakeToken(target);
    if (!token.ok()) return token;
    json params = make(target.chat);
    params["chat_id"] = ChatIdJson(target.chat);
    int64_t thread = 0;
    if (!target.thread.empty() && absl::SimpleAtoi(target.thread, &thread)) {
      params["message_thread_id"] = thread;
    }
    absl::StatusOr<json> result = target.account->api->Call(method, params, &e);
    if (result.ok() || e.migrate_to_chat_id == 0 || attempt > 0) return result;
    std::string migrated = absl::StrCat(e.migrate_to_chat_id);
    absl::Status recorded =
        aliases_->Record(target.account->name, target.chat, migrated);
    LogInfo("telegram chat migrated to a supergroup",
            {{"account", target.account->name},
             {"chat", target.linked_chat},
             {"new_chat", migrated}});
    if (!recorded.ok()) {
      LogWarn("chat alias not saved", {{"reason", recorded.message()}});
    }
    target.chat = migrated;
    target.is_group = true;
  }
}

absl::StatusOr<json> Outbound::CallMultipart(
    Target& target, const std::string& method,
    const std::function<std::vector<MultipartPart>(const std::string&)>& make) {
  for (int attempt = 0;; ++attempt) {
    absl::Status token = TakeToken(target);
    if (!token.ok()) return token;
    std::vector<MultipartPart> parts = make(target.chat);
    parts.insert(parts.begin(), Field("chat_id", target.chat));
    if (!target.thread.empty()) {
      parts.insert(parts.begin() + 1,
                   Field("message_thread_id", target.thread));
    }
    BotApiError e;
    absl::StatusOr<json> result =
        target.account->api->CallMultipart(method, std::move(parts), &e);
    if (result.ok() || e.migrate_to_chat_id == 0 || attempt > 0) return result;
    std::string migrated = absl::StrCat(e.migrate_to_chat_id);
    absl::Status recorded =
        aliases_->Record(target.account->name, target.chat, migrated);
    if (!recorded.ok()) {
      LogWarn("chat alias not saved", {{"reason", recorded.message()}});
    }
    target.chat = migrated;
    target.is_group = true;
  }
}

absl::StatusOr<std::vector<std::string>> Outbound::RunSteps(
    const v1::Delivery& d, Target& target, const std::vector<Step>& steps) {
  std::vector<DeliveryJournal::StepCall> calls;
  calls.reserve(steps.size());
  for (const Step& step : steps) {
    calls.push_back([&step, &target] { return step(target); });
  }
  // The Bot API cannot list a chat's messages: a send left open by a crash
  // is decided by the policy.
  auto reconcile = [&](size_t step, const DeliveryJournal::Step&)
      -> absl::StatusOr<std::optional<std::vector<std::string>>> {
    const bool drop = policy_ == OpenSendPolicy::kAtMostOnce;
    LogWarn(drop ? "a send left open by a restart is taken as sent "
                   "(open_send_policy at_most_once); it may be missing"
                 : "a send left open by a restart is sent again "
                   "(open_send_policy at_least_once); it may show twice",
            {{"key", d.idempotency_key()},
             {"chat", target.chat},
             {"step", absl::StrCat(step)}});
    if (drop) return std::vector<std::string>();
    return std::nullopt;
  };
  return journal_->Run(
      d.idempotency_key(),
      absl::StrCat("telegram/", target.account->name, "/", target.linked_chat),
      calls, reconcile);
}

absl::StatusOr<std::vector<std::string>> Outbound::Posted(const v1::Delivery& d,
                                                          Target& target) {
  const v1::MessagePosted& posted = d.event().posted();
  const OutboundAccount& account = *target.account;
  const bool from_telegram = d.event().channel().platform() == "telegram";
  const TelegramText prefix =
      SenderPrefix(d.sender_name(), account.sender_style);
  TelegramText body = FromRichText(posted.text(), from_telegram);

  // Files that are uploaded, and notices for the others.
  std::vector<const v1::Attachment*> uploads;
  std::vector<std::string> notices;
  for (const v1::Attachment& a : posted.attachments()) {
    if (a.blob_id().empty()) {
      notices.push_back(FileNotice(a, a.unavailable_reason().empty()
                                          ? "not available"
                                          : a.unavailable_reason()));
    } else if (a.size() > account.max_upload_bytes) {
      notices.push_back(FileNotice(
          a,
          absl::StrCat("larger than the ", FormatSize(account.max_upload_bytes),
                       " a Telegram bot may upload")));
    } else {
      uploads.push_back(&a);
    }
  }
  for (const std::string& n : notices) {
    TelegramText line = ItalicNotice(n);
    if (!body.text.empty()) body = Concat(body, TelegramText{"\n", {}});
    body = Concat(body, line);
  }

  json reply;
  const std::string& reply_to = !d.reply_to_target_id().empty()
                                    ? d.reply_to_target_id()
                                    : d.thread_root_target_id();
  int64_t reply_id = 0;
  if (absl::SimpleAtoi(reply_to, &reply_id) && reply_id > 0) {
    reply = {{"message_id", reply_id}, {"allow_sending_without_reply", true}};
  }
  // Only the first message sent is the reply.
  std::vector<Step> steps;
  auto reply_for_next_step = [&]() -> json {
    return steps.empty() ? reply : json();
  };

  auto add_text_steps = [&](const TelegramText& text_body) {
    for (TelegramText& part :
         RenderParts(prefix, text_body, kMaxMessageLength)) {
      steps.push_back(
          [this, part = std::move(part), r = reply_for_next_step()](
              Target& t) -> absl::StatusOr<std::vector<std::string>> {
            absl::StatusOr<json> m =
                Call(t, "sendMessage", [&](const std::string&) {
                  json p = {{"text", part.text},
                            {"entities", EntitiesToJson(part.entities)}};
                  if (!r.is_null()) p["reply_parameters"] = r;
                  return p;
                });
            if (!m.ok()) return m.status();
            return std::vector<std::string>{MessageIdOf(*m)};
          });
    }
  };

  TelegramText caption;
  if (uploads.empty()) {
    if (body.text.empty() && prefix.text.empty())
      return std::vector<std::string>();
    add_text_steps(body);
  } else {
    TelegramText full =
        body.text.empty() ? NameOnly(d.sender_name()) : Concat(prefix, body);
    if (Utf16Length(full.text) <= kMaxCaptionLength) {
      caption = full;
    } else {
      add_text_steps(body);
      caption = NameOnly(d.sender_name());
    }
  }

  // Groups of uploads: an album for consecutive files sharing a group id.
  std::vector<std::vector<const v1::Attachment*>> groups;
  for (const v1::Attachment* a : uploads) {
    if (!groups.empty() && !a->group_id().empty() &&
        groups.back().size() < kMaxAlbum &&
        groups.back().front()->group_id() == a->group_id() &&
        AlbumCompatible(*groups.back().front(), *a)) {
      groups.back().push_back(a);
    } else {
      groups.push_back({a});
    }
  }
  const uint64_t max_upload = account.max_upload_bytes;
  bool first_group = true;
  for (const auto& group : groups) {
    TelegramText group_caption = first_group ? caption : TelegramText();
    first_group = false;
    if (group.size() == 1) {
      const v1::Attachment a = *group.front();
      auto [method, field] = UploadMethod(a);
      if (method == "sendSticker" && !group_caption.text.empty()) {
        // Stickers carry no caption: the name (and text) go first.
        add_text_steps(body);
        group_caption = TelegramText();
      }
      steps.push_back(
          [this, a, method = method, field = field, group_caption,
           r = reply_for_next_step(),
           max_upload](Target& t) -> absl::StatusOr<std::vector<std::string>> {
            absl::StatusOr<std::string> bytes = blobs_(a.blob_id(), max_upload);
            if (!bytes.ok()) return bytes.status();
            absl::StatusOr<json> m =
                CallMultipart(t, method, [&](const std::string&) {
                  std::vector<MultipartPart> parts;
                  if (!group_caption.text.empty()) {
                    parts.push_back(Field("caption", group_caption.text));
                    parts.push_back(
                        Field("caption_entities",
                              EntitiesToJson(group_caption.entities).dump()));
                  }
                  if (!r.is_null())
                    parts.push_back(Field("reply_parameters", r.dump()));
                  MultipartPart file;
                  file.name = field;
                  file.filename = a.name().empty() ? "file" : a.name();
                  file.content_type = a.mime_type();
                  file.data = *bytes;
                  parts.push_back(std::move(file));
                  return parts;
                });
            if (!m.ok()) return m.status();
            return std::vector<std::string>{MessageIdOf(*m)};
          });
      continue;
    }
    std::vector<v1::Attachment> items;
    for (const v1::Attachment* a : group) items.push_back(*a);
    steps.push_back(
        [this, items, group_caption, r = reply_for_next_step(),
         max_upload](Target& t) -> absl::StatusOr<std::vector<std::string>> {
          std::vector<std::string> contents;
          for (const v1::Attachment& a : items) {
            absl::StatusOr<std::string> bytes = blobs_(a.blob_id(), max_upload);
            if (!bytes.ok()) return bytes.status();
            contents.push_back(std::move(*bytes));
          }
          absl::StatusOr<json> m =
              CallMultipart(t, "sendMediaGroup", [&](const std::string&) {
                std::vector<MultipartPart> parts;
                json media = json::array();
                for (size_t i = 0; i < items.size(); ++i) {
                  json item = {{"type", MediaType(items[i])},
                               {"media", absl::StrCat("attach://file", i)}};
                  if (i == 0 && !group_caption.text.empty()) {
                    item["caption"] = group_caption.text;
                    item["caption_entities"] =
                        EntitiesToJson(group_caption.entities);
                  }
                  media.push_back(std::move(item));
                }
                parts.push_back(Field("media", media.dump()));
                if (!r.is_null())
                  parts.push_back(Field("reply_parameters", r.dump()));
                for (size_t i = 0; i < items.size(); ++i) {
                  MultipartPart file;
                  file.name = absl::StrCat("file", i);
                  file.filename =
                      items[i].name().empty() ? "file" : items[i].name();
                  file.content_type = items[i].mime_type();
                  file.data = contents[i];
                  parts.push_back(std::move(file));
                }
                return parts;
              });
          if (!m.ok()) return m.status();
          std::vector<std::string> ids;
          if (m->is_array()) {
            for (const json& message : *m) ids.push_back(MessageIdOf(message));
          }
          return ids;
        });
  }
  return RunSteps(d, target, steps);
}

absl::Status Outbound::Edited(const v1::Delivery& d, Target& target) {
  const std::vector<std::string> ids(d.target_message_ids().begin(),
                                     d.target_message_ids().end());
  if (ids.empty()) return absl::OkStatus();
  const bool from_telegram = d.event().channel().platform() == "telegram";
  const TelegramText prefix =
      SenderPrefix(d.sender_name(), target.account->sender_style);
  const TelegramText body =
      FromRichText(d.event().edited().text(), from_telegram);
  std::vector<TelegramText> parts =
      RenderParts(prefix, body, kMaxMessageLength, ids.size());
  for (size_t i = 0; i < parts.size() && i < ids.size(); ++i) {
    int64_t message_id = 0;
    if (!absl::SimpleAtoi(ids[i], &message_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("not a telegram message id: '", ids[i], "'"));
    }
    BotApiError error;
    absl::StatusOr<json> r = Call(
        target, "editMessageText",
        [&](const std::string&) {
          return json{{"message_id", message_id},
                      {"text", parts[i].text},
                      {"entities", EntitiesToJson(parts[i].entities)}};
        },
        &error);
    if (r.ok() ||
        absl::StrContains(error.description, "message is not modified")) {
      continue;
    }
    if (!absl::StrContains(error.description, "no text in the message")) {
      return r.status();
    }
    // A file: its caption holds the text (only the first part has one).
    if (i > 0) break;
    TelegramText caption = Truncate(
        body.text.empty() ? NameOnly(d.sender_name()) : Concat(prefix, body),
        kMaxCaptionLength);
    BotApiError caption_error;
    absl::StatusOr<json> c = Call(
        target, "editMessageCaption",
        [&](const std::string&) {
          return json{{"message_id", message_id},
                      {"caption", caption.text},
                      {"caption_entities", EntitiesToJson(caption.entities)}};
        },
        &caption_error);
    if (!c.ok() && !absl::StrContains(caption_error.description,
                                      "message is not modified")) {
      return c.status();
    }
    break;
  }
  return absl::OkStatus();
}

absl::Status Outbound::Deleted(const v1::Delivery& d, Target& target) {
  for (const std::string& id : d.target_message_ids()) {
    int64_t message_id = 0;
    if (!absl::SimpleAtoi(id, &message_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("not a telegram message id: '", id, "'"));
    }
    BotApiError error;
    absl::StatusOr<json> r = Call(
        target, "deleteMessage",
        [&](const std::string&) {
          return json{{"message_id", message_id}};
        },
        &error);
    if (r.ok()) continue;
    if (absl::StrContains(error.description, "message to delete not found")) {
      continue;  // Already gone.
    }
    if (!IsRetryable(r.status()) &&
        absl::StrContains(error.description, "can't be deleted")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "telegram refused to delete message ", id, ": ", error.description,
          " (a bot may delete only messages less than 48 hours old, and "
          "others' messages only as an admin)"));
    }
    return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Outbound::Membership(
    const v1::Delivery& d, Target& target) {
  const v1::MembershipChanged& m = d.event().membership();
  std::string who = !d.sender_name().empty()           ? d.sender_name()
                    : !m.user().display_name().empty() ? m.user().display_name()
                                                       : m.user().id();
  TelegramText notice = ItalicNotice(
      absl::StrCat(who, m.joined() ? " joined the chat" : " left the chat"));
  // Through the journal like a post: a re-sent delivery does not post the
  // notice twice.
  Step send = [&](Target& t) -> absl::StatusOr<std::vector<std::string>> {
    absl::StatusOr<json> r = Call(t, "sendMessage", [&](const std::string&) {
      return json{{"text", notice.text},
                  {"entities", EntitiesToJson(notice.entities)},
                  {"disable_notification", true}};
    });
    if (!r.ok()) return r.status();
    return std::vector<std::string>{MessageIdOf(*r)};
  };
  return RunSteps(d, target, {send});
}

}  // namespace imbridge::adapters::telegram
