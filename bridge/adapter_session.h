#ifndef IMBRIDGE_BRIDGE_ADAPTER_SESSION_H_
#define IMBRIDGE_BRIDGE_ADAPTER_SESSION_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/committer.h"
#include "common/metrics.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// Writes frames to an adapter's stream. Implemented by the Attach reactor;
// queues and returns at once (several queued frames may be merged into one).
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void Send(v1::RouterFrame frame) = 0;
  // Starts reading the stream again after backpressure paused it.
  virtual void ResumeReading() = 0;
  // Ends the stream (UNAVAILABLE with `reason`); the adapter attaches again.
  virtual void Detach(absl::string_view reason) = 0;
};

// One attached adapter: who it is, what it can do, and the deliveries it
// was sent and has not answered. Shared (std::shared_ptr) by its Attach
// reactor and the dispatcher; it outlives the stream, and sends to a closed
// stream are dropped.
//
// Thread-safe.
class AdapterSession {
 public:
  AdapterSession(uint64_t id, const v1::Hello& hello, uint32_t window,
                 std::string credential_name);

  uint64_t id() const { return id_; }
  const std::string& name() const { return hello_.adapter_name(); }
  const std::string& platform() const { return hello_.platform(); }
  const v1::Hello& hello() const { return hello_; }
  const std::string& credential_name() const { return credential_name_; }
  // Most deliveries in flight for this adapter.
  uint32_t window() const { return window_; }
  absl::Time connected_since() const { return connected_since_; }
  bool HasCapability(absl::string_view capability) const;

  // Connects or disconnects the stream. After Close(), Send drops.
  void SetSink(FrameSink* sink);
  void Close();

  // Remembers what was sent and writes it to the stream (one frame; the
  // deliveries are moved into it, not copied).
  void Send(google::protobuf::RepeatedPtrField<v1::Delivery> deliveries,
            std::vector<SentDelivery> sent);

  // Counts a publish's outcome in imbridge_router_events_total.
  void CountPublish(v1::PublishAck::Outcome outcome);

  // Why the stream stopped being read (imbridge_router_stream_pauses_total):
  // too many of its publishes wait behind their chats' groups, or the
  // committer's queue is full (the store is behind).
  enum class PauseReason { kHeldPublishes, kStoreBehind };
  void CountPause(PauseReason reason);

  // Writes a publish acknowledgement to the stream.
  void SendAck(v1::PublishAck ack);

  // Forwards a chat command addressed to this adapter (dropped if closed).
  void SendChatCommand(v1::ChatCommand command);

  // Answers one of the adapter's link requests (dropped if closed).
  void SendLinkReply(v1::LinkReply reply);

  // Resumes reading the stream, if it is still open.
  void ResumeReading();

  // Tells the adapter that webhook `webhook_id` was revoked. `applied` runs
  // once, on any thread: when the adapter acknowledged it (it refuses the
  // key from then on), or when the session closes (a detached adapter
  // forgets every key it knew). Runs at once if the session is closed.
  void SendWebhookRevocation(const std::string& webhook_id,
                             std::function<void()> applied);
  // The adapter's acknowledgement of revocation `id`.
  void RevocationApplied(uint64_t id);

  // Ends the stream; the adapter attaches again as a new session.
  void Detach(absl::string_view reason);

  // Removes and returns what was sent as delivery `id`, or nullopt if this
  // session never sent it (or it was answered already).
  std::optional<SentDelivery> TakeSent(uint64_t id);

  // Deliveries sent and not yet answered.
  size_t in_flight() const;

  // The last failed delivery's error, for `imbridgectl adapter list`.
  void NoteError(std::string error);
  std::string last_error() const;

 private:
  // Writes `frame` to the stream if it is open.
  void SendFrame(v1::RouterFrame frame);

  const uint64_t id_;
  const v1::Hello hello_;
  const uint32_t window_;
  const std::string credential_name_;
  const absl::Time connected_since_;
  absl::flat_hash_set<std::string> capabilities_;
  // imbridge_router_events_total of this platform, by outcome.
  std::array<metrics::Counter*, v1::PublishAck::Outcome_ARRAYSIZE> events_;
  // imbridge_router_stream_pauses_total of this platform, by reason.
  metrics::Counter* pauses_held_;
  metrics::Counter* pauses_store_;

  mutable absl::Mutex mu_;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  FrameSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::flat_hash_map<int64_t, SentDelivery> sent_ ABSL_GUARDED_BY(mu_);
  uint64_t next_revocation_ ABSL_GUARDED_BY(mu_) = 0;
  // Revocations sent and not acknowledged: their `applied` callbacks.
  absl::flat_hash_map<uint64_t, std::function<void()>> revocations_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ADAPTER_SESSION_H_
