// The router's per-chat order of one stream's publishes into the committer:
// a chat's publishes are committed in groups, one group at a time, and a
// publish ordered after a failed one is refused without being committed.

#include "bridge/publish_sequencer.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imbridge::bridge {
namespace {

using ::testing::ElementsAre;

// Stands in for the committer's queue: records what was handed over and
// acknowledges when the test says so.
class CommitLog {
 public:
  PublishSequencer::Commit Commit() {
    return [this](v1::Event event,
                  std::function<void(const v1::PublishAck&)> done) {
      committed_.push_back(event.key());
      pending_.emplace_back(event.key(), std::move(done));
    };
  }
  PublishSequencer::Answer Answer() {
    return [this](v1::PublishAck ack) { answers_.push_back(ack); };
  }
  // Acknowledges the oldest commit not acknowledged yet.
  void AckNext(v1::PublishAck::Outcome outcome = v1::PublishAck::ACCEPTED) {
    ASSERT_FALSE(pending_.empty());
    auto [key, done] = std::move(pending_.front());
    pending_.erase(pending_.begin());
    v1::PublishAck ack;
    ack.set_outcome(outcome);
    done(ack);
  }
  const std::vector<std::string>& committed() const { return committed_; }
  // "seq:OUTCOME" for each answer, in order.
  std::vector<std::string> answers() const {
    std::vector<std::string> out;
    for (const v1::PublishAck& a : answers_) {
      out.push_back(std::to_string(a.seq()) + ":" +
                    v1::PublishAck::Outcome_Name(a.outcome()));
    }
    return out;
  }

