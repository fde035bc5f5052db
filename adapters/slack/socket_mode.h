#ifndef IMBRIDGE_ADAPTERS_SLACK_SOCKET_MODE_H_
#define IMBRIDGE_ADAPTERS_SLACK_SOCKET_MODE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/slack/slack_api.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// One message Slack sent on a Socket Mode connection, as the client reads
// it.
struct SocketModeMessage {
  enum class Kind {
    kMalformed,   // Not a JSON object (logged and skipped).
    kHello,       // The connection is ready.
    kDisconnect,  // Slack asks the client to reconnect.
    kEvent,       // An "events_api" envelope with an object payload.
    kOther,       // Any other envelope (acked at once when it has an id).
  };
  Kind kind = Kind::kMalformed;
  // The id to ack ({"envelope_id": ...}); empty when there is none, or when
  // it is not a string.
  std::string envelope_id;
  // kDisconnect: Slack's reason, when it is a string.
  std::string reason;
  // kEvent: the event_callback to convert.
  nlohmann::json payload;
};

// Reads one text frame of a Socket Mode connection (untrusted input: any
// bytes are accepted; fields of the wrong JSON type count as absent). Pure;
// thread-safe.
SocketModeMessage ParseSocketModeMessage(absl::string_view text);

// Slack's Socket Mode transport, for installations without a public URL.
//
// Loop: apps.connections.open with the app-level token gives a WebSocket
// URL; the client connects (wss:// over TLS with certificate and host name
// verification; ws:// plainly, which only a local fake serves), waits for
// "hello", and hands each "events_api" envelope's payload (an
// event_callback) to the sink together with an `ack` callback. The ack
// ({"envelope_id": ...}) is sent only when the sink calls it, that is after
// the router acknowledged the event; an envelope never acked is redelivered
// by Slack. Other envelope types are acked at once. On "disconnect", a
// closed socket or any error, it reconnects with a fresh URL after a
// backoff (1 s doubling to 30 s; reset after a hello).
//
// Threading: Start()/Stop() from one controlling thread; the connection
// runs on the client's own thread; the sink is called there and must not
// block; `ack` may be called from any thread, at any time (a late ack after
// a reconnect is dropped).
class SocketModeClient {
 public:
  using EventSink =
      std::function<void(nlohmann::json payload, std::function<void()> ack)>;

  struct Options {
    std::string account;
    // The app-level token ("xapp-..."). Never logged.
    std::string app_token;
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(30);
    // Time to connect and complete the handshakes.
    absl::Duration connect_timeout = absl::Seconds(15);
  };

  SocketModeClient(Options options, const SlackApi* api, EventSink sink);
  ~SocketModeClient();  // Calls Stop().

  void Start();
  // Closes the socket and joins the thread. Idempotent.
  void Stop();

  // True between a "hello" and the end of that connection.
  bool connected() const { return connected_.load(); }
  // Envelopes acked so far (for tests and metrics).
  uint64_t acks() const;

  class Shared;

 private:
  void Run();

  const Options options_;
  const SlackApi* api_;
  EventSink sink_;
  std::shared_ptr<Shared> shared_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> finished_{false};
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SOCKET_MODE_H_
