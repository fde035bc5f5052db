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
// A fake takes a call's Slot before the call takes effect and answers
// through it: a late answer counts in pending() from the moment the call
// took its slot, so a test that sees the call's effect also sees its answer
// pending.
//
// Thread-safe. A late answer is written from a thread of its own that holds
// only the responder and a shared counter, so it may outlive the fake (the
// responder then drops the answer).
class SlowAnswers {
 public:
  // One call's answer: late when its method was slowed when it was taken.
  // Move-only; a slot dropped unanswered stops counting as pending.
  class Slot {
   public:
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class SlowAnswers;
    Slot(absl::Duration delay, std::shared_ptr<std::atomic<int>> pending);

    absl::Duration delay_;
    // Set while the slot counts in pending(); null once handed on.
    std::shared_ptr<std::atomic<int>> pending_;
  };

  // Answers of `method` wait `delay` (zero: answered at once).
  void Set(const std::string& method, absl::Duration delay);

  // The slot of a call of `method` (empty: never slowed), taken before the
  // call takes effect.
  Slot Take(const std::string& method);

  // Answers with `responder` through `slot`: after its delay, or at once
  // when it has none.
  void Respond(Slot slot, std::shared_ptr<Responder> responder, int status,
               std::string content_type, std::string body,
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
