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
  // Outbox id, assigned by Store::Apply; increases with insertion order.
  int64_t id = 0;
  // Id of the event in the event log.
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
  // Store::Apply.
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

// A message-map row set: native messages of one mirrored message in one
// channel, in part order.
struct MessageRows {
  // The mirrored message: the event id of the MessagePosted that created it.
  int64_t group_id = 0;
  // ChannelKey without thread.
  std::string channel_key;
  // Part 0, 1, ...; empty ids are skipped (they cannot be looked up).
  std::vector<std::string> native_ids;
  // Whether the bridge made them (copies) or they are the original.
  bool is_copy = false;
};

// A failed attempt of a pending delivery, and when to try next.
struct DeliveryRetry {
  int64_t id = 0;
  int attempts = 0;
  absl::Time next_attempt_at = absl::InfinitePast();
  std::string last_error;
};

// A pending delivery that becomes a dead letter.
struct DeliveryDeadLetter {
  int64_t id = 0;
  std::string reason;
};

// Someone who posted in a chat, as written for `!bridge who`.
struct ParticipantSeen {
  // ChannelKey without thread.
  std::string channel_key;
  // The sender, with its platform filled in.
  v1::UserRef user;
};

// Pending deliveries of one outbox queue moved to another, keeping their
// ids (and so their order): a parked queue whose thread root was resolved
// (bridge/thread_roots.h).
struct QueueMove {
  // The queue emptied (a target key).
  std::string from_key;
  // The queue and channel its deliveries go to.
  std::string to_key;
  v1::ChannelRef to_target;
};

// An accepted event and what is written with it in the same commit.
struct NewEvent {
  // The event; its key deduplicates.
  std::shared_ptr<const v1::Event> event;
  // The event serialized; made by the caller (off the writer thread). The
  // store serializes `event` itself when this is empty.
  std::string payload;
  // The original's message-map row (MessagePosted): its chat (ChannelKey
  // without thread) and native id; empty `original_message_id` for none.
  std::string original_chat_key;
  std::string original_message_id;
  // Blobs the event refers to: kept while its deliveries are pending, and
  // marked used at the commit.
  std::vector<std::string> blob_ids;
  // One per target. Apply fills in `id` and `event_id`; `event` is not
  // stored (the event is).
  std::vector<DeliveryRecord> deliveries;

  // Out (Apply): the event's new id, or 0 when an event with the same key
  // was already in the log (a duplicate); then nothing of this entry was
  // written.
  int64_t id = 0;
};

// Everything one group commit writes: one call of Store::Apply. A network
// backend turns it into one round trip.
struct CommitBatch {
  // The commit's time: received_at of new events, created_at of message-map
  // rows, dead_at of dead letters, blobs' last use, participants' last seen.
  absl::Time now = absl::InfinitePast();
  // New events, in arrival order (ids are handed out in this order, and
  // delivery ids after them in the same order).
  std::vector<NewEvent> events;
  // Copies the bridge made, from delivery results. Re-adding an existing
  // (channel, native id) pair changes nothing.
  std::vector<MessageRows> messages;
  // Finished deliveries (delivered, skipped or superseded): removed.
  std::vector<int64_t> completed;
  // Failed attempts to try again later.
  std::vector<DeliveryRetry> retries;
  // Deliveries that gave up.
  std::vector<DeliveryDeadLetter> dead_letters;
  // Presence updates (insert or replace), in order.
  std::vector<RosterEntry> roster;
  // Posters to note as participants of their chat.
  std::vector<ParticipantSeen> participants;
  // Queues whose pending deliveries change queue, after the events above
  // are written.
  std::vector<QueueMove> moves;

  bool empty() const {
    return events.empty() && messages.empty() && completed.empty() &&
           retries.empty() && dead_letters.empty() && roster.empty() &&
           participants.empty() && moves.empty();
  }
};

// The router's durable state: the event log (for dedupe), the outbox of
// deliveries, the message map, the presence roster and blob metadata.
// Backends are opened by their own headers (sqlite_store.h); this interface
// names no backend's types.
//
// Writes: the relay path writes with Apply, one call per group commit. The
// operator's rare writes (records, dead-letter retry and drop, blob
// metadata, pruning) run between Begin() and Commit()/Rollback(), never
// while an Apply runs. One writer thread makes all write calls.
// The read methods may be called from any thread at any time, concurrently
// with the writer and with each other; they see committed data only. (The
// SQLite store reads through a small pool of connections; a read waits
// only when all of them are busy.)
//
// Errors: every method returns a Status; a storage failure is kInternal or
// kUnavailable (disk full, I/O error) with the backend's message. The store
// never crashes on bad data.
class Store {
 public:
  virtual ~Store() = default;

