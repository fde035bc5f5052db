#include "tools/sandbox/event_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace imbridge::sandbox {
namespace {

// Reconnect at once: each response carries what was new.
constexpr char kRetry[] = "retry: 20\n";

}  // namespace

EventStream::EventStream(size_t capacity, absl::Duration max_wait)
    : capacity_(capacity), max_wait_(max_wait) {
  timer_ = std::thread([this] { TimerLoop(); });
}

EventStream::~EventStream() { Close(); }

uint64_t EventStream::Publish(const std::string& type,
                              const nlohmann::json& data) {
  std::vector<Reader> ready;
  uint64_t id;
  std::vector<std::string> bodies;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return 0;
    id = next_id_++;
    events_.push_back({id, absl::StrCat("id: ", id, "\nevent: ", type,
                                        "\ndata: ", data.dump(), "\n\n")});
    while (events_.size() > capacity_) events_.pop_front();
    ready.swap(readers_);
    for (const Reader& r : ready) bodies.push_back(BodyAfter(r.after));
  }
  for (size_t i = 0; i < ready.size(); ++i) {
    Answer(ready[i].responder, std::move(bodies[i]));
  }
  return id;
}

uint64_t EventStream::last_id() const {
  absl::MutexLock lock(&mu_);
  return next_id_ - 1;
}

void EventStream::Subscribe(uint64_t after,
                            std::shared_ptr<Responder> responder) {
  std::string body;
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      body = BodyAfter(after);
      if (body.empty()) {
        readers_.push_back(
            {after, std::move(responder), absl::Now() + max_wait_});
        return;
      }
    }
  }
  Answer(responder, std::move(body));
}

std::string EventStream::BodyAfter(uint64_t after) const {
  if (events_.empty() || after >= events_.back().id) return "";
  if (after + 1 < events_.front().id) {
    // The reader missed events that are gone: it must reload.
    return absl::StrCat(kRetry, "id: ", events_.back().id,
                        "\nevent: reset\ndata: {}\n\n");
  }
  std::string body = kRetry;
  for (auto it = events_.begin() + (after + 1 - events_.front().id);
       it != events_.end(); ++it) {
    body += it->text;
  }
  return body;
}

void EventStream::Answer(const std::shared_ptr<Responder>& responder,
                         std::string body) {
  if (body.empty()) body = absl::StrCat(kRetry, ": nothing new\n\n");
  responder->Respond(200, "text/event-stream; charset=utf-8", std::move(body),
                     {{"Cache-Control", "no-store"}});
}

void EventStream::Close() {
  std::vector<Reader> readers;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    readers.swap(readers_);
  }
  for (const Reader& r : readers) Answer(r.responder, "");
  if (timer_.joinable()) timer_.join();
}

void EventStream::TimerLoop() {
  while (true) {
    std::vector<Reader> expired;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&closed_), absl::Milliseconds(500));
      if (closed_) return;
      const absl::Time now = absl::Now();
      std::vector<Reader> waiting;
      for (Reader& r : readers_) {
        (r.deadline <= now ? expired : waiting).push_back(std::move(r));
      }
      readers_.swap(waiting);
    }
    for (const Reader& r : expired) Answer(r.responder, "");
  }
}

}  // namespace imbridge::sandbox
