#include "bridge/adapter_session.h"

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"

namespace imbridge::bridge {

AdapterSession::AdapterSession(uint64_t id, const v1::Hello& hello,
                               uint32_t window, std::string credential_name)
    : id_(id),
      hello_(hello),
      window_(window),
      credential_name_(std::move(credential_name)),
      connected_since_(absl::Now()),
      capabilities_(hello.capabilities().begin(), hello.capabilities().end()) {
  events_.fill(nullptr);
  // Every outcome but OUTCOME_UNSPECIFIED, which the router never sends.
  for (int o = 1; o < static_cast<int>(events_.size()); ++o) {
    events_[o] = &metrics::Registry::Default().GetCounter(
        "imbridge_router_events_total",
        "Events adapters published, by platform and outcome.",
        {{"platform", hello_.platform()},
         {"outcome", absl::AsciiStrToLower(v1::PublishAck::Outcome_Name(
                         static_cast<v1::PublishAck::Outcome>(o)))}});
  }
  auto pauses = [&](const char* reason) {
    return &metrics::Registry::Default().GetCounter(
        "imbridge_router_stream_pauses_total",
        "Times an adapter's stream stopped being read because the router was "
        "behind, by platform and reason.",
        {{"platform", hello_.platform()}, {"reason", reason}});
  };
  pauses_held_ = pauses("held_publishes");
  pauses_store_ = pauses("store_behind");
}

void AdapterSession::CountPublish(v1::PublishAck::Outcome outcome) {
  int o = static_cast<int>(outcome);
  if (o >= 0 && o < static_cast<int>(events_.size()) && events_[o] != nullptr) {
    events_[o]->Increment();
  }
}

void AdapterSession::CountPause(PauseReason reason) {
  (reason == PauseReason::kHeldPublishes ? pauses_held_ : pauses_store_)
      ->Increment();
}

bool AdapterSession::HasCapability(absl::string_view capability) const {
  return capabilities_.contains(capability);
}

void AdapterSession::SetSink(FrameSink* sink) {
  absl::MutexLock lock(&mu_);
  sink_ = sink;
}

void AdapterSession::Close() {
  absl::flat_hash_map<uint64_t, std::function<void()>> revocations;
  {
    absl::MutexLock lock(&mu_);
    sink_ = nullptr;
    sent_.clear();
    revocations.swap(revocations_);
  }
  for (auto& [id, applied] : revocations) applied();
}

void AdapterSession::SendWebhookRevocation(const std::string& webhook_id,
                                           std::function<void()> applied) {
  {
    absl::MutexLock lock(&mu_);
    if (sink_ != nullptr) {
      uint64_t id = ++next_revocation_;
      revocations_[id] = std::move(applied);
      v1::RouterFrame frame;
      v1::WebhookRevocation* revocation = frame.add_webhook_revocations();
      revocation->set_id(id);
      revocation->set_webhook_id(webhook_id);
      sink_->Send(std::move(frame));
      return;
    }
  }
  applied();
}

void AdapterSession::RevocationApplied(uint64_t id) {
  std::function<void()> applied;
  {
    absl::MutexLock lock(&mu_);
    auto it = revocations_.find(id);
    if (it == revocations_.end()) return;
    applied = std::move(it->second);
    revocations_.erase(it);
  }
  applied();
}

void AdapterSession::Detach(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  if (sink_ != nullptr) sink_->Detach(reason);
}

void AdapterSession::Send(
    google::protobuf::RepeatedPtrField<v1::Delivery> deliveries,
    std::vector<SentDelivery> sent) {
  absl::MutexLock lock(&mu_);
  if (sink_ == nullptr) return;
  for (SentDelivery& s : sent) {
    int64_t id = s.id;
    sent_[id] = std::move(s);
  }
  v1::RouterFrame frame;
  frame.mutable_deliveries()->Swap(&deliveries);
  sink_->Send(std::move(frame));
}

void AdapterSession::SendFrame(v1::RouterFrame frame) {
  absl::MutexLock lock(&mu_);
  if (sink_ != nullptr) sink_->Send(std::move(frame));
}

void AdapterSession::SendAck(v1::PublishAck ack) {
  v1::RouterFrame frame;
  *frame.add_publish_acks() = std::move(ack);
  SendFrame(std::move(frame));
}

void AdapterSession::SendChatCommand(v1::ChatCommand command) {
  v1::RouterFrame frame;
  *frame.add_chat_commands() = std::move(command);
  SendFrame(std::move(frame));
}

void AdapterSession::SendLinkReply(v1::LinkReply reply) {
  v1::RouterFrame frame;
  *frame.add_link_replies() = std::move(reply);
  SendFrame(std::move(frame));
}

void AdapterSession::ResumeReading() {
  absl::MutexLock lock(&mu_);
  if (sink_ != nullptr) sink_->ResumeReading();
}

std::optional<SentDelivery> AdapterSession::TakeSent(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = sent_.find(static_cast<int64_t>(id));
  if (it == sent_.end()) return std::nullopt;
  SentDelivery s = std::move(it->second);
  sent_.erase(it);
  return s;
}

size_t AdapterSession::in_flight() const {
  absl::MutexLock lock(&mu_);
  return sent_.size();
}

void AdapterSession::NoteError(std::string error) {
  absl::MutexLock lock(&mu_);
  last_error_ = std::move(error);
}

std::string AdapterSession::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace imbridge::bridge
