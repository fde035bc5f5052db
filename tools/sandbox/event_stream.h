#ifndef IMBRIDGE_TOOLS_SANDBOX_EVENT_STREAM_H_
#define IMBRIDGE_TOOLS_SANDBOX_EVENT_STREAM_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"
#include "nlohmann/json.hpp"

namespace imbridge::sandbox {

// The page's live feed, in the Server-Sent Events format.
//
// Events are numbered from 1 and kept in memory (the newest `capacity`). A
// reader asks for the events after the last id it saw (the browser's
// Last-Event-ID) and gets them as one text/event-stream response, at once
// if there are any, else as soon as one is published, else after
// `max_wait` as a comment only. The response then ends and the browser's
// EventSource reconnects at once (the body sets `retry`), so a response
// never has to stay open on the server (HttpServer answers
// whole responses only). A reader too far behind gets a `reset` event and
// reloads the state.
//
// Thread-safe. Publish() and Subscribe() never block; a background thread
// answers readers whose wait ran out.
class EventStream {
 public:
  explicit EventStream(size_t capacity = 20000,
                       absl::Duration max_wait = absl::Seconds(15));
  ~EventStream();  // Close().

  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Appends an event `type` with JSON `data`; returns its id.
  uint64_t Publish(const std::string& type, const nlohmann::json& data);
  // The id of the newest event (0 before the first).
  uint64_t last_id() const;
  // Answers `responder` with the events after `after` (see the class
  // comment).
  void Subscribe(uint64_t after, std::shared_ptr<Responder> responder);
  // Answers every waiting reader and stops the timer thread. Idempotent.
  void Close();

 private:
  struct Event {
    uint64_t id;
    std::string text;  // "id: ..\nevent: ..\ndata: ..\n\n"
  };
  struct Reader {
    uint64_t after;
    std::shared_ptr<Responder> responder;
    absl::Time deadline;
  };

  // The SSE body for a reader after `after` ("" when nothing is new).
  std::string BodyAfter(uint64_t after) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static void Answer(const std::shared_ptr<Responder>& responder,
                     std::string body);
  void TimerLoop();

  const size_t capacity_;
  const absl::Duration max_wait_;

  mutable absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<Reader> readers_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace imbridge::sandbox

#endif  // IMBRIDGE_TOOLS_SANDBOX_EVENT_STREAM_H_
