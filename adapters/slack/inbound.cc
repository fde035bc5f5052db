#include "adapters/slack/inbound.h"

#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/attachment_kind.h"
#include "adapters/common/markup/slack_mrkdwn.h"
#include "adapters/common/unix_time.h"

namespace imbridge::adapters::slack {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

const json& Obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return kEmpty;
  return *it;
}

// True when `message` was posted by this app.
bool IsOwnPost(const json& message, const BotIdentity& self) {
  std::string bot_id = Str(message, "bot_id");
  std::string app_id = Str(message, "app_id");
  if (app_id.empty()) app_id = Str(Obj(message, "bot_profile"), "app_id");
  std::string user = Str(message, "user");
  if (!self.bot_id.empty() && bot_id == self.bot_id) return true;
  if (!self.app_id.empty() && app_id == self.app_id) return true;
  if (!self.user_id.empty() && user == self.user_id) return true;
  return false;
}

// True when `message` is the bridge's: the app's own post, or a copy the
// service user posted (as `is_copy` tells).
absl::StatusOr<bool> IsBridgePost(const json& message,
                                  absl::string_view channel,
                                  const BotIdentity& self,
                                  const CopyCheck& is_copy) {
  if (IsOwnPost(message, self)) return true;
  if (self.service_user_id.empty() || !is_copy) return false;
  if (Str(message, "user") != self.service_user_id ||
      !Str(message, "bot_id").empty()) {
    return false;
  }
  return is_copy(channel, message);
}

int64_t TsToMillis(absl::string_view ts) {
  double seconds = 0;
  if (!absl::SimpleAtod(ts, &seconds)) return 0;
  return UnixSecondsToMillis(seconds);
}

v1::UserRef UserFor(absl::string_view id, const UserLookup& lookup) {
  v1::UserRef ref;
  ref.set_platform("slack");
  ref.set_id(std::string(id));
  SlackUser user;
  if (lookup && !id.empty()) user = lookup(id);
  ref.set_display_name(user.display_name.empty() ? std::string(id)
                                                 : user.display_name);
  ref.set_avatar_url(user.avatar_url);
  ref.set_is_bot(user.is_bot);
  return ref;
}

// The sender of a message: a person, or another integration's bot.
v1::UserRef SenderOf(const json& message, const UserLookup& lookup) {
  std::string user = Str(message, "user");
  if (!user.empty()) return UserFor(user, lookup);
  v1::UserRef ref;
  ref.set_platform("slack");
  ref.set_id(Str(message, "bot_id"));
  std::string name = Str(message, "username");
  if (name.empty()) name = Str(Obj(message, "bot_profile"), "name");
  if (name.empty()) name = ref.id();
  ref.set_display_name(name);
  const json& icons = Obj(message, "icons");
  ref.set_avatar_url(Str(icons, "image_72"));
  ref.set_is_bot(true);
  return ref;
}

markup::UserNameResolver ResolverFor(const UserLookup& lookup) {
  if (!lookup) return nullptr;
  return [&lookup](absl::string_view id) { return lookup(id).display_name; };
}

void ConvertFiles(const json& message, v1::MessagePosted* posted,
                  std::vector<std::string>* urls) {
  auto it = message.find("files");
  if (it == message.end() || !it->is_array()) return;
  for (const json& f : *it) {
    if (!f.is_object()) continue;
    v1::Attachment* a = posted->add_attachments();
    std::string name = Str(f, "name");
    if (name.empty()) name = Str(f, "title");
    if (name.empty()) name = Str(f, "id");
    a->set_name(name);
    std::string mime = Str(f, "mimetype");
    if (mime.empty()) mime = "application/octet-stream";
    a->set_mime_type(mime);
    auto size = f.find("size");
    if (size != f.end() && size->is_number_unsigned()) {
      a->set_size(size->get<uint64_t>());
    }
    a->set_kind(AttachmentKindForMime(mime));
    std::string url = Str(f, "url_private_download");
    if (url.empty()) url = Str(f, "url_private");
    if (url.empty()) {
      std::string mode = Str(f, "mode");
      a->set_unavailable_reason(
          mode.empty()
              ? "Slack offers no download URL"
              : absl::StrCat("Slack offers no download URL (", mode, ")"));
    }
    urls->push_back(std::move(url));
  }
}

}  // namespace

absl::StatusOr<std::string> EventsRequestType(const json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError("the body is not a JSON object");
  }
  auto type = body.find("type");
  if (type == body.end()) return std::string();
  if (!type->is_string()) {
    return absl::InvalidArgumentError("the body's type is not a string");
  }
  return type->get<std::string>();
}

