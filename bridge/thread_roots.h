#ifndef IMBRIDGE_BRIDGE_THREAD_ROOTS_H_
#define IMBRIDGE_BRIDGE_THREAD_ROOTS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bridge/store.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

// Link members whose thread is rooted at a copy the bridge has not made yet
// (config.proto LinkMember.pending_thread_root): how their deliveries are
// parked, and how the root is looked up in the store.
//
// A pending member's deliveries go to a parked queue, an outbox queue named
// after the root ("~parked/<event id>/<chat key>") that the dispatcher
// never sends. The commit that records the root's copy moves the queue's
// deliveries, in order, to the thread's queue (CommitBatch::moves); the
// commit that dead-letters the root's delivery moves them to the whole
// chat's queue.

// The parked queue of the thread rooted at the copy of mirrored message
// `root_event` in chat `chat_key` (ChannelKey without thread).
std::string ParkedQueueKey(int64_t root_event, absl::string_view chat_key);

// Whether an outbox queue key is a parked queue.
bool IsParkedQueue(absl::string_view target_key);

// The root event and chat key a parked queue names; std::nullopt for any
// other key.
struct ParkedQueue {
  int64_t root_event = 0;
  std::string chat_key;
};
std::optional<ParkedQueue> ParseParkedQueue(absl::string_view target_key);

// The channel of a ChannelKey without thread ("platform/account/chat_id";
// platforms and accounts have no '/').
v1::ChannelRef ChatOfKey(absl::string_view chat_key);

// What became of a thread root.
struct ThreadRootState {
  enum Kind {
    // The copy's delivery is pending (or being retried).
    kPending,
    // The copy exists: `thread_id` is its native id (the first part).
    kThread,
    // No copy and none pending (dead-lettered, skipped, or the message was
    // never routed to the chat): the member stays the whole chat.
    kWholeChat,
  };
  Kind kind = kPending;
  std::string thread_id;
};

// Looks up, in committed data, the copy of mirrored message `root_event` in
// `chat` (its thread_id ignored) and, without one, whether a delivery of it
// to the chat is pending. Reads only; any thread.
absl::StatusOr<ThreadRootState> LookUpThreadRoot(Store& store,
                                                 int64_t root_event,
                                                 const v1::ChannelRef& chat);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_THREAD_ROOTS_H_
