#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace imbridge::adapters::telegram {

// The chat ids of groups that Telegram migrated to supergroups
// (`migrate_to_chat_id`), per account, so that links keep naming the chat by
// the id they were configured with: events are published with the original
// id, and deliveries to the original id are sent to the newest one.
//
// The map is kept in a small JSON file (`{"<account>": {"<old id>": "<new
// id>"}}`) rewritten atomically on each change; with an empty path it lives
// in memory only.
//
// Thread-safe. Record() blocks on a small file write; the lookups do not.
class ChatAliases {
 public:
  // `path` may be empty (memory only).
  explicit ChatAliases(std::string path);

  // Reads the file if it exists. kDataLoss for an unreadable or malformed
  // file (nothing is loaded then).
  absl::Status Load();

  // Records that `old_id` became `new_id` and saves the file. Idempotent.
  // kInvalidArgument when the ids are equal or empty, or when the alias
  // would form a cycle; kInternal when the file cannot be written (the alias
  // is kept in memory anyway).
  absl::Status Record(absl::string_view account, absl::string_view old_id,
                      absl::string_view new_id);

  // The chat id to talk to Telegram with for a linked `chat_id`: the end of
  // its migration chain, or `chat_id` itself.
  std::string Current(absl::string_view account,
                      absl::string_view chat_id) const;

  // The id links know a chat by: the start of the migration chain that ends
  // in `chat_id`, or `chat_id` itself.
  std::string Original(absl::string_view account,
                       absl::string_view chat_id) const;

 private:
  using Map = absl::flat_hash_map<std::string, std::string>;
  absl::Status SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  // account -> old id -> new id, and the reverse.
  absl::flat_hash_map<std::string, Map> forward_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Map> backward_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_
