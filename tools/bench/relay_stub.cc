#include "tools/bench/relay_stub.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace imbridge::bench {

grpc::Status RelayStub::Attach(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::RouterFrame, v1::AdapterFrame>* stream) {
  v1::AdapterFrame frame;
  if (!stream->Read(&frame) || !frame.has_hello()) {
    return grpc::Status(grpc::INVALID_ARGUMENT, "expected hello");
  }
  const std::string platform = frame.hello().platform();
  std::shared_ptr<Destination> self;
  if (absl::StartsWith(platform, "dst")) {
    self = std::make_shared<Destination>();
    self->stream = stream;
    self->window = frame.hello().max_in_flight() == 0
                       ? 1024
                       : frame.hello().max_in_flight();
  }
  {
    v1::RouterFrame welcome;
    welcome.mutable_welcome()->set_router_id("relay-stub");
    // Nobody writes to this stream before it is in destinations_.
    stream->Write(welcome);
  }
  if (self != nullptr) {
    absl::MutexLock lock(&mu_);
    destinations_[platform] = self;
  }
  const std::string target_platform =
      absl::StartsWith(platform, "src") ? "dst" + platform.substr(3) : "";
  while (stream->Read(&frame)) {
    if (self != nullptr && frame.results_size() > 0) {
      absl::MutexLock lock(&self->mu);
      uint32_t done = static_cast<uint32_t>(frame.results_size());
      self->in_flight = self->in_flight > done ? self->in_flight - done : 0;
      Pump(*self);
    }
    if (frame.publishes_size() == 0) continue;
    v1::RouterFrame acks;
    std::deque<v1::Delivery> deliveries;
    uint64_t first_id;
    {
      absl::MutexLock lock(&mu_);
      first_id = next_id_ + 1;
      next_id_ += static_cast<uint64_t>(frame.publishes_size()) * fanout_;
    }
    uint64_t id = first_id;
    for (int i = 0; i < frame.publishes_size(); ++i) {
      v1::Publish& publish = *frame.mutable_publishes(i);
      v1::PublishAck* ack = acks.add_publish_acks();
      ack->set_seq(publish.seq());
      ack->set_outcome(v1::PublishAck::ACCEPTED);
      for (int k = 0; k < fanout_; ++k) {
        v1::Delivery d;
        d.set_id(id++);
        *d.mutable_target() = publish.event().channel();
        d.mutable_target()->set_platform(target_platform);
        if (k > 0) {
          d.mutable_target()->set_chat_id(
              absl::StrCat(publish.event().channel().chat_id(), "-", k));
        }
        d.set_sender_name(publish.event().posted().sender().display_name());
        if (k + 1 < fanout_) {
          *d.mutable_event() = publish.event();
        } else {
          *d.mutable_event() = std::move(*publish.mutable_event());
        }
        deliveries.push_back(std::move(d));
      }
    }
    std::shared_ptr<Destination> to = DestinationFor(target_platform);
    if (to != nullptr) Send(*to, std::move(deliveries));
    // A source is never a destination, so its stream has one writer.
    stream->Write(acks);
  }
  if (self != nullptr) {
    absl::MutexLock lock(&mu_);
    absl::MutexLock self_lock(&self->mu);
    self->gone = true;
    destinations_.erase(platform);
  }
  return context->IsCancelled() ? grpc::Status::CANCELLED : grpc::Status::OK;
}

std::shared_ptr<RelayStub::Destination> RelayStub::DestinationFor(
    const std::string& platform) {
  absl::MutexLock lock(&mu_);
  auto it = destinations_.find(platform);
  return it == destinations_.end() ? nullptr : it->second;
}

void RelayStub::Send(Destination& to, std::deque<v1::Delivery> deliveries) {
  absl::MutexLock lock(&to.mu);
  for (v1::Delivery& d : deliveries) to.waiting.push_back(std::move(d));
  Pump(to);
}

void RelayStub::Pump(Destination& to) {
  if (to.gone) return;
  v1::RouterFrame frame;
  while (!to.waiting.empty() && to.in_flight < to.window) {
    *frame.add_deliveries() = std::move(to.waiting.front());
    to.waiting.pop_front();
    ++to.in_flight;
  }
  if (frame.deliveries_size() > 0) to.stream->Write(frame);
}

}  // namespace imbridge::bench
