#ifndef IMBRIDGE_BRIDGE_PUBLISH_SEQUENCER_H_
#define IMBRIDGE_BRIDGE_PUBLISH_SEQUENCER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// The detail of the FAILED answer to a publish that was not stored because
// an earlier publish of its chat was not.
inline constexpr char kBehindFailed[] =
    "an earlier event of the same chat was not stored; publish it again first";

// Keeps the order of one adapter stream's publishes per origin chat between
// the stream and the store, while the adapter has several of a chat in
// flight (Publish.after_seq).
//
// A chat has at most one group of publishes in the committer at a time:
// publishes of a chat that arrive while its group is being committed are
// held, and handed to the committer together (in stream order, as one
// group, usually one group commit) once every publish of the group was
// acknowledged. So a publish is committed only after the outcome of the
// chat's earlier publishes is known, and one whose `after_seq` failed
// (FAILED, not stored) is answered FAILED without being stored: the adapter
// publishes it again after the failed one. Remembers the last
// `max_failed_seqs` failed seqs (default 4096); an adapter refers to a
// failed seq only until it has seen its acknowledgement.
//
// Within one group, the committer stores nothing of a chat behind a
// publish of it that it failed to store (its retry one operation at a time
// after a failed group commit answers the later ones FAILED too; see
// Committer). The set of failed seqs is the stream's: after a reconnect the
// adapter's client refuses what it sends behind a publish that failed on an
// earlier stream (RouterClient).
//
// A publish `answered_first` says so of (a chat command, which the
// committer answers before it queues it, so that a publish handed over
// with it would be stored first) ends its group: the chat's publishes
// behind it are held until it was acknowledged, like the next group.
//
// Thread-safe. `commit` is called in each chat's order, under the
// sequencer's lock, and must not block or call back into the sequencer
// (Committer::Publish queues); `answer` is called without the lock.
class PublishSequencer : public std::enable_shared_from_this<PublishSequencer> {
 public:
  // Hands an event to the committer; `done` gets its acknowledgement later
  // (on another thread), its seq unset.
  using Commit = std::function<void(
      v1::Event event, std::function<void(const v1::PublishAck&)> done)>;
  // Sends an acknowledgement (seq set) to the adapter.
  using Answer = std::function<void(v1::PublishAck ack)>;

  // Whether the committer answers an event before it queues it
  // (Committer::AnswersFirst); null: none is.
  using AnsweredFirst = std::function<bool(const v1::Event& event)>;

  PublishSequencer(Commit commit, Answer answer,
                   AnsweredFirst answered_first = nullptr,
                   size_t max_failed_seqs = 4096);

  // Takes one publish of the stream, in stream order. The object must be
  // owned by a std::shared_ptr (the committer's callbacks keep it alive).
  void Publish(v1::Publish publish);

  // Chats with publishes in the committer or held (for tests).
  size_t chats() const;

  // Publishes held behind their chat's group in the committer (for tests).
  size_t held() const;

  // Whether the stream may be read further: true while fewer than `limit`
  // publishes are held. Otherwise returns false and runs `resume` once,
  // without the lock and on the thread of an acknowledgement, when the held
  // publishes went under `limit`. (The committer's own admission,
  // Committer::AdmitOrWait, does not see publishes held here: without this
  // an adapter with many in flight in a few chats fills the router's
  // memory.) At most one `resume` waits at a time.
  bool AdmitOrWait(size_t limit, std::function<void()> resume);

 private:
  struct Chat {
    // Publishes of the chat handed to the committer and not acknowledged.
    size_t committing = 0;
    // Publishes that arrived meanwhile, in stream order.
    std::deque<v1::Publish> held;
  };
  using Answers = std::vector<v1::PublishAck>;

  // Hands `publish` to the committer, or answers it FAILED when it is
  // ordered after a failed one.
  void StartLocked(const std::string& chat_key, Chat& chat, v1::Publish publish,
                   Answers* answers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Committed(const std::string& chat_key, uint64_t seq,
                 const v1::PublishAck& ack);
  void NoteFailedLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Commit commit_;
  const Answer answer_;
  const AnsweredFirst answered_first_;
  const size_t max_failed_seqs_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Chat> chats_ ABSL_GUARDED_BY(mu_);
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  size_t resume_below_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> resume_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> failed_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> failed_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_PUBLISH_SEQUENCER_H_
