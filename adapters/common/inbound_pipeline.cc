#include "adapters/common/inbound_pipeline.h"

#include <cstdio>
#include <typeinfo>
#include <utility>

#include "adapters/common/delivery_handler.h"
#include "adapters/common/temp_file.h"
#include "common/logging.h"

namespace imbridge::adapters {

// One input: what the transport handed in, what the connector made of it,
// and everyone waiting for its result.
struct InboundPipeline::Input {
  std::string chat;
  std::string key;
  std::function<absl::StatusOr<InboundConversion>()> convert;
  InboundConversion conversion;
  // Guarded by the pipeline's mu_.
  std::vector<DoneCallback> waiters;
  bool finished = false;
};

int InboundResult::HttpStatus() const {
  switch (outcome) {
    case Outcome::kOk:
      return 200;
    case Outcome::kRetry:
      return 503;
    case Outcome::kInvalid:
      return 400;
    case Outcome::kFailed:
      return 500;
  }
  return 500;
}

std::string DescribeCurrentException() {
  try {
    throw;
  } catch (const std::exception& e) {
    return absl::StrCat(typeid(e).name(), ": ", e.what());
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

namespace {

InboundResult Result(InboundResult::Outcome outcome, std::string detail) {
  InboundResult r;
  r.outcome = outcome;
  r.detail = std::move(detail);
  return r;
}

// kRetry for a retryable status, kInvalid for any other.
InboundResult FromError(const absl::Status& status) {
  return Result(IsRetryable(status) ? InboundResult::Outcome::kRetry
                                    : InboundResult::Outcome::kInvalid,
                std::string(status.message()));
}

}  // namespace

InboundPipeline::InboundPipeline(Options options, InboundRouter* router)
    : options_(std::move(options)),
      router_(router),
      converters_(std::make_unique<Executor>(
          options_.convert_threads > 0 ? options_.convert_threads : 1)),
      downloads_(std::make_unique<Executor>(
          options_.download_slots > 0 ? options_.download_slots : 1)) {}

InboundPipeline::~InboundPipeline() { Stop(); }

absl::Status InboundPipeline::Submit(
    const InboundRoute& route,
    std::function<absl::StatusOr<InboundConversion>()> convert,
    DoneCallback done) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return absl::UnavailableError("the adapter is stopping");
  if (!route.key.empty()) {
    auto it = by_key_.find(route.key);
    if (it != by_key_.end()) {
      it->second->waiters.push_back(std::move(done));
      return absl::OkStatus();
    }
  }
  std::deque<std::shared_ptr<Input>>& lane = lanes_[route.chat];
  if (held_ >= options_.max_inputs || lane.size() >= options_.max_lane_inputs) {
    if (lane.empty()) lanes_.erase(route.chat);
    return absl::ResourceExhaustedError(
        "too many incoming events are waiting; try again later");
  }
  auto input = std::make_shared<Input>();
  input->chat = route.chat;
  input->key = route.key;
  input->convert = std::move(convert);
  input->waiters.push_back(std::move(done));
  lane.push_back(input);
  ++held_;
  if (!route.key.empty()) by_key_[route.key] = input;
  if (lane.size() == 1) StartLocked(input);
  return absl::OkStatus();
}

bool InboundPipeline::WaitForRoom(absl::string_view chat,
                                  absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_) return true;
    if (held_ >= options_.max_inputs) return false;
    auto it = lanes_.find(chat);
    return it == lanes_.end() || it->second.size() < options_.max_lane_inputs;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&room), timeout) && !stopped_;
}

size_t InboundPipeline::held() const {
  absl::MutexLock lock(&mu_);
  return held_;
}

void InboundPipeline::StartLocked(const std::shared_ptr<Input>& input) {
  converters_->Post([this, input] { Convert(input); });
}

void InboundPipeline::Convert(const std::shared_ptr<Input>& input) {
  absl::StatusOr<InboundConversion> conversion;
  try {
    conversion = input->convert();
  } catch (...) {
    conversion = absl::InvalidArgumentError(
        absl::StrCat("connector failed: ", DescribeCurrentException()));
  }
  input->convert = nullptr;  // Frees the raw input.
  if (!conversion.ok()) {
    LogWarn("could not convert an incoming event",
            {{"key", input->key}, {"error", conversion.status().message()}});
    Finish(input, FromError(conversion.status()));
    return;
  }
  input->conversion = *std::move(conversion);
  for (const InboundFile& file : input->conversion.files) {
    if (file.event_index >= input->conversion.events.size() ||
        file.attachment_index < 0 ||
        file.attachment_index >= input->conversion.events[file.event_index]
                                     .posted()
                                     .attachments_size()) {
      Finish(input, Result(InboundResult::Outcome::kInvalid,
                           "connector named a file without its attachment"));
      return;
    }
  }
  if (input->conversion.files.empty()) {
    PublishFrom(input, 0);
    return;
  }
  downloads_->Post([this, input] { CopyFiles(input); });
}

