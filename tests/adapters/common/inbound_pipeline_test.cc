// The inbound pipeline: order per chat with a slow file, lanes in parallel,
// bounded memory, in-flight deduplication, answers only after the router's
// acknowledgement, connectors that throw.

#include "adapters/common/inbound_pipeline.h"

#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/delivery_handler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/adapters/common/blob_reads.h"

namespace imbridge::adapters {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr absl::Duration kWait = absl::Seconds(30);

// Records what the pipeline publishes and stores; acknowledges only when a
// test says so (a router that acks late).
class FakeRouter : public InboundRouter {
 public:
  void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) override {
    absl::MutexLock lock(&mu_);
    published_.push_back(event.key());
    pending_[event.key()] = std::move(done);
  }

  absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char*, size_t)>& read)
      override {
    absl::StatusOr<std::string> read_all = ReadWholeBlob(read, 4096);
    if (!read_all.ok()) return read_all.status();
    std::string data = *std::move(read_all);
    absl::MutexLock lock(&mu_);
    v1::BlobRef ref;
    ref.set_blob_id(absl::StrCat("blob-", blobs_.size() + 1, "-", meta.name()));
    ref.set_size(data.size());
    blobs_[ref.blob_id()] = std::move(data);
    return ref;
  }

  // Acknowledges the publish of `key` with `outcome`; false if it was not
  // published (or was acknowledged already).
  bool Ack(const std::string& key,
           v1::PublishAck::Outcome outcome = v1::PublishAck::ACCEPTED) {
    v1::PublishAck ack;
    ack.set_outcome(outcome);
    ack.set_detail(outcome == v1::PublishAck::FAILED ? "disk full" : "");
    return Answer(key, ack);
  }

  // Fails the publish of `key` as if the router could not be reached.
  bool FailPublish(const std::string& key) {
    return Answer(key, absl::UnavailableError("router not attached"));
  }

  // Waits until `key` was published `times` times.
  bool WaitPublished(const std::string& key, int times = 1) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      int n = 0;
      for (const auto& k : published_) n += k == key ? 1 : 0;
      return n >= times;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
  }

  std::vector<std::string> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  std::string blob(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return blobs_[id];
  }

 private:
  bool Answer(const std::string& key, absl::StatusOr<v1::PublishAck> answer) {
    std::function<void(absl::StatusOr<v1::PublishAck>)> done;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(key);
      if (it == pending_.end()) return false;
      done = std::move(it->second);
      pending_.erase(it);
    }
    done(std::move(answer));
    return true;
  }

  absl::Mutex mu_;
  std::vector<std::string> published_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::function<void(absl::StatusOr<v1::PublishAck>)>>
      pending_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);
};

// Collects the results of inputs by name.
class Results {
 public:
  InboundPipeline::DoneCallback For(const std::string& name) {
    return [this, name](const InboundResult& result) {
      absl::MutexLock lock(&mu_);
      results_.emplace_back(name, result);
    };
  }

  // Waits for the `n`th result of `name` (1-based) and returns it.
  InboundResult Wait(const std::string& name, int n = 1) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return Count(name) >= n;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), kWait)) {
      ADD_FAILURE() << "no result for " << name;
      return InboundResult();
    }
    int seen = 0;
    for (const auto& [k, r] : results_) {
      if (k == name && ++seen == n) return r;
    }
    return InboundResult();
  }

  int count(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return Count(name);
  }

  std::vector<std::string> order() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [k, r] : results_) names.push_back(k);
    return names;
  }

 private:
  int Count(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int n = 0;
    for (const auto& [k, r] : results_) n += k == name ? 1 : 0;
    return n;
  }

  absl::Mutex mu_;
  std::vector<std::pair<std::string, InboundResult>> results_
      ABSL_GUARDED_BY(mu_);
};