InboundConversion ConvertEventCallback(const json& callback,
                                       absl::string_view account,
                                       const BotIdentity& self,
                                       const UserLookup& lookup,
                                       const CopyCheck& is_copy) {
  InboundConversion out;
  const json& e = Obj(callback, "event");
  std::string event_id = Str(callback, "event_id");
  std::string type = Str(e, "type");
  std::string channel = Str(e, "channel");
  if (event_id.empty() || type.empty()) {
    out.ignored = "callback without event_id or event type";
    return out;
  }
  v1::Event event;
  event.set_key(absl::StrCat("slack:", account, ":", event_id));
  event.mutable_channel()->set_platform("slack");
  event.mutable_channel()->set_account(std::string(account));
  event.mutable_channel()->set_chat_id(channel);
  auto event_time = callback.find("event_time");
  if (event_time != callback.end() && event_time->is_number_integer()) {
    event.set_occurred_at_ms(UnixSecondsToMillis(event_time->get<int64_t>()));
  } else {
    event.set_occurred_at_ms(TsToMillis(Str(e, "event_ts")));
  }

  if (type == "member_joined_channel" || type == "member_left_channel") {
    std::string user = Str(e, "user");
    if (channel.empty() || user.empty()) {
      out.ignored = "membership event without channel or user";
      return out;
    }
    if (user == self.user_id ||
        (!self.service_user_id.empty() && user == self.service_user_id)) {
      out.ignored = "own membership";
      return out;
    }
    v1::MembershipChanged* m = event.mutable_membership();
    *m->mutable_user() = UserFor(user, lookup);
    m->set_joined(type == "member_joined_channel");
    out.event = std::move(event);
    return out;
  }
  if (type == "channel_created") {
    const json& c = Obj(e, "channel");
    SlackChannel created;
    created.id = Str(c, "id");
    created.name = Str(c, "name");
    created.creator = Str(c, "creator");
    out.ignored = "channel created";
    if (!created.id.empty()) out.created_channel = std::move(created);
    return out;
  }
  if (type == "channel_archive") {
    std::string user = Str(e, "user");
    if (channel.empty()) {
      out.ignored = "channel_archive without channel";
      return out;
    }
    v1::MessagePosted* p = event.mutable_posted();
    p->set_message_id(absl::StrCat(kChannelArchivePrefix, Str(e, "event_ts")));
    *p->mutable_sender() = UserFor(user, lookup);
    p->mutable_text()->set_text(kChannelArchivedText);
    out.event = std::move(event);
    return out;
  }
  if (type != "message") {
    out.ignored = absl::StrCat("unsupported event type ", type);
    return out;
  }
  if (channel.empty()) {
    out.ignored = "message without channel";
    return out;
  }
  std::string subtype = Str(e, "subtype");
  if (subtype.empty() || subtype == "thread_broadcast" ||
      subtype == "file_share" || subtype == "me_message" ||
      subtype == "bot_message") {
    absl::StatusOr<bool> own = IsBridgePost(e, channel, self, is_copy);
    if (!own.ok() || *own) {
      out.status = own.status();
      out.ignored = "own post";
      return out;
    }
    std::string ts = Str(e, "ts");
    if (ts.empty()) {
      out.ignored = "message without ts";
      return out;
    }
    v1::MessagePosted* p = event.mutable_posted();
    p->set_message_id(ts);
    *p->mutable_sender() = SenderOf(e, lookup);
    *p->mutable_text() =
        markup::MrkdwnToRichText(Str(e, "text"), ResolverFor(lookup));
    std::string thread_ts = Str(e, "thread_ts");
    if (!thread_ts.empty() && thread_ts != ts) {
      p->set_thread_root_id(thread_ts);
    }
    ConvertFiles(e, p, &out.file_urls);
    if (p->text().text().empty() && p->attachments_size() == 0) {
      out.ignored = "empty message";
      return out;
    }
    out.event = std::move(event);
    return out;
  }
  if (subtype == "message_changed") {
    const json& message = Obj(e, "message");
    const json& previous = Obj(e, "previous_message");
    absl::StatusOr<bool> own = IsBridgePost(message, channel, self, is_copy);
    if (!own.ok() || *own) {
      out.status = own.status();
      out.ignored = "own post";
      return out;
    }
    std::string ts = Str(message, "ts");
    if (ts.empty()) {
      out.ignored = "message_changed without message.ts";
      return out;
    }
    std::string text = Str(message, "text");
    if (previous.is_object() && previous.contains("text") &&
        Str(previous, "text") == text) {
      out.ignored = "text unchanged";
      return out;
    }
    v1::MessageEdited* ed = event.mutable_edited();
    ed->set_message_id(ts);
    std::string editor = Str(Obj(message, "edited"), "user");
    if (editor.empty()) editor = Str(message, "user");
    if (!editor.empty()) {
      *ed->mutable_editor() = UserFor(editor, lookup);
    } else {
      *ed->mutable_editor() = SenderOf(message, lookup);
    }
    *ed->mutable_text() = markup::MrkdwnToRichText(text, ResolverFor(lookup));
    out.event = std::move(event);
    return out;
  }
  if (subtype == "message_deleted") {
    const json& previous = Obj(e, "previous_message");
    if (previous.is_object() && !previous.empty()) {
      absl::StatusOr<bool> own = IsBridgePost(previous, channel, self, is_copy);
      if (!own.ok() || *own) {
        out.status = own.status();
        out.ignored = "own post";
        return out;
      }
    }
    std::string deleted_ts = Str(e, "deleted_ts");
    if (deleted_ts.empty()) deleted_ts = Str(previous, "ts");
    if (deleted_ts.empty()) {
      out.ignored = "message_deleted without deleted_ts";
      return out;
    }
    v1::MessageDeleted* d = event.mutable_deleted();
    d->set_message_id(deleted_ts);
    out.event = std::move(event);
    return out;
  }
  out.ignored = absl::StrCat("unsupported subtype ", subtype);
  return out;
}

}  // namespace imbridge::adapters::slack