 private:
  std::vector<std::string> committed_;
  std::vector<
      std::pair<std::string, std::function<void(const v1::PublishAck&)>>>
      pending_;
  std::vector<v1::PublishAck> answers_;
};

v1::Publish In(const std::string& chat, uint64_t seq, uint64_t after_seq) {
  v1::Publish p;
  p.set_seq(seq);
  p.set_after_seq(after_seq);
  p.mutable_event()->set_key(chat + std::to_string(seq));
  p.mutable_event()->mutable_channel()->set_platform("test");
  p.mutable_event()->mutable_channel()->set_account("acct");
  p.mutable_event()->mutable_channel()->set_chat_id(chat);
  return p;
}

TEST(PublishSequencerTest, AChatHasOneGroupInTheCommitterAtATime) {
  CommitLog log;
  auto sequencer =
      std::make_shared<PublishSequencer>(log.Commit(), log.Answer());
  sequencer->Publish(In("a", 1, 0));
  sequencer->Publish(In("b", 2, 0));
  sequencer->Publish(In("a", 3, 1));
  sequencer->Publish(In("a", 4, 3));
  // a3 and a4 wait for a1; another chat does not.
  EXPECT_THAT(log.committed(), ElementsAre("a1", "b2"));
  log.AckNext();  // a1
  // The held ones go together, as the next group.
  EXPECT_THAT(log.committed(), ElementsAre("a1", "b2", "a3", "a4"));
  log.AckNext();  // b2
  log.AckNext();  // a3
  log.AckNext();  // a4
  EXPECT_THAT(log.answers(), ElementsAre("1:ACCEPTED", "2:ACCEPTED",
                                         "3:ACCEPTED", "4:ACCEPTED"));
  EXPECT_EQ(sequencer->chats(), 0u);
}

// The stream is read no further while too many publishes are held behind
// their chats' groups, and reading resumes once an acknowledgement released
// enough of them: an adapter with many in flight cannot fill the router.
TEST(PublishSequencerTest, HeldPublishesStopTheStreamUntilReleased) {
  CommitLog log;
  auto sequencer =
      std::make_shared<PublishSequencer>(log.Commit(), log.Answer());
  sequencer->Publish(In("a", 1, 0));
  EXPECT_EQ(sequencer->held(), 0u);
  int resumed = 0;
  EXPECT_TRUE(sequencer->AdmitOrWait(2, [&resumed] { ++resumed; }));
  sequencer->Publish(In("a", 2, 1));
  sequencer->Publish(In("a", 3, 2));
  EXPECT_EQ(sequencer->held(), 2u);
  EXPECT_FALSE(sequencer->AdmitOrWait(2, [&resumed] { ++resumed; }));
  EXPECT_EQ(resumed, 0);
  log.AckNext();  // a1: a2 and a3 go to the committer as the next group.
  EXPECT_EQ(sequencer->held(), 0u);
  EXPECT_EQ(resumed, 1);
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3"));
  // Resumed once only, and admitted again at once.
  log.AckNext();
  log.AckNext();
  EXPECT_EQ(resumed, 1);
  EXPECT_TRUE(sequencer->AdmitOrWait(2, [&resumed] { ++resumed; }));
  EXPECT_EQ(sequencer->chats(), 0u);
}

// A publish answered first ends its group; what stays held behind it still
// counts.
TEST(PublishSequencerTest, PublishesHeldBehindAnAnsweredFirstOneStillCount) {
  CommitLog log;
  auto sequencer = std::make_shared<PublishSequencer>(
      log.Commit(), log.Answer(),
      [](const v1::Event& e) { return e.key() == "a2"; });
  sequencer->Publish(In("a", 1, 0));
  sequencer->Publish(In("a", 2, 1));
  sequencer->Publish(In("a", 3, 2));
  sequencer->Publish(In("a", 4, 3));
  EXPECT_EQ(sequencer->held(), 3u);
  int resumed = 0;
  EXPECT_FALSE(sequencer->AdmitOrWait(2, [&resumed] { ++resumed; }));
  log.AckNext();  // a1: a2 goes alone; a3 and a4 stay held behind it.
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2"));
  EXPECT_EQ(sequencer->held(), 2u);
  EXPECT_EQ(resumed, 0);
  log.AckNext();  // a2
  EXPECT_EQ(sequencer->held(), 0u);
  EXPECT_EQ(resumed, 1);
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3", "a4"));
}

TEST(PublishSequencerTest, WhatFollowsAFailedPublishIsRefusedNotCommitted) {
  CommitLog log;
  auto sequencer =
      std::make_shared<PublishSequencer>(log.Commit(), log.Answer());
  sequencer->Publish(In("a", 1, 0));
  sequencer->Publish(In("a", 2, 1));
  sequencer->Publish(In("a", 3, 2));
  log.AckNext(v1::PublishAck::FAILED);  // a1 was not stored.
  EXPECT_THAT(log.committed(), ElementsAre("a1"));
  EXPECT_THAT(log.answers(), ElementsAre("1:FAILED", "2:FAILED", "3:FAILED"));
  // One sent before the adapter saw the failure is refused too.
  sequencer->Publish(In("a", 4, 3));
  EXPECT_THAT(log.answers(),
              ElementsAre("1:FAILED", "2:FAILED", "3:FAILED", "4:FAILED"));
  // The adapter publishes the chat again from a1, after nothing pending.
  sequencer->Publish(In("a", 5, 0));
  sequencer->Publish(In("a", 6, 5));
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a5"));
  log.AckNext();
  log.AckNext();
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a5", "a6"));
  EXPECT_EQ(sequencer->chats(), 0u);
}

TEST(PublishSequencerTest, ARejectedPublishDoesNotHoldItsChat) {
  CommitLog log;
  auto sequencer =
      std::make_shared<PublishSequencer>(log.Commit(), log.Answer());
  sequencer->Publish(In("a", 1, 0));
  sequencer->Publish(In("a", 2, 1));
  log.AckNext(v1::PublishAck::REJECTED);
  log.AckNext();
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2"));
  EXPECT_THAT(log.answers(), ElementsAre("1:REJECTED", "2:ACCEPTED"));
}

// A chat command is answered before the committer queues it: a publish
// handed over with it would be stored first. So it ends its group, and
// what follows waits for its ack (and is refused if it failed).
TEST(PublishSequencerTest, APublishAnsweredFirstEndsItsGroup) {
  CommitLog log;
  auto sequencer = std::make_shared<PublishSequencer>(
      log.Commit(), log.Answer(), [](const v1::Event& event) {
        return event.key() == "a2" || event.key() == "a5";
      });
  sequencer->Publish(In("a", 1, 0));
  sequencer->Publish(In("a", 2, 1));  // a command
  sequencer->Publish(In("a", 3, 2));
  log.AckNext();  // a1
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2"));
  log.AckNext();  // a2
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3"));
  log.AckNext();  // a3

  sequencer->Publish(In("a", 4, 0));
  sequencer->Publish(In("a", 5, 4));  // a command
  sequencer->Publish(In("a", 6, 5));
  sequencer->Publish(In("a", 7, 6));
  log.AckNext();  // a4
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  log.AckNext(v1::PublishAck::FAILED);  // a5 was not answered
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  EXPECT_THAT(log.answers(),
              ElementsAre("1:ACCEPTED", "2:ACCEPTED", "3:ACCEPTED",
                          "4:ACCEPTED", "5:FAILED", "6:FAILED", "7:FAILED"));
  EXPECT_EQ(sequencer->chats(), 0u);
}

TEST(PublishSequencerTest, RemembersABoundedNumberOfFailures) {
  CommitLog log;
  auto sequencer = std::make_shared<PublishSequencer>(
      log.Commit(), log.Answer(), nullptr, /*max_failed_seqs=*/2);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    sequencer->Publish(In("a", seq, 0));
    log.AckNext(v1::PublishAck::FAILED);
  }
  // Seq 1 was forgotten; 3 is still known.
  sequencer->Publish(In("b", 4, 1));
  sequencer->Publish(In("c", 5, 3));
  EXPECT_THAT(log.committed(), ElementsAre("a1", "a2", "a3", "b4"));
  EXPECT_EQ(log.answers().back(), "5:FAILED");
}

}  // namespace
}  // namespace imbridge::bridge