void InboundPipeline::CopyFiles(const std::shared_ptr<Input>& input) {
  for (const InboundFile& file : input->conversion.files) {
    v1::Attachment* attachment =
        input->conversion.events[file.event_index]
            .mutable_posted()
            ->mutable_attachments(file.attachment_index);
    absl::Status copied;
    try {
      copied = CopyFile(file, attachment);
    } catch (...) {
      copied = absl::InvalidArgumentError(
          absl::StrCat("connector failed: ", DescribeCurrentException()));
    }
    if (!copied.ok()) {
      LogWarn("could not copy a file of an incoming event",
              {{"key", input->key}, {"error", copied.message()}});
      Finish(input, FromError(copied));
      return;
    }
  }
  PublishFrom(input, 0);
}

absl::Status InboundPipeline::CopyFile(const InboundFile& file,
                                       v1::Attachment* attachment) {
  const std::string too_big =
      absl::StrCat("file is larger than the bridge's limit of ",
                   options_.max_file_bytes, " bytes");
  if (attachment->size() > options_.max_file_bytes) {
    attachment->set_unavailable_reason(too_big);
    return absl::OkStatus();
  }
  TempFile temp;
  if (temp.get() == nullptr) {
    return RetryableError("cannot create a temporary file for a download");
  }
  uint64_t received = 0;
  absl::Status downloaded = file.download(
      options_.max_file_bytes, [&](absl::string_view chunk) -> absl::Status {
        received += chunk.size();
        if (received > options_.max_file_bytes) {
          return absl::OutOfRangeError(too_big);
        }
        if (!temp.Append(chunk)) {
          return RetryableError("cannot write a temporary file");
        }
        return absl::OkStatus();
      });
  if (!downloaded.ok()) {
    if (IsRetryable(downloaded)) return downloaded;
    attachment->set_unavailable_reason(downloaded.code() ==
                                               absl::StatusCode::kOutOfRange
                                           ? too_big
                                           : std::string(downloaded.message()));
    return absl::OkStatus();
  }
  if (!temp.Rewind()) {
    return RetryableError("cannot read back a temporary file");
  }
  v1::BlobMeta meta;
  meta.set_name(attachment->name());
  meta.set_mime_type(attachment->mime_type());
  meta.set_size(received);
  FILE* f = temp.get();
  absl::StatusOr<v1::BlobRef> ref = router_->PutBlob(
      meta, [f](char* buffer, size_t max) -> absl::StatusOr<size_t> {
        size_t n = std::fread(buffer, 1, max, f);
        if (n == 0 && std::ferror(f)) {
          return absl::DataLossError("cannot read a temporary file");
        }
        return n;
      });
  if (!ref.ok()) {
    if (ref.status().code() == absl::StatusCode::kResourceExhausted) {
      attachment->set_unavailable_reason(
          "file is larger than the router's blob limit");
      return absl::OkStatus();
    }
    return RetryableError(
        absl::StrCat("router blob store: ", ref.status().message()));
  }
  attachment->set_blob_id(ref->blob_id());
  attachment->set_size(ref->size());
  if (file.stored) file.stored(*attachment);
  return absl::OkStatus();
}

