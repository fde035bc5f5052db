#ifndef IMBRIDGE_BRIDGE_STORE_H_
#define IMBRIDGE_BRIDGE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

// One row of the outbox: an event to render in one target channel.
struct DeliveryRecord {
  // Outbox id, assigned by InsertDelivery; increases with insertion order.
  int64_t id = 0;
  // Row id of the event in the event log (InsertEvent's result).
  int64_t event_id = 0;
  // ChannelKey(target), with the thread if the member has one.
  std::string target_key;
  // The channel to render in.
  v1::ChannelRef target;
  // Name of the link that produced the delivery.
  std::string link;
  // The sender's name rendered with the member's format.
  std::string sender_name;
  // Attempts made so far (0 before the first).
  int attempts = 0;
  // When the delivery was written.
  absl::Time created_at = absl::InfinitePast();
  // Earliest time of the next attempt.
  absl::Time next_attempt_at = absl::InfinitePast();
  // Why the last attempt failed, if it did.
  std::string last_error;
  // The event itself; filled by the Load/List methods, ignored by
  // InsertDelivery.
  std::shared_ptr<const v1::Event> event;
};

// Where a native message sits in the message map.
struct MessageLocation {
  // Id of the mirrored message: the event id of the MessagePosted that
  // created it at its origin.
  int64_t group_id = 0;
  // True if this native message is a copy the bridge made; false if it is
  // the original.
  bool is_copy = false;
};

// A person's last known presence, as kept in the roster.
struct RosterEntry {
  std::string platform;
  std::string account;
  std::string user_id;
  std::string display_name;
  v1::Presence presence = v1::PRESENCE_UNSPECIFIED;
  std::string status_text;
  absl::Time updated_at = absl::InfinitePast();
};

// A dead letter's id and outbox queue, without its event: what bulk retry
// and drop need.
struct DeadLetterRef {
  int64_t id = 0;
  // ChannelKey(target) with thread, as in DeliveryRecord::target_key.
  std::string target_key;
};

// Someone who has posted in a channel, as kept for `!bridge who`.
struct Participant {
  std::string platform;
  std::string user_id;
  std::string display_name;
  absl::Time last_seen_at = absl::InfinitePast();
};

// What the blob store knows about a stored file.
struct BlobInfo {
  std::string blob_id;  // lower-case hex SHA-256
  uint64_t size = 0;
  absl::Time created_at = absl::InfinitePast();
  absl::Time last_used_at = absl::InfinitePast();
};

// The router's durable state: the event log (for dedupe), the outbox of
// deliveries, the message map, the presence roster and blob metadata.
// Backends are opened by their own headers (sqlite_store.h); this interface
// names no backend's types.
//
// Threading: one writer thread calls the write methods, always between
// Begin() and Commit()/Rollback(); they see the transaction's own uncommitted
// rows. The read methods may be called from any thread at any time,
// concurrently with the writer and with each other; they see committed data
// only. (The SQLite store reads through a small pool of connections; a read
// waits only when all of them are busy.)
//
// Errors: every method returns a Status; a storage failure is kInternal or
// kUnavailable (disk full, I/O error) with SQLite's message. The store never
// crashes on bad data.
class Store {
 public:
  virtual ~Store() = default;

  // --- Transactions (writer thread) ---------------------------------------

  // Starts a write transaction.
  virtual absl::Status Begin() = 0;
  // Commits it; with durability FULL the commit is on disk when this
  // returns.
  virtual absl::Status Commit() = 0;
  // Abandons the transaction; never fails.
  virtual void Rollback() = 0;

  // --- Writes (writer thread, inside a transaction) -----------------------

  // Records an accepted event in the event log. Returns its new row id, or
  // std::nullopt when an event with the same key is already in the log
  // (a duplicate), in which case nothing is written.
  virtual absl::StatusOr<std::optional<int64_t>> InsertEvent(
      const v1::Event& event, absl::Time received_at) = 0;

  // Records that the event `event_id` refers to blob `blob_id` (so that the
  // blob is kept while deliveries of the event are pending) and marks the
  // blob used now.
  virtual absl::Status AddEventBlob(int64_t event_id, absl::string_view blob_id,
                                    absl::Time now) = 0;

  // Writes a delivery to the outbox; returns its id.
  virtual absl::StatusOr<int64_t> InsertDelivery(
      const DeliveryRecord& delivery) = 0;

  // Removes a finished delivery (delivered, skipped or superseded).
  virtual absl::Status CompleteDelivery(int64_t id) = 0;

  // Records a failed attempt and when to try next.
  virtual absl::Status RescheduleDelivery(int64_t id, int attempts,
                                          absl::Time next_attempt_at,
                                          absl::string_view last_error) = 0;

  // Moves a delivery to the dead letters, with the reason.
  virtual absl::Status DeadLetterDelivery(int64_t id, absl::string_view reason,
                                          absl::Time now) = 0;

  // Puts a dead letter back into the outbox as a fresh pending delivery
  // (attempts 0, due now) keeping its id. NOT_FOUND if no such dead letter.
  virtual absl::Status RetryDeadLetter(int64_t id, absl::Time now) = 0;

  // Removes a dead letter for good. NOT_FOUND if no such dead letter.
  virtual absl::Status DropDeadLetter(int64_t id) = 0;

