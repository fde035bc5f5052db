#ifndef IMBRIDGE_TOOLS_BENCH_RELAY_STUB_H_
#define IMBRIDGE_TOOLS_BENCH_RELAY_STUB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "imbridge/v1/router.grpc.pb.h"

namespace imbridge::bench {

// The bench's ceiling: the Router protocol with no store. A relay of the
// bench's shape only: an adapter of platform "srcN" publishes, and each event
// is acknowledged at once and handed as a delivery to the adapter of platform
// "dstN", in the same chat (with a fan-out of K, also in chats "<chat>-1" ..
// "<chat>-<K-1>", as the bench links them). It keeps each destination's window
// of in-flight deliveries like the router does, and nothing else: no links, no
// dedupe, no durability. The same frames as the real router, so durable /
// ceiling is the cost of the store.
//
// Thread-safety: gRPC's sync server calls Attach on its own threads; writes
// to one stream are serialized by its session's mutex.
class RelayStub final : public v1::Router::Service {
 public:
  explicit RelayStub(int fanout = 1) : fanout_(fanout) {}

  grpc::Status Attach(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::RouterFrame, v1::AdapterFrame>* stream)
      override;

 private:
  // One attached destination adapter.
  struct Destination {
    grpc::ServerReaderWriter<v1::RouterFrame, v1::AdapterFrame>* stream;
    uint32_t window = 0;
    absl::Mutex mu;
    uint32_t in_flight ABSL_GUARDED_BY(mu) = 0;
    std::deque<v1::Delivery> waiting ABSL_GUARDED_BY(mu);
    bool gone ABSL_GUARDED_BY(mu) = false;
  };

  // Queues `deliveries` for `to` and sends what its window allows.
  static void Send(Destination& to, std::deque<v1::Delivery> deliveries);
  // Sends waiting deliveries while the window has room.
  static void Pump(Destination& to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(to.mu);
  std::shared_ptr<Destination> DestinationFor(const std::string& platform);

  const int fanout_;
  absl::Mutex mu_;
  // Attached destinations by platform.
  std::map<std::string, std::shared_ptr<Destination>> destinations_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imbridge::bench

#endif  // IMBRIDGE_TOOLS_BENCH_RELAY_STUB_H_
