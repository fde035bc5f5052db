#include "emulators/slow_answers.h"

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace imbridge::fakes {
namespace {

// Records the answer written through it.
class RecordingResponder : public Responder {
 public:
  bool answered() const { return answered_.HasBeenNotified(); }
  bool WaitForAnswer(absl::Duration timeout) {
    return answered_.WaitForNotificationWithTimeout(timeout);
  }
  int status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 protected:
  bool RespondImpl(int status, absl::string_view, std::string,
                   HttpHeaderList) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = status;
    }
    answered_.Notify();
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification answered_;
};

// A slowed call counts as pending from the moment it takes its slot, before
// it takes effect: a test that sees the call's effect also sees its answer
// pending. (The fakes used to count from the answer's thread, after the
// effect, and a test that saw the effect could read 0.)
TEST(SlowAnswersTest, ASlowedCallIsPendingFromItsSlotUntilAnswered) {
  SlowAnswers slow;
  slow.Set("chat.postMessage", absl::Milliseconds(200));
  SlowAnswers::Slot slot = slow.Take("chat.postMessage");
  EXPECT_EQ(slow.pending(), 1);
  auto responder = std::make_shared<RecordingResponder>();
  slow.Respond(std::move(slot), responder, 200, "application/json", "{}");
  EXPECT_FALSE(responder->answered());
  EXPECT_EQ(slow.pending(), 1);
  ASSERT_TRUE(responder->WaitForAnswer(absl::Seconds(30)));
  EXPECT_EQ(responder->status(), 200);
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (slow.pending() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(slow.pending(), 0);
}

TEST(SlowAnswersTest, CallsNotSlowedAreAnsweredAtOnceAndNeverPending) {
  SlowAnswers slow;
  slow.Set("chat.postMessage", absl::Seconds(5));
  SlowAnswers::Slot slot = slow.Take("chat.update");
  EXPECT_EQ(slow.pending(), 0);
  auto responder = std::make_shared<RecordingResponder>();
  slow.Respond(std::move(slot), responder, 404, "", "");
  EXPECT_TRUE(responder->answered());
  EXPECT_EQ(responder->status(), 404);
  EXPECT_EQ(slow.pending(), 0);
}

// A call that takes a slot and then is answered another way (held, or
// deferred by the fake) stops counting when the slot is dropped.
TEST(SlowAnswersTest, ADroppedSlotIsNoLongerPending) {
  SlowAnswers slow;
  slow.Set("sendMessage", absl::Seconds(5));
  {
    SlowAnswers::Slot slot = slow.Take("sendMessage");
    SlowAnswers::Slot moved = std::move(slot);
    EXPECT_EQ(slow.pending(), 1);
  }
  EXPECT_EQ(slow.pending(), 0);
}

}  // namespace
}  // namespace imbridge::fakes
