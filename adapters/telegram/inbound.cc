#include "adapters/telegram/inbound.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/unix_time.h"
#include "adapters/telegram/format.h"

namespace imbridge::adapters::telegram {
namespace {

using nlohmann::json;

constexpr char kPlatform[] = "telegram";

// The value of j[key] when it has the wanted type.
const json* Field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t IntField(const json& j, const char* key, int64_t fallback = 0) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_number_integer() ? f->get<int64_t>() : fallback;
}

std::string StringField(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : "";
}

bool BoolField(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

v1::UserRef UserOf(const json& user) {
  v1::UserRef u;
  u.set_platform(kPlatform);
  u.set_id(absl::StrCat(IntField(user, "id")));
  u.set_display_name(DisplayName(user));
  u.set_is_bot(BoolField(user, "is_bot"));
  return u;
}

// Who wrote `message`: the user, or for channel posts and anonymous admins
// the chat it was sent on behalf of.
v1::UserRef SenderOf(const json& message) {
  const json* sender_chat = Field(message, "sender_chat");
  const json* from = Field(message, "from");
  if (sender_chat != nullptr && sender_chat->is_object()) {
    v1::UserRef u;
    u.set_platform(kPlatform);
    u.set_id(absl::StrCat(IntField(*sender_chat, "id")));
    std::string signature = StringField(message, "author_signature");
    std::string title = StringField(*sender_chat, "title");
    u.set_display_name(!signature.empty() ? signature
                       : !title.empty()   ? title
                                          : u.id());
    return u;
  }
  if (from != nullptr && from->is_object()) return UserOf(*from);
  v1::UserRef u;
  u.set_platform(kPlatform);
  return u;
}

// The message's text or caption with its entities.
TelegramText TextOf(const json& message) {
  TelegramText t;
  if (const json* text = Field(message, "text"); text && text->is_string()) {
    t.text = text->get<std::string>();
    if (const json* e = Field(message, "entities")) {
      t.entities = EntitiesFromJson(*e);
    }
  } else if (const json* caption = Field(message, "caption");
             caption && caption->is_string()) {
    t.text = caption->get<std::string>();
    if (const json* e = Field(message, "caption_entities")) {
      t.entities = EntitiesFromJson(*e);
    }
  }
  return t;
}

std::string Suffixed(const std::string& unique_id, const char* prefix,
                     const char* extension) {
  return absl::StrCat(prefix, unique_id.empty() ? "" : "_", unique_id,
                      extension);
}

// The message's file, if any: fills `attachment` and returns the file
// object (with file_id), or null.
const json* FileOf(const json& message, v1::Attachment* a) {
  struct Candidate {
    const char* field;
    v1::Attachment::Kind kind;
    const char* prefix;
    const char* extension;
    const char* mime;
  };
  // Animation before document: a GIF arrives with both.
  static const Candidate kCandidates[] = {
      {"animation", v1::Attachment::ANIMATION, "animation", ".mp4",
       "video/mp4"},
      {"document", v1::Attachment::FILE, "file", "",
       "application/octet-stream"},
      {"video", v1::Attachment::VIDEO, "video", ".mp4", "video/mp4"},
      {"video_note", v1::Attachment::VIDEO, "video_note", ".mp4", "video/mp4"},
      {"audio", v1::Attachment::AUDIO, "audio", ".mp3", "audio/mpeg"},
      {"voice", v1::Attachment::VOICE, "voice", ".ogg", "audio/ogg"},
  };
  for (const Candidate& c : kCandidates) {
    const json* f = Field(message, c.field);
    if (f == nullptr || !f->is_object()) continue;
    std::string unique = StringField(*f, "file_unique_id");
    std::string name = StringField(*f, "file_name");
    if (name.empty() && std::string(c.field) == "audio") {
      std::string performer = StringField(*f, "performer");
      std::string title = StringField(*f, "title");
      if (!title.empty()) {
        name = performer.empty()
                   ? absl::StrCat(title, ".mp3")
                   : absl::StrCat(performer, " - ", title, ".mp3");
      }
    }
    if (name.empty()) name = Suffixed(unique, c.prefix, c.extension);
    std::string mime = StringField(*f, "mime_type");
    a->set_name(name);
    a->set_mime_type(mime.empty() ? c.mime : mime);
    a->set_size(static_cast<uint64_t>(IntField(*f, "file_size")));
    a->set_kind(c.kind);
    return f;
  }
  if (const json* photos = Field(message, "photo");
      photos != nullptr && photos->is_array() && !photos->empty()) {
    // PhotoSize objects go from the smallest to the largest.
    const json& f = photos->back();
    a->set_name(Suffixed(StringField(f, "file_unique_id"), "photo", ".jpg"));
    a->set_mime_type("image/jpeg");
    a->set_size(static_cast<uint64_t>(IntField(f, "file_size")));
    a->set_kind(v1::Attachment::IMAGE);
    return &f;
  }
  if (const json* s = Field(message, "sticker"); s && s->is_object()) {
    std::string unique = StringField(*s, "file_unique_id");
    if (BoolField(*s, "is_animated")) {
      a->set_name(Suffixed(unique, "sticker", ".tgs"));
      a->set_mime_type("application/x-tgsticker");
    } else if (BoolField(*s, "is_video")) {
      a->set_name(Suffixed(unique, "sticker", ".webm"));
      a->set_mime_type("video/webm");
    } else {
      a->set_name(Suffixed(unique, "sticker", ".webp"));
      a->set_mime_type("image/webp");
    }
    a->set_size(static_cast<uint64_t>(IntField(*s, "file_size")));
    a->set_kind(v1::Attachment::STICKER);
    return s;
  }
  return nullptr;
}

v1::Event NewEvent(const InboundContext& ctx, int64_t update_id,
                   const json& message, const std::string& chat_id) {
  v1::Event e;
  e.set_key(absl::StrCat("telegram:", ctx.account, ":", update_id));
  v1::ChannelRef* ch = e.mutable_channel();
  ch->set_platform(kPlatform);
  ch->set_account(ctx.account);
  ch->set_chat_id(chat_id);
  int64_t thread = IntField(message, "message_thread_id");
  if (thread != 0 && BoolField(message, "is_topic_message")) {
    ch->set_thread_id(absl::StrCat(thread));
  }
  return e;
}

}  // namespace

std::string DisplayName(const json& user) {
  std::string first = StringField(user, "first_name");
  std::string last = StringField(user, "last_name");
  if (!first.empty() || !last.empty()) {
    return (first.empty() || last.empty()) ? first + last
                                           : absl::StrCat(first, " ", last);
  }
  std::string username = StringField(user, "username");
  if (!username.empty()) return absl::StrCat("@", username);
  return absl::StrCat(IntField(user, "id"));
}

absl::StatusOr<InboundUpdate> TranslateUpdate(const json& update,
                                              const InboundContext& ctx) {
  if (!update.is_object()) {
    return absl::InvalidArgumentError("an update must be a JSON object");
  }
  const json* id = Field(update, "update_id");
  if (id == nullptr || !id->is_number_integer()) {
    return absl::InvalidArgumentError("update_id is missing");
  }
  InboundUpdate out;
  out.update_id = id->get<int64_t>();

  bool edited = false;
  const json* message = nullptr;
  for (const char* type : {"message", "channel_post"}) {
    if (const json* m = Field(update, type)) message = m;
  }
  for (const char* type : {"edited_message", "edited_channel_post"}) {
    if (const json* m = Field(update, type)) {
      message = m;
      edited = true;
    }
  }
  if (message == nullptr) {
    out.kind = InboundUpdate::Kind::kUnknown;
    out.reason = "unknown update type";
    for (const auto& item : update.items()) {
      if (item.key() != "update_id") out.reason = item.key();
    }
    return out;
  }
  if (!message->is_object()) {
    return absl::InvalidArgumentError("the message is not an object");
  }
  const json* chat = Field(*message, "chat");
  if (chat == nullptr || !chat->is_object() || !Field(*chat, "id") ||
      !(*chat)["id"].is_number_integer() || !Field(*message, "message_id") ||
      !(*message)["message_id"].is_number_integer()) {
    return absl::InvalidArgumentError(
        "the message lacks chat.id or message_id");
  }
  const int64_t telegram_chat = (*chat)["id"].get<int64_t>();
  const std::string now_chat_id = absl::StrCat(telegram_chat);

  // Migrations: the old group reports the new id, the new supergroup the
  // old one.
  if (int64_t to = IntField(*message, "migrate_to_chat_id"); to != 0) {
    out.kind = InboundUpdate::Kind::kMigration;
    out.migration = {now_chat_id, absl::StrCat(to)};
    return out;
  }
  if (int64_t from = IntField(*message, "migrate_from_chat_id"); from != 0) {
    out.kind = InboundUpdate::Kind::kMigration;
    out.migration = {absl::StrCat(from), now_chat_id};
    return out;
  }

  const json* from = Field(*message, "from");
  if (ctx.bot_id != 0 && from != nullptr &&
      IntField(*from, "id") == ctx.bot_id) {
    out.kind = InboundUpdate::Kind::kIgnored;
    out.reason = "own message";
    return out;
  }

  const std::string chat_id =
      ctx.original_chat_id ? ctx.original_chat_id(now_chat_id) : now_chat_id;
  const std::string message_id =
      absl::StrCat((*message)["message_id"].get<int64_t>());
  const int64_t date = IntField(*message, "date");

  // Members joining and leaving.
  const json* joined = Field(*message, "new_chat_members");
  const json* left = Field(*message, "left_chat_member");
  if ((joined != nullptr && joined->is_array()) ||
      (left != nullptr && left->is_object())) {
    std::vector<std::pair<const json*, bool>> members;
    if (joined != nullptr && joined->is_array()) {
      for (const json& u : *joined) members.emplace_back(&u, true);
    } else {
      members.emplace_back(left, false);
    }
    for (const auto& [user, is_join] : members) {
      if (!user->is_object()) continue;
      if (ctx.bot_id != 0 && IntField(*user, "id") == ctx.bot_id) continue;
      v1::Event e = NewEvent(ctx, out.update_id, *message, chat_id);
      if (members.size() > 1) {
        absl::StrAppend(e.mutable_key(), ":", IntField(*user, "id"));
      }
      e.set_occurred_at_ms(UnixSecondsToMillis(date));
      v1::MembershipChanged* m = e.mutable_membership();
      *m->mutable_user() = UserOf(*user);
      m->set_joined(is_join);
      out.events.push_back(std::move(e));
    }
    out.kind = out.events.empty() ? InboundUpdate::Kind::kIgnored
                                  : InboundUpdate::Kind::kEvents;
    if (out.events.empty()) out.reason = "own membership";
    return out;
  }

  TelegramText text = TextOf(*message);
  v1::Event e = NewEvent(ctx, out.update_id, *message, chat_id);
  if (edited) {
    int64_t edit_date = IntField(*message, "edit_date", date);
    e.set_occurred_at_ms(UnixSecondsToMillis(edit_date));
    v1::MessageEdited* m = e.mutable_edited();
    m->set_message_id(message_id);
    *m->mutable_editor() = SenderOf(*message);
    *m->mutable_text() = ToRichText(text);
    out.kind = InboundUpdate::Kind::kEvents;
    out.events.push_back(std::move(e));
    return out;
  }

  e.set_occurred_at_ms(UnixSecondsToMillis(date));
  v1::MessagePosted* m = e.mutable_posted();
  m->set_message_id(message_id);
  *m->mutable_sender() = SenderOf(*message);
  *m->mutable_text() = ToRichText(text);
  const int64_t thread = IntField(*message, "message_thread_id");
  const bool topic = thread != 0 && BoolField(*message, "is_topic_message");
  if (topic) m->set_thread_root_id(absl::StrCat(thread));
  if (const json* reply = Field(*message, "reply_to_message");
      reply != nullptr && reply->is_object()) {
    int64_t reply_id = IntField(*reply, "message_id");
    // In a forum topic every message "replies" to the topic's first
    // message; that is the thread, not a reply.
    if (reply_id != 0 && !(topic && reply_id == thread)) {
      m->set_reply_to_message_id(absl::StrCat(reply_id));
    }
  }
  v1::Attachment attachment;
  if (const json* file = FileOf(*message, &attachment)) {
    attachment.set_group_id(StringField(*message, "media_group_id"));
    std::string file_id = StringField(*file, "file_id");
    if (file_id.empty()) {
      attachment.set_unavailable_reason("Telegram gave no file id");
    } else if (attachment.size() > ctx.max_download_bytes) {
      attachment.set_unavailable_reason(
          absl::StrCat("larger than the ", FormatSize(ctx.max_download_bytes),
                       " a Telegram bot may download"));
    } else {
      out.files.push_back({file_id, StringField(*file, "file_unique_id"),
                           m->attachments_size()});
    }
    *m->add_attachments() = std::move(attachment);
  }
  if (m->text().text().empty() && m->attachments().empty()) {
    out.kind = InboundUpdate::Kind::kIgnored;
    out.reason = "nothing to mirror";
    return out;
  }
  out.kind = InboundUpdate::Kind::kEvents;
  out.events.push_back(std::move(e));
  return out;
}

}  // namespace imbridge::adapters::telegram