void InboundPipeline::PublishFrom(const std::shared_ptr<Input>& input,
                                  size_t index) {
  if (index >= input->conversion.events.size()) {
    Finish(input, InboundResult());
    return;
  }
  // The event is copied, not moved: a retry of the input that joins it
  // later gets the same result, and logs name the key.
  std::string key = input->conversion.events[index].key();
  router_->Publish(
      input->conversion.events[index],
      [this, input, index, key](absl::StatusOr<v1::PublishAck> ack) {
        if (!ack.ok()) {
          // An event that cannot be sent at all (text that is not UTF-8)
          // is the input's fault; anything else passes.
          Finish(input, Result(absl::IsInvalidArgument(ack.status())
                                   ? InboundResult::Outcome::kInvalid
                                   : InboundResult::Outcome::kRetry,
                               std::string(ack.status().message())));
          return;
        }
        switch (ack->outcome()) {
          case v1::PublishAck::ACCEPTED:
          case v1::PublishAck::DUPLICATE:
          case v1::PublishAck::DROPPED:
            PublishFrom(input, index + 1);
            return;
          default: {
            // A rejected event is the input's fault (sending it again won't
            // help); one the router failed to store may be retried.
            const bool rejected = ack->outcome() == v1::PublishAck::REJECTED;
            LogWarn("router did not take an incoming event",
                    {{"event_key", key},
                     {"outcome", v1::PublishAck::Outcome_Name(ack->outcome())},
                     {"detail", ack->detail()}});
            Finish(input, Result(rejected ? InboundResult::Outcome::kInvalid
                                          : InboundResult::Outcome::kFailed,
                                 ack->detail().empty()
                                     ? std::string("the router did not take "
                                                   "the event")
                                     : ack->detail()));
            return;
          }
        }
      });
}

void InboundPipeline::Finish(const std::shared_ptr<Input>& input,
                             InboundResult result) {
  std::vector<DoneCallback> waiters;
  std::vector<DoneCallback> behind;  // Retried with it, to keep the order.
  std::shared_ptr<Input> next;       // The lane's next input, to start.
  {
    absl::MutexLock lock(&mu_);
    if (input->finished) return;  // Answered by Stop() already.
    auto take =
        [&](const std::shared_ptr<Input>& done, std::vector<DoneCallback>* into)
            ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              done->finished = true;
              for (DoneCallback& d : done->waiters) {
                into->push_back(std::move(d));
              }
              done->waiters.clear();
              auto by_key = by_key_.find(done->key);
              if (by_key != by_key_.end() && by_key->second == done) {
                by_key_.erase(by_key);
              }
            };
    take(input, &waiters);
    auto lane = lanes_.find(input->chat);
    if (lane != lanes_.end() && !lane->second.empty() &&
        lane->second.front() == input) {
      lane->second.pop_front();
      --held_;
      if (result.outcome == InboundResult::Outcome::kRetry) {
        // The transport delivers this input again; what came after it in
        // its chat must not go first.
        for (const std::shared_ptr<Input>& later : lane->second) {
          take(later, &behind);
          --held_;
        }
        lane->second.clear();
      }
      if (lane->second.empty()) {
        lanes_.erase(lane);
      } else {
        next = lane->second.front();
      }
    }
  }
  input->conversion = InboundConversion();
  // Answered before the next input of the lane starts, so that a lane's
  // answers come in its order.
  for (DoneCallback& done : waiters) done(result);
  InboundResult retry =
      Result(InboundResult::Outcome::kRetry,
             "an earlier event of the same chat is to be retried first");
  for (DoneCallback& done : behind) done(retry);
  if (next == nullptr) return;
  bool stopped = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopped_;
    if (!stopped) StartLocked(next);
  }
  if (stopped) {
    Finish(next,
           Result(InboundResult::Outcome::kRetry, "the adapter is stopping"));
  }
}

void InboundPipeline::Stop() {
  std::vector<DoneCallback> refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    // Inputs not started yet are handed back to their transports.
    for (auto& [chat, lane] : lanes_) {
      while (lane.size() > 1) {
        std::shared_ptr<Input> input = std::move(lane.back());
        lane.pop_back();
        --held_;
        input->finished = true;
        for (DoneCallback& done : input->waiters) {
          refused.push_back(std::move(done));
        }
        auto by_key = by_key_.find(input->key);
        if (by_key != by_key_.end() && by_key->second == input) {
          by_key_.erase(by_key);
        }
      }
    }
  }
  InboundResult stopping =
      Result(InboundResult::Outcome::kRetry, "the adapter is stopping");
  for (DoneCallback& done : refused) done(stopping);
  // Conversions, then file copies (which conversions post), run out.
  converters_.reset();
  downloads_.reset();
  std::vector<std::shared_ptr<Input>> unanswered;
  {
    absl::MutexLock lock(&mu_);
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return held_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&drained), options_.stop_timeout);
    for (auto& [chat, lane] : lanes_) {
      for (auto& input : lane) unanswered.push_back(input);
    }
  }
  for (const auto& input : unanswered) Finish(input, stopping);
}

}  // namespace imbridge::adapters