  // --- The relay path (writer thread) -------------------------------------

  // Writes `batch` in one transaction; on failure nothing of it is written.
  // When it returns OK the batch is committed: visible to reads and safe
  // from a crash of the process, but with durability FULL on disk (safe
  // from power loss) only after a Sync() that starts after it returned. Applies
  // the new events in order (an event whose key is already in the log, or
  // earlier in the batch, is a duplicate: its `id` stays 0 and nothing of its
  // entry is written), then copies, completions, retries, dead letters, roster,
  // participants and queue moves. Completing, retrying or dead-lettering an
  // unknown or finished delivery changes nothing and is not an error. Fills in
  // the ids of the new events and deliveries. Must not be called inside
  // Begin().
  virtual absl::Status Apply(CommitBatch& batch) = 0;

  // Makes every commit that returned before the call durable (on disk with
  // durability FULL; nothing to do with NORMAL). Thread-safe, and meant to
  // run on a thread of its own while the writer applies the next batch:
  // the writer never waits for the disk, and one Sync covers every commit
  // made meanwhile.
  virtual absl::Status Sync() = 0;

  // --- Operator writes (writer thread, inside Begin()..Commit()) ----------

  // Starts a write transaction.
  virtual absl::Status Begin() = 0;
  // Commits it, as Apply does (durable after the next Sync()).
  virtual absl::Status Commit() = 0;
  // Abandons the transaction; never fails.
  virtual void Rollback() = 0;

  // Puts a dead letter back into the outbox as a fresh pending delivery
  // (attempts 0, due now) keeping its id. NOT_FOUND if no such dead letter.
  virtual absl::Status RetryDeadLetter(int64_t id, absl::Time now) = 0;

  // Removes a dead letter for good. NOT_FOUND if no such dead letter.
  virtual absl::Status DropDeadLetter(int64_t id) = 0;

  // Records a stored blob (or refreshes last_used_at if it is known).
  virtual absl::Status RecordBlob(const BlobInfo& blob) = 0;

  // Forgets a blob's metadata if it is still collectable: last used before
  // `unused_before` and referred to by no delivery (pending or dead). Returns
  // whether it did. Routers sharing a store and a blob directory remove a
  // blob's file only after this returned true and before the commit: the
  // row stays locked (deleted) until then, so a router recording the same
  // blob meanwhile waits, and moves its file into place after (see
  // StoreUploadedBlob in bridge/blob_store.h).
  virtual absl::StatusOr<bool> DeleteBlob(absl::string_view blob_id,
                                          absl::Time unused_before) = 0;

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

  // --- Reads (any thread, committed data) ---------------------------------

  // The stable id of this data directory's store, generated on creation.
  virtual std::string router_id() const = 0;

  // Targets (ChannelKey) that have pending deliveries.
  virtual absl::StatusOr<std::vector<std::string>> ListPendingTargets() = 0;

  // Up to `limit` pending (not dead) deliveries of `target_key` with id
  // greater than `after_id`, in id order, with their events.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> LoadPendingDeliveries(
      absl::string_view target_key, int64_t after_id, int limit) = 0;

  // Up to `limit` dead letters with id below `before_id` (any id when it is
  // 0), highest id (the most recently written delivery) first, with their
  // events and the reason in `last_error`: one page of a walk from the
  // newest; the next page is below the last id of this one.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> ListDeadLetters(
      int64_t before_id, int limit) = 0;

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

  // FindMessage for many (channel key, native id) pairs in one read of
  // committed data (one round trip); the results in the same order.
  virtual absl::StatusOr<std::vector<std::optional<MessageLocation>>>
  FindMessages(
      absl::Span<const std::pair<std::string, std::string>> messages) = 0;

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
  // One record's payload, or std::nullopt if there is none. This default
  // reads them all (ListRecords); a store shared by several routers reads
  // the one row.
  virtual absl::StatusOr<std::optional<std::string>> GetRecord(
      absl::string_view kind, absl::string_view name);

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
