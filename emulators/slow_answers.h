#ifndef IMBRIDGE_EMULATORS_SLOW_ANSWERS_H_
#define IMBRIDGE_EMULATORS_SLOW_ANSWERS_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/http_server.h"

namespace imbridge::fakes {

// Slowness injection for a fake messenger: the calls of a method take
// effect at once but are answered some time later, as when the messenger is
// slow to answer, so that a test can stop a client while its calls are in
// flight.
//
// Thread-safe. A late answer is written from a thread of its own that holds
// only the responder and a shared counter, so it may outlive the fake (the
// responder then drops the answer).
class SlowAnswers {
 public:
  // Answers of `method` wait `delay` (zero: answered at once).
  void Set(const std::string& method, absl::Duration delay);
  // The delay of `method`.
  absl::Duration For(const std::string& method) const;

  // Answers with `responder` after `delay`, or at once when it is zero.
  void Respond(std::shared_ptr<Responder> responder, absl::Duration delay,
               int status, std::string content_type, std::string body,
               HttpHeaderList headers = {});

  // Late answers not written yet.
  int pending() const { return *pending_; }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, absl::Duration> delays_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<std::atomic<int>> pending_ =
      std::make_shared<std::atomic<int>>(0);
};

}  // namespace imbridge::fakes

#endif  // IMBRIDGE_EMULATORS_SLOW_ANSWERS_H_
