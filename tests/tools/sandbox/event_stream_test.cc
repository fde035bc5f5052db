#include "tools/sandbox/event_stream.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Keeps the one answer a request gets.
class RecordingResponder : public Responder {
 public:
  bool answered() const {
    absl::MutexLock lock(&mu_);
    return answered_;
  }
  bool WaitAnswered(absl::Duration timeout = absl::Seconds(30)) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&answered_), timeout);
  }
  std::string body() const {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  std::string content_type() const {
    absl::MutexLock lock(&mu_);
    return content_type_;
  }

 protected:
  bool RespondImpl(int status, absl::string_view content_type, std::string body,
                   HttpHeaderList) override {
    absl::MutexLock lock(&mu_);
    if (answered_) return false;
    answered_ = true;
    status_ = status;
    content_type_ = std::string(content_type);
    body_ = std::move(body);
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  std::string content_type_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
};

TEST(EventStreamTest, AnswersAtOnceWithTheEventsAfterThePosition) {
  EventStream stream;
  EXPECT_EQ(stream.last_id(), 0u);
  EXPECT_EQ(stream.Publish("message", {{"n", 1}}), 1u);
  EXPECT_EQ(stream.Publish("roster", {{"n", 2}}), 2u);
  EXPECT_EQ(stream.last_id(), 2u);

  auto all = std::make_shared<RecordingResponder>();
  stream.Subscribe(0, all);
  ASSERT_TRUE(all->answered());
  EXPECT_THAT(all->content_type(), HasSubstr("text/event-stream"));
  EXPECT_EQ(all->body(),
            "retry: 20\n"
            "id: 1\nevent: message\ndata: {\"n\":1}\n\n"
            "id: 2\nevent: roster\ndata: {\"n\":2}\n\n");

  auto tail = std::make_shared<RecordingResponder>();
  stream.Subscribe(1, tail);
  ASSERT_TRUE(tail->answered());
  EXPECT_THAT(tail->body(), Not(HasSubstr("id: 1\n")));
  EXPECT_THAT(tail->body(), HasSubstr("id: 2\nevent: roster\n"));
}

TEST(EventStreamTest, AWaitingReaderIsAnsweredByTheNextEvent) {
  EventStream stream;
  stream.Publish("message", {{"n", 1}});
  auto reader = std::make_shared<RecordingResponder>();
  stream.Subscribe(1, reader);
  EXPECT_FALSE(reader->answered());
  stream.Publish("message", {{"n", 2}});
  ASSERT_TRUE(reader->answered());
  EXPECT_THAT(reader->body(), HasSubstr("id: 2\n"));
  EXPECT_THAT(reader->body(), Not(HasSubstr("id: 1\n")));
}

TEST(EventStreamTest, AWaitEndsWithACommentOnly) {
  EventStream stream(100, absl::Milliseconds(100));
  auto reader = std::make_shared<RecordingResponder>();
  stream.Subscribe(0, reader);
  ASSERT_TRUE(reader->WaitAnswered());
  EXPECT_THAT(reader->body(), HasSubstr("retry: "));
  EXPECT_THAT(reader->body(), HasSubstr(": nothing new"));
  EXPECT_THAT(reader->body(), Not(HasSubstr("id: ")));
}

TEST(EventStreamTest, AReaderTooFarBehindIsToldToReload) {
  EventStream stream(2);
  for (int i = 0; i < 5; ++i) stream.Publish("message", {{"n", i}});
  auto reader = std::make_shared<RecordingResponder>();
  stream.Subscribe(1, reader);
  ASSERT_TRUE(reader->answered());
  EXPECT_THAT(reader->body(), HasSubstr("event: reset\n"));
  EXPECT_THAT(reader->body(), HasSubstr("id: 5\n"));
  // One that missed nothing still gets the events.
  auto current = std::make_shared<RecordingResponder>();
  stream.Subscribe(3, current);
  EXPECT_THAT(current->body(), HasSubstr("id: 4\nevent: message\n"));
}

TEST(EventStreamTest, CloseAnswersWaitingReaders) {
  EventStream stream;
  auto reader = std::make_shared<RecordingResponder>();
  stream.Subscribe(0, reader);
  EXPECT_FALSE(reader->answered());
  stream.Close();
  EXPECT_TRUE(reader->answered());
  EXPECT_EQ(stream.Publish("message", {}), 0u);
}

}  // namespace
}  // namespace imbridge::sandbox
