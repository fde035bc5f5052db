#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/delivery_journal.h"

namespace imbridge::adapters::telegram {

// The chat ids of groups that Telegram migrated to supergroups
// (`migrate_to_chat_id`), per account, so that links keep naming the chat by
// the id they were configured with: events are published with the original
// id, and deliveries to the original id are sent to the newest one.
//
// The map is kept in the adapter's DeliveryJournal (named state values
// "telegram/chat_alias/<account>/<old id>" = "<new id>"); with no journal it
// lives in memory only. A `chat_aliases.json` written by earlier versions
// (`{"<account>": {"<old id>": "<new id>"}}`) is imported once by Load() and
// then renamed to `chat_aliases.json.imported`.
//
// Thread-safe. Record() blocks on a small journal write; the lookups do not.
class ChatAliases {
 public:
  // `journal` may be null (memory only) and must outlive the object;
  // `legacy_file` may be empty.
  ChatAliases(DeliveryJournal* journal, std::string legacy_file);

  // Imports the legacy file if it exists, then loads the aliases from the
  // journal. kDataLoss for an unreadable or malformed legacy file (nothing
  // is loaded or imported then); the journal's errors as they are.
  absl::Status Load();

  // Records that `old_id` became `new_id` in memory and in the journal.
  // Idempotent. kInvalidArgument when the ids are equal or empty, or when
  // the alias would form a cycle; the journal's error when it cannot be
  // written (the alias is kept in memory anyway).
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
  // Reads the legacy file into `forward`; false when there is none.
  absl::StatusOr<bool> ReadLegacyFile(
      absl::flat_hash_map<std::string, Map>* forward) const;
  void AddLocked(const std::string& account, const std::string& old_id,
                 const std::string& new_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  DeliveryJournal* const journal_;
  const std::string legacy_file_;
  mutable absl::Mutex mu_;
  // account -> old id -> new id, and the reverse.
  absl::flat_hash_map<std::string, Map> forward_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Map> backward_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_CHAT_ALIASES_H_
