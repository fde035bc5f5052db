#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_INBOUND_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_INBOUND_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {

// A file of an inbound message still to be copied into the blob store.
struct FileToFetch {
  std::string file_id;         // For getFile.
  std::string file_unique_id;  // Stable across retries; a cache key.
  // Index into the first event's posted().attachments(), whose name, MIME
  // type, size, kind and group id are already set.
  int attachment_index = 0;
};

// A group that Telegram migrated to a supergroup.
struct ChatMigration {
  std::string old_chat_id;
  std::string new_chat_id;
};

// What one Update means to the bridge.
struct InboundUpdate {
  enum class Kind {
    kEvents,     // `events` are to be published (after fetching `files`).
    kMigration,  // `migration` is to be recorded; nothing is published.
    kIgnored,    // A known update with nothing to mirror (the bot's own
                 // message, a service message, an empty message, ...).
    kUnknown,    // An update type the adapter does not handle.
  };
  int64_t update_id = 0;
  Kind kind = Kind::kIgnored;
  // Why it is ignored or unknown (the update type), for logs and metrics.
  std::string reason;
  std::vector<v1::Event> events;
  std::vector<FileToFetch> files;
  ChatMigration migration;
};

// What the translation needs to know about the account.
struct InboundContext {
  std::string account;
  // The bot's own user id; its messages are never mirrored.
  int64_t bot_id = 0;
  // Files larger than this are not downloaded; the attachment carries an
  // unavailable_reason with the limit instead.
  uint64_t max_download_bytes = 20 << 20;
  // Maps a chat id Telegram uses now to the id links know it by (chat
  // migrations); identity when unset.
  std::function<std::string(const std::string&)> original_chat_id;
};

// Translates one Update (already parsed JSON) into bridge events, without
// any I/O. Handles `message`, `edited_message`, `channel_post` and
// `edited_channel_post`: text or caption with entities, replies
// (`reply_to_message`, not the implicit reply to a forum topic's first
// message), forum topics (`message_thread_id` of a topic message) as the
// channel's thread, one file (document, largest photo, video, audio, voice,
// animation, sticker, video note) with the album's `media_group_id` as its
// group id, members joining and leaving, and chat migrations. Event keys
// are "telegram:<account>:<update_id>" (with ":<user id>" for each member
// of a multi-member join).
//
// kInvalidArgument when `update` is not an object with an integer
// `update_id` (the webhook answers 400). Thread-safe.
absl::StatusOr<InboundUpdate> TranslateUpdate(const nlohmann::json& update,
                                              const InboundContext& context);

// The display name of a Telegram User object: first and last name, else
// "@username", else the id.
std::string DisplayName(const nlohmann::json& user);

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_INBOUND_H_