// A download that blocks until released; counts downloads running at once.
class Gate {
 public:
  void Release() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  // Called by a download: waits for Release().
  void Pass() {
    absl::MutexLock lock(&mu_);
    ++running_;
    peak_ = std::max(peak_, running_);
    mu_.Await(absl::Condition(&open_));
    --running_;
  }
  bool WaitRunning(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  int peak() {
    absl::MutexLock lock(&mu_);
    return peak_;
  }

 private:
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_ ABSL_GUARDED_BY(mu_) = 0;
};

v1::Event Text(const std::string& key, const std::string& chat) {
  v1::Event event;
  event.set_key(key);
  event.mutable_channel()->set_platform("test");
  event.mutable_channel()->set_chat_id(chat);
  event.mutable_posted()->mutable_text()->set_text(key);
  return event;
}

// A converter for a text message.
std::function<absl::StatusOr<InboundConversion>()> TextInput(
    const std::string& key, const std::string& chat) {
  return [key, chat]() -> absl::StatusOr<InboundConversion> {
    InboundConversion c;
    c.events.push_back(Text(key, chat));
    return c;
  };
}

// A converter for a message with one file of `content`, whose download
// first passes `gate` (when not null).
std::function<absl::StatusOr<InboundConversion>()> FileInput(
    const std::string& key, const std::string& chat, std::string content,
    Gate* gate) {
  return [key, chat, content, gate]() -> absl::StatusOr<InboundConversion> {
    InboundConversion c;
    c.events.push_back(Text(key, chat));
    v1::Attachment* a = c.events[0].mutable_posted()->add_attachments();
    a->set_name(key + ".bin");
    a->set_mime_type("application/octet-stream");
    a->set_size(content.size());
    InboundFile file;
    file.download =
        [content, gate](
            uint64_t,
            const std::function<absl::Status(absl::string_view)>& write)
        -> absl::Status {
      if (gate != nullptr) gate->Pass();
      for (size_t i = 0; i < content.size(); i += 1000) {
        absl::Status s = write(absl::string_view(content).substr(i, 1000));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    };
    c.files.push_back(std::move(file));
    return c;
  };
}

InboundRoute Route(const std::string& chat, const std::string& key = "") {
  return InboundRoute{chat, key};
}

class InboundPipelineTest : public ::testing::Test {
 protected:
  void Make(InboundPipeline::Options options = {}) {
    pipeline_ = std::make_unique<InboundPipeline>(options, &router_);
  }

  // Submits a message whose file waits at `gate` in each of `chats`, waits
  // until `running` downloads wait at once, then releases them and
  // acknowledges every message.
  void DownloadGated(const std::vector<std::string>& chats, int running,
                     Gate* gate) {
    for (const std::string& chat : chats) {
      ASSERT_TRUE(pipeline_
                      ->Submit(Route(chat),
                               FileInput("f-" + chat, chat, "data", gate),
                               results_.For(chat))
                      .ok());
    }
    ASSERT_TRUE(gate->WaitRunning(running));
    gate->Release();
    for (const std::string& chat : chats) {
      ASSERT_TRUE(router_.WaitPublished("f-" + chat));
      ASSERT_TRUE(router_.Ack("f-" + chat));
      EXPECT_TRUE(results_.Wait(chat).ok());
    }
  }

  FakeRouter router_;
  Results results_;
  std::unique_ptr<InboundPipeline> pipeline_;
};

TEST_F(InboundPipelineTest, AMessageWaitingForItsFileIsNotOvertakenInItsChat) {
  Make();
  Gate gate;
  ASSERT_TRUE(
      pipeline_
          ->Submit(Route("chat-a"),
                   FileInput("a1", "chat-a", std::string(5000, 'x'), &gate),
                   results_.For("a1"))
          .ok());
  ASSERT_TRUE(gate.WaitRunning(1));
  ASSERT_TRUE(pipeline_
                  ->Submit(Route("chat-a"), TextInput("a2", "chat-a"),
                           results_.For("a2"))
                  .ok());
  // Another chat goes on meanwhile; by the time it is through, a2 would
  // have been published too if it could overtake a1.
  ASSERT_TRUE(pipeline_
                  ->Submit(Route("chat-b"), TextInput("b1", "chat-b"),
                           results_.For("b1"))
                  .ok());
  ASSERT_TRUE(router_.WaitPublished("b1"));
  ASSERT_TRUE(router_.Ack("b1"));
  EXPECT_TRUE(results_.Wait("b1").ok());
  EXPECT_THAT(router_.published(), ElementsAre("b1"));

  gate.Release();
  // Once a1 is handed to the router, a2 follows it on the ordered stream
  // without waiting for a1's acknowledgement.
  ASSERT_TRUE(router_.WaitPublished("a2"));
  EXPECT_THAT(router_.published(), ElementsAre("b1", "a1", "a2"));
  // Answers keep the chat's order: a2's waits for a1's.
  ASSERT_TRUE(router_.Ack("a2"));
  ASSERT_TRUE(
      pipeline_
          ->Submit(Route("b"), TextInput("b2", "chat-b"), results_.For("b2"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("b2"));
  ASSERT_TRUE(router_.Ack("b2"));
  EXPECT_TRUE(results_.Wait("b2").ok());
  EXPECT_EQ(results_.count("a2"), 0);
  ASSERT_TRUE(router_.Ack("a1"));
  EXPECT_TRUE(results_.Wait("a2").ok());
  EXPECT_THAT(results_.order(), ElementsAre("b1", "b2", "a1", "a2"));
}

TEST_F(InboundPipelineTest, ALaneHasAtMostMaxLaneInFlightInputsPublished) {
  InboundPipeline::Options options;
  options.max_lane_in_flight = 3;
  Make(options);
  for (int i = 1; i <= 5; ++i) {
    std::string key = absl::StrCat("a", i);
    ASSERT_TRUE(
        pipeline_->Submit(Route("a"), TextInput(key, "a"), results_.For(key))
            .ok());
  }
  ASSERT_TRUE(router_.WaitPublished("a3"));
  // The fourth waits until an earlier one of its lane is answered.
  ASSERT_TRUE(router_.Ack("a3"));
  ASSERT_TRUE(router_.Ack("a2"));
  EXPECT_THAT(router_.published(), ElementsAre("a1", "a2", "a3"));
  EXPECT_EQ(results_.count("a3"), 0);
  ASSERT_TRUE(router_.Ack("a1"));
  ASSERT_TRUE(router_.WaitPublished("a5"));
  EXPECT_THAT(router_.published(), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  ASSERT_TRUE(router_.Ack("a4"));
  ASSERT_TRUE(router_.Ack("a5"));
  EXPECT_TRUE(results_.Wait("a5").ok());
  EXPECT_THAT(results_.order(), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  EXPECT_EQ(pipeline_->held(), 0u);
}

TEST_F(InboundPipelineTest, FilesOfDifferentChatsAreFetchedInParallel) {
  InboundPipeline::Options options;
  options.download_slots = 3;
  Make(options);
  Gate gate;
  // All three downloads run at the same time.
  DownloadGated({"x", "y", "z"}, 3, &gate);
}

TEST_F(InboundPipelineTest, DownloadsAreBoundedBySlots) {
  InboundPipeline::Options options;
  options.download_slots = 2;
  Make(options);
  Gate gate;
  DownloadGated({"x", "y", "z", "w"}, 2, &gate);
  EXPECT_EQ(gate.peak(), 2);
}

TEST_F(InboundPipelineTest, AFullPipelineRefusesInsteadOfGrowing) {
  InboundPipeline::Options options;
  options.max_inputs = 3;
  options.max_lane_inputs = 2;
  Make(options);
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a1", "a"), results_.For("a1"))
          .ok());
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a2", "a"), results_.For("a2"))
          .ok());
  // The lane is full.
  absl::Status refused =
      pipeline_->Submit(Route("a"), TextInput("a3", "a"), results_.For("a3"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(pipeline_->WaitForRoom("a", absl::ZeroDuration()));
  // Another lane has room, until the pipeline is full.
  ASSERT_TRUE(
      pipeline_->Submit(Route("b"), TextInput("b1", "b"), results_.For("b1"))
          .ok());
  refused =
      pipeline_->Submit(Route("c"), TextInput("c1", "c"), results_.For("c1"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pipeline_->held(), 3u);

  // Acknowledgements make room again.
  ASSERT_TRUE(router_.WaitPublished("a1"));
  ASSERT_TRUE(router_.Ack("a1"));
  EXPECT_TRUE(pipeline_->WaitForRoom("a", kWait));
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a3", "a"), results_.For("a3"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a2"));
  ASSERT_TRUE(router_.Ack("a2"));
  ASSERT_TRUE(router_.WaitPublished("a3"));
  ASSERT_TRUE(router_.Ack("a3"));
  ASSERT_TRUE(router_.WaitPublished("b1"));
  ASSERT_TRUE(router_.Ack("b1"));
  EXPECT_TRUE(results_.Wait("a3").ok());
  EXPECT_TRUE(results_.Wait("b1").ok());
  EXPECT_EQ(results_.count("c1"), 0);  // Refused: never answered.
  EXPECT_EQ(pipeline_->held(), 0u);
}

TEST_F(InboundPipelineTest, ARetryOfAnInputInFlightJoinsIt) {
  Make();
  std::atomic<int> conversions{0};
  auto convert = [&conversions]() -> absl::StatusOr<InboundConversion> {
    ++conversions;
    InboundConversion c;
    c.events.push_back(Text("ev-1", "a"));
    return c;
  };
  ASSERT_TRUE(
      pipeline_->Submit(Route("a", "ev-1"), convert, results_.For("first"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("ev-1"));
  ASSERT_TRUE(
      pipeline_->Submit(Route("a", "ev-1"), convert, results_.For("retry"))
          .ok());
  EXPECT_EQ(pipeline_->held(), 1u);
  ASSERT_TRUE(router_.Ack("ev-1", v1::PublishAck::FAILED));
  InboundResult first = results_.Wait("first");
  InboundResult retry = results_.Wait("retry");
  EXPECT_EQ(first.outcome, InboundResult::Outcome::kFailed);
  EXPECT_EQ(retry.outcome, InboundResult::Outcome::kFailed);
  EXPECT_EQ(retry.detail, "disk full");
  EXPECT_EQ(conversions.load(), 1);
  EXPECT_THAT(router_.published(), ElementsAre("ev-1"));

  // Once finished, the same key is a new input.
  ASSERT_TRUE(
      pipeline_->Submit(Route("a", "ev-1"), convert, results_.For("later"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("ev-1", 2));
  EXPECT_TRUE(router_.Ack("ev-1"));
  EXPECT_TRUE(results_.Wait("later").ok());
  EXPECT_EQ(conversions.load(), 2);
}

TEST_F(InboundPipelineTest, AnswersOnlyAfterTheRouterAcknowledgedEveryEvent) {
  Make();
  auto convert = []() -> absl::StatusOr<InboundConversion> {
    InboundConversion c;
    c.events.push_back(Text("part-1", "a"));
    c.events.push_back(Text("part-2", "a"));
    return c;
  };
  ASSERT_TRUE(pipeline_->Submit(Route("a"), convert, results_.For("in")).ok());
  // Both events go on the ordered stream at once.
  ASSERT_TRUE(router_.WaitPublished("part-2"));
  EXPECT_THAT(router_.published(), ElementsAre("part-1", "part-2"));
  EXPECT_EQ(results_.count("in"), 0);
  ASSERT_TRUE(router_.Ack("part-1", v1::PublishAck::DUPLICATE));
  EXPECT_EQ(results_.count("in"), 0);
  ASSERT_TRUE(router_.Ack("part-2", v1::PublishAck::DROPPED));
  InboundResult result = results_.Wait("in");
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.HttpStatus(), 200);
}

TEST_F(InboundPipelineTest, AnUnreachableRouterMeansRetry) {
  Make();
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a1", "a"), results_.For("a1"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a1"));
  ASSERT_TRUE(router_.FailPublish("a1"));
  InboundResult result = results_.Wait("a1");
  EXPECT_EQ(result.outcome, InboundResult::Outcome::kRetry);
  EXPECT_EQ(result.HttpStatus(), 503);
}

TEST_F(InboundPipelineTest, AnEventTheRouterRejectsIsTheInputsFault) {
  Make();
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a1", "a"), results_.For("a1"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a1"));
  ASSERT_TRUE(router_.Ack("a1", v1::PublishAck::REJECTED));
  InboundResult result = results_.Wait("a1");
  EXPECT_EQ(result.outcome, InboundResult::Outcome::kInvalid);
  EXPECT_EQ(result.HttpStatus(), 400);
  // The chat goes on.
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a2", "a"), results_.For("a2"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a2"));
  ASSERT_TRUE(router_.Ack("a2"));
  EXPECT_TRUE(results_.Wait("a2").ok());
}

TEST_F(InboundPipelineTest, IgnoredInputsAreAnsweredAtOnce) {
  Make();
  ASSERT_TRUE(pipeline_
                  ->Submit(
                      Route("a"),
                      []() -> absl::StatusOr<InboundConversion> {
                        return InboundConversion();
                      },
                      results_.For("echo"))
                  .ok());
  EXPECT_TRUE(results_.Wait("echo").ok());
  EXPECT_THAT(router_.published(), IsEmpty());
}

// A connector of a made-up messenger whose raw input is a string: "throw"
// makes Convert throw, "bad" makes it refuse, "" makes Route throw.
class StringConnector : public InboundConnector<std::string> {
 public:
  absl::StatusOr<InboundRoute> Route(const std::string& raw) override {
    if (raw.empty()) throw std::logic_error("no chat");
    return InboundRoute{"lane", raw};
  }
  absl::StatusOr<InboundConversion> Convert(const std::string& raw) override {
    if (raw == "throw") throw std::runtime_error("converter bug");
    if (raw == "bad") return absl::InvalidArgumentError("not an event");
    if (raw == "later") return RetryableError("messenger busy");
    InboundConversion c;
    c.events.push_back(Text(raw, "lane"));
    return c;
  }
};

TEST_F(InboundPipelineTest, AThrowingConnectorRefusesThatInputAndServesOn) {
  Make();
  StringConnector connector;
  ASSERT_TRUE(
      pipeline_->Submit(&connector, std::string("throw"), results_.For("throw"))
          .ok());
  ASSERT_TRUE(
      pipeline_->Submit(&connector, std::string("bad"), results_.For("bad"))
          .ok());
  ASSERT_TRUE(
      pipeline_->Submit(&connector, std::string("fine"), results_.For("fine"))
          .ok());
  ASSERT_TRUE(
      pipeline_->Submit(&connector, std::string("later"), results_.For("later"))
          .ok());
  InboundResult thrown = results_.Wait("throw");
  EXPECT_EQ(thrown.outcome, InboundResult::Outcome::kInvalid);
  EXPECT_EQ(thrown.HttpStatus(), 400);
  EXPECT_THAT(thrown.detail, ::testing::HasSubstr("converter bug"));
  EXPECT_EQ(results_.Wait("bad").HttpStatus(), 400);
  ASSERT_TRUE(router_.WaitPublished("fine"));
  ASSERT_TRUE(router_.Ack("fine"));
  EXPECT_TRUE(results_.Wait("fine").ok());
  EXPECT_EQ(results_.Wait("later").HttpStatus(), 503);
  EXPECT_THAT(results_.order(), ElementsAre("throw", "bad", "fine", "later"));

  absl::Status refused =
      pipeline_->Submit(&connector, std::string(), results_.For("noroute"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("no chat"));
}

TEST_F(InboundPipelineTest, FilesAreCopiedIntoTheBlobStore) {
  InboundPipeline::Options options;
  options.max_file_bytes = 10000;
  Make(options);
  const std::string content(7500, 'q');
  ASSERT_TRUE(pipeline_
                  ->Submit(Route("a"),
                           FileInput("with-file", "a", content, nullptr),
                           results_.For("in"))
                  .ok());
  ASSERT_TRUE(router_.WaitPublished("with-file"));
  ASSERT_TRUE(router_.Ack("with-file"));
  EXPECT_TRUE(results_.Wait("in").ok());
  EXPECT_EQ(router_.blob("blob-1-with-file.bin"), content);
}

TEST_F(InboundPipelineTest, FilesThatCannotBeHadAreNamedInTheAttachment) {
  InboundPipeline::Options options;
  options.max_file_bytes = 100;
  auto convert = []() -> absl::StatusOr<InboundConversion> {
    InboundConversion c;
    c.events.push_back(Text("files", "a"));
    auto add = [&c](const std::string& name, uint64_t size,
                    absl::Status outcome, std::string bytes) {
      v1::Attachment* a = c.events[0].mutable_posted()->add_attachments();
      a->set_name(name);
      a->set_size(size);
      InboundFile file;
      file.attachment_index = c.events[0].posted().attachments_size() - 1;
      file.download =
          [outcome, bytes](
              uint64_t,
              const std::function<absl::Status(absl::string_view)>& write)
          -> absl::Status {
        absl::Status s = write(bytes);
        if (!s.ok()) return s;
        return outcome;
      };
      c.files.push_back(std::move(file));
    };
    add("announced-big", 5000, absl::OkStatus(), "");
    add("turned-out-big", 0, absl::OkStatus(), std::string(101, 'b'));
    add("gone", 0,
        absl::NotFoundError("Test did not provide the file: file_not_found"),
        "");
    add("ok", 3, absl::OkStatus(), "abc");
    return c;
  };
  // The router double keeps no events; look at them through a wrapper.
  class Capturing : public InboundRouter {
   public:
    explicit Capturing(FakeRouter* inner) : inner_(inner) {}
    void Publish(
        v1::Event event,
        std::function<void(absl::StatusOr<v1::PublishAck>)> done) override {
      {
        absl::MutexLock lock(&mu);
        events.push_back(event);
      }
      inner_->Publish(std::move(event), std::move(done));
    }
    absl::StatusOr<v1::BlobRef> PutBlob(
        const v1::BlobMeta& meta,
        const std::function<absl::StatusOr<size_t>(char*, size_t)>& read)
        override {
      return inner_->PutBlob(meta, read);
    }
    absl::Mutex mu;
    std::vector<v1::Event> events ABSL_GUARDED_BY(mu);

   private:
    FakeRouter* inner_;
  };
  Capturing capturing(&router_);
  InboundPipeline pipeline(options, &capturing);
  ASSERT_TRUE(pipeline.Submit(Route("a"), convert, results_.For("in")).ok());
  ASSERT_TRUE(router_.WaitPublished("files"));
  ASSERT_TRUE(router_.Ack("files"));
  EXPECT_TRUE(results_.Wait("in").ok());
  absl::MutexLock lock(&capturing.mu);
  ASSERT_EQ(capturing.events.size(), 1u);
  const auto& a = capturing.events[0].posted().attachments();
  ASSERT_EQ(a.size(), 4);
  EXPECT_EQ(a[0].unavailable_reason(),
            "file is larger than the bridge's limit of 100 bytes");
  EXPECT_EQ(a[1].unavailable_reason(),
            "file is larger than the bridge's limit of 100 bytes");
  EXPECT_EQ(a[2].unavailable_reason(),
            "Test did not provide the file: file_not_found");
  EXPECT_EQ(a[3].unavailable_reason(), "");
  EXPECT_EQ(router_.blob(a[3].blob_id()), "abc");
}

TEST_F(InboundPipelineTest, ARetryableDownloadFailureRetriesTheInput) {
  Make();
  auto convert = []() -> absl::StatusOr<InboundConversion> {
    InboundConversion c;
    c.events.push_back(Text("f", "a"));
    c.events[0].mutable_posted()->add_attachments()->set_name("x");
    InboundFile file;
    file.download = [](uint64_t,
                       const std::function<absl::Status(absl::string_view)>&) {
      return RetryableError("messenger answered 502");
    };
    c.files.push_back(std::move(file));
    return c;
  };
  ASSERT_TRUE(pipeline_->Submit(Route("a"), convert, results_.For("in")).ok());
  InboundResult result = results_.Wait("in");
  EXPECT_EQ(result.outcome, InboundResult::Outcome::kRetry);
  EXPECT_THAT(result.detail, ::testing::HasSubstr("502"));
  EXPECT_THAT(router_.published(), IsEmpty());
}

TEST_F(InboundPipelineTest, AnInputToRetryTakesTheRestOfItsChatWithIt) {
  InboundPipeline::Options options;
  options.max_lane_in_flight = 2;
  Make(options);
  for (const char* key : {"a1", "a2", "a3"}) {
    ASSERT_TRUE(
        pipeline_->Submit(Route("a"), TextInput(key, "a"), results_.For(key))
            .ok());
  }
  ASSERT_TRUE(
      pipeline_->Submit(Route("b"), TextInput("b1", "b"), results_.For("b1"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a2"));
  ASSERT_TRUE(router_.FailPublish("a1"));
  EXPECT_EQ(results_.Wait("a1").outcome, InboundResult::Outcome::kRetry);
  // An input that comes meanwhile is not published before a2's answer.
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a4", "a"), results_.For("a4"))
          .ok());
  // a2 was already on the stream; the router refuses it (after_seq) and
  // the transport delivers it again after a1.
  EXPECT_EQ(results_.count("a2"), 0);
  ASSERT_TRUE(router_.Ack("a2", v1::PublishAck::FAILED));
  EXPECT_EQ(results_.Wait("a2").outcome, InboundResult::Outcome::kFailed);
  // a3 was not published yet: it goes back too, answered in its turn.
  EXPECT_EQ(results_.Wait("a3").outcome, InboundResult::Outcome::kRetry);
  // a4 is behind a2, which is to be retried, so it goes back as well.
  EXPECT_EQ(results_.Wait("a4").outcome, InboundResult::Outcome::kRetry);
  // Once the lane has drained, the chat goes on.
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a5", "a"), results_.For("a5"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a5"));
  ASSERT_TRUE(router_.Ack("a5"));
  EXPECT_TRUE(results_.Wait("a5").ok());
  // Another chat is not affected.
  ASSERT_TRUE(router_.WaitPublished("b1"));
  ASSERT_TRUE(router_.Ack("b1"));
  EXPECT_TRUE(results_.Wait("b1").ok());
  EXPECT_THAT(router_.published(),
              ::testing::UnorderedElementsAre("a1", "a2", "a5", "b1"));
  EXPECT_EQ(pipeline_->held(), 0u);
}

TEST_F(InboundPipelineTest, StopHandsBackWhatIsQueuedAndRefusesMore) {
  InboundPipeline::Options options;
  options.stop_timeout = absl::Milliseconds(100);
  options.max_lane_in_flight = 1;
  Make(options);
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a1", "a"), results_.For("a1"))
          .ok());
  ASSERT_TRUE(
      pipeline_->Submit(Route("a"), TextInput("a2", "a"), results_.For("a2"))
          .ok());
  ASSERT_TRUE(router_.WaitPublished("a1"));
  pipeline_->Stop();
  EXPECT_EQ(results_.Wait("a2").outcome, InboundResult::Outcome::kRetry);
  // a1 was never acknowledged: answered as a retry once the wait ran out.
  EXPECT_EQ(results_.Wait("a1").outcome, InboundResult::Outcome::kRetry);
  EXPECT_EQ(
      pipeline_->Submit(Route("a"), TextInput("a3", "a"), results_.For("a3"))
          .code(),
      absl::StatusCode::kUnavailable);
  // A late acknowledgement changes nothing.
  EXPECT_TRUE(router_.Ack("a1"));
  EXPECT_EQ(results_.count("a1"), 1);
  EXPECT_THAT(router_.published(), ElementsAre("a1"));
}

// An input routed with convert_here is converted and published on the
// thread that submits it: published when Submit() returns, answered only
// after the router's acknowledgement.
TEST_F(InboundPipelineTest, AnInputToConvertHereIsPublishedInsideSubmit) {
  Make();
  std::thread::id converted_on;
  InboundRoute route = Route("a", "k1");
  route.convert_here = true;
  ASSERT_TRUE(pipeline_
                  ->Submit(
                      route,
                      [&]() -> absl::StatusOr<InboundConversion> {
                        converted_on = std::this_thread::get_id();
                        return TextInput("a1", "a")();
                      },
                      results_.For("a1"))
                  .ok());
  EXPECT_EQ(converted_on, std::this_thread::get_id());
  EXPECT_THAT(router_.published(), ElementsAre("a1"));
  EXPECT_EQ(results_.count("a1"), 0);
  ASSERT_TRUE(router_.Ack("a1"));
  EXPECT_TRUE(results_.Wait("a1").ok());
  EXPECT_EQ(pipeline_->held(), 0u);
}

// Inputs converted on the submitting thread and ones converted on workers
// (a message with a file) share a lane: the chat's order holds for the
// publishes and the answers.
TEST_F(InboundPipelineTest, InputsConvertedHereKeepTheirChatsOrder) {
  Make();
  Gate gate;
  std::vector<std::string> keys;
  for (int i = 1; i <= 12; ++i) {
    std::string key = absl::StrCat("a", i);
    keys.push_back(key);
    InboundRoute route = Route("a");
    // Every fourth has a file, whose download waits at the gate first.
    route.convert_here = i % 4 != 0;
    auto convert = i % 4 != 0
                       ? TextInput(key, "a")
                       : FileInput(key, "a", "data", i == 4 ? &gate : nullptr);
    ASSERT_TRUE(
        pipeline_->Submit(route, std::move(convert), results_.For(key)).ok());
  }
  ASSERT_TRUE(gate.WaitRunning(1));
  // a5.. wait behind the file of a4.
  EXPECT_THAT(router_.published(), ElementsAre("a1", "a2", "a3"));
  gate.Release();
  ASSERT_TRUE(router_.WaitPublished("a12"));
  EXPECT_EQ(router_.published(), keys);
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    ASSERT_TRUE(router_.Ack(*it));
  }
  EXPECT_TRUE(results_.Wait("a12").ok());
  EXPECT_EQ(results_.order(), keys);
}

// A conversion on the submitting thread that fails is answered inside
// Submit(), and the lane goes on.
TEST_F(InboundPipelineTest, AFailedConversionHereIsAnsweredAndTheLaneGoesOn) {
  Make();
  InboundRoute route = Route("a");
  route.convert_here = true;
  ASSERT_TRUE(pipeline_
                  ->Submit(
                      route,
                      []() -> absl::StatusOr<InboundConversion> {
                        throw std::runtime_error("bad input");
                      },
                      results_.For("bad"))
                  .ok());
  EXPECT_EQ(results_.count("bad"), 1);
  EXPECT_EQ(results_.Wait("bad").outcome, InboundResult::Outcome::kInvalid);
  ASSERT_TRUE(
      pipeline_->Submit(route, TextInput("a2", "a"), results_.For("a2")).ok());
  ASSERT_TRUE(router_.Ack("a2"));
  EXPECT_TRUE(results_.Wait("a2").ok());
}

// Stop() waits for a conversion in progress on a submitting thread before
// it lets the download slots go (which that conversion may use).
TEST_F(InboundPipelineTest, StopWaitsForAConversionOnASubmittingThread) {
  InboundPipeline::Options options;
  options.stop_timeout = absl::Milliseconds(100);
  Make(options);
  Gate gate;
  std::atomic<bool> converted{false};
  std::thread submitter([&] {
    InboundRoute route = Route("a");
    route.convert_here = true;
    EXPECT_TRUE(pipeline_
                    ->Submit(
                        route,
                        [&]() -> absl::StatusOr<InboundConversion> {
                          gate.Pass();
                          converted = true;
                          return FileInput("a1", "a", "data", nullptr)();
                        },
                        results_.For("a1"))
                    .ok());
  });
  ASSERT_TRUE(gate.WaitRunning(1));
  std::thread stopper([&] { pipeline_->Stop(); });
  absl::SleepFor(absl::Milliseconds(50));
  gate.Release();
  stopper.join();
  submitter.join();
  EXPECT_TRUE(converted);
  // Its file was copied and the event published; never acknowledged, so
  // answered kRetry by Stop().
  EXPECT_THAT(router_.published(), ElementsAre("a1"));
  EXPECT_EQ(results_.Wait("a1").outcome, InboundResult::Outcome::kRetry);
}

TEST(AccountInboundRoute, ScopesTheLaneAndTheKeyToTheAccount) {
  InboundRoute route = AccountInboundRoute("work", "C1", "Ev9");
  EXPECT_EQ(route.chat, "work/C1");
  EXPECT_EQ(route.key, "work:Ev9");
  EXPECT_FALSE(route.convert_here);
  InboundRoute other = AccountInboundRoute("home", "C1", "Ev9");
  EXPECT_NE(other.chat, route.chat);
  EXPECT_NE(other.key, route.key);
}

}  // namespace
}  // namespace imbridge::adapters