  // Adds native messages to the message map: `native_ids` (in order, part 0,
  // 1, ...) in channel `channel_key` belong to the mirrored message
  // `group_id`. `is_copy` says whether the bridge made them. Re-adding an
  // existing (channel, native id) pair is not an error and changes nothing.
  virtual absl::Status AddMessages(int64_t group_id,
                                   absl::string_view channel_key,
                                   absl::Span<const std::string> native_ids,
                                   bool is_copy, absl::Time now) = 0;

  // FindMessage on the writer's connection: also sees the rows the open
  // transaction added (an original and its echo may share a group commit).
  virtual absl::StatusOr<std::optional<MessageLocation>>
  FindMessageInTransaction(absl::string_view channel_key,
                           absl::string_view native_id) = 0;

  // Updates a person's presence in the roster (insert or replace).
  virtual absl::Status UpsertRoster(const RosterEntry& entry) = 0;

  // Records a stored blob (or refreshes last_used_at if it is known).
  virtual absl::Status RecordBlob(const BlobInfo& blob) = 0;

  // Forgets a blob's metadata (after its file was removed).
  virtual absl::Status DeleteBlob(absl::string_view blob_id) = 0;

  // Deletes events received before `before` that no pending or dead-letter
  // delivery needs, with their blob references. The message map is kept.
  // Returns how many events were removed.
  virtual absl::StatusOr<int64_t> PruneEvents(absl::Time before) = 0;

  // Saves (insert or replace) an operator-made record: `kind` "link" or
  // "webhook", `payload` its serialized proto.
  virtual absl::Status PutRecord(absl::string_view kind, absl::string_view name,
                                 absl::string_view payload) = 0;
  // Removes a record; kNotFound if there is none.
  virtual absl::Status DeleteRecord(absl::string_view kind,
                                    absl::string_view name) = 0;

  // Notes that `user` posted in `channel_key` (ChannelKey without thread).
  virtual absl::Status TouchParticipant(absl::string_view channel_key,
                                        const v1::UserRef& user,
                                        absl::Time now) = 0;

  // --- Reads (any thread, committed data) ---------------------------------

  // The stable id of this data directory's store, generated on creation.
  virtual std::string router_id() const = 0;

  // Targets (ChannelKey) that have pending deliveries.
  virtual absl::StatusOr<std::vector<std::string>> ListPendingTargets() = 0;

  // Up to `limit` pending (not dead) deliveries of `target_key` with id
  // greater than `after_id`, in id order, with their events.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> LoadPendingDeliveries(
      absl::string_view target_key, int64_t after_id, int limit) = 0;

  // Dead letters, newest first, at most `limit`, with their events and the
  // reason in `last_error`.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> ListDeadLetters(
      int limit) = 0;

  // How many dead letters there are (all targets).
  virtual absl::StatusOr<int64_t> CountDeadLetters() = 0;

  // Up to `limit` dead letters with id greater than `after_id`, in id order,
  // without their events: one page of a walk over all of them.
  virtual absl::StatusOr<std::vector<DeadLetterRef>> ListDeadLetterRefs(
      int64_t after_id, int limit) = 0;

  // The dead letter `id` without its event, or std::nullopt if there is no
  // such dead letter.
  virtual absl::StatusOr<std::optional<DeadLetterRef>> FindDeadLetter(
      int64_t id) = 0;

  // The targets that have dead letters, as (ChannelKey with thread, the
  // channel), sorted by key.
  virtual absl::StatusOr<std::vector<std::pair<std::string, v1::ChannelRef>>>
  ListDeadLetterTargets() = 0;

  // Pending and dead-letter counts for one target.
  struct TargetCounts {
    int64_t pending = 0;
    int64_t dead = 0;
    // When the delivery at the head of the queue (the lowest pending id, the
    // one being waited on) was written; a retried dead letter counts from
    // its retry. InfiniteFuture when nothing is pending.
    absl::Time oldest_pending = absl::InfiniteFuture();
  };
  virtual absl::StatusOr<TargetCounts> CountDeliveries(
      absl::string_view target_key) = 0;

  // Finds a native message in the message map.
  virtual absl::StatusOr<std::optional<MessageLocation>> FindMessage(
      absl::string_view channel_key, absl::string_view native_id) = 0;

  // Native ids of mirrored message `group_id` in `channel_key`, in part
  // order (originals and copies alike); empty if it has none there.
  virtual absl::StatusOr<std::vector<std::string>> FindMessagesInChannel(
      int64_t group_id, absl::string_view channel_key) = 0;

  // The roster entries of one platform (all platforms if empty).
  virtual absl::StatusOr<std::vector<RosterEntry>> ListRoster(
      absl::string_view platform) = 0;

  // A stored blob's metadata, or std::nullopt.
  virtual absl::StatusOr<std::optional<BlobInfo>> FindBlob(
      absl::string_view blob_id) = 0;

  // Blobs last used before `before` that no pending or dead-letter delivery
  // refers to.
  virtual absl::StatusOr<std::vector<std::string>> ListCollectableBlobs(
      absl::Time before) = 0;

  // The records of one kind as (name, payload), sorted by name.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
  ListRecords(absl::string_view kind) = 0;

  // Who has posted in `channel_key`, most recent first.
  virtual absl::StatusOr<std::vector<Participant>> ListParticipants(
      absl::string_view channel_key) = 0;
};

// "platform/account/chat_id", plus "#thread_id" when `with_thread` and the
// channel has one. The message map uses keys without thread; the outbox
// keys targets with it.
std::string ChannelKey(const v1::ChannelRef& channel, bool with_thread);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_STORE_H_
