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
  enum class State {
    kQueued,     // waiting for its lane
    kActive,     // converting, fetching files, being published
    kPublished,  // every event handed to the router, acks outstanding
    kDone,       // result known; answered when it reaches its lane's front
  };
  std::string chat;
  std::string key;
  bool here = false;  // InboundRoute::convert_here
  std::function<absl::StatusOr<InboundConversion>()> convert;
  InboundConversion conversion;
  // The rest is guarded by the pipeline's mu_.
  std::vector<DoneCallback> waiters;
  State state = State::kQueued;
  size_t unacknowledged = 0;
  InboundResult result;
};

InboundRoute AccountInboundRoute(absl::string_view account,
                                 absl::string_view chat, absl::string_view id) {
  InboundRoute route;
  route.chat = absl::StrCat(account, "/", chat);
  route.key = absl::StrCat(account, ":", id);
  return route;
}

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
  std::shared_ptr<Input> here;
  {
    absl::MutexLock lock(&mu_);
    absl::Status taken =
        TakeLocked(route, std::move(convert), std::move(done), &here);
    if (!taken.ok() || here == nullptr) return taken;
    ++submitters_converting_;
  }
  Run(std::move(here));
  absl::MutexLock lock(&mu_);
  --submitters_converting_;
  return absl::OkStatus();
}

absl::Status InboundPipeline::TakeLocked(
    const InboundRoute& route,
    std::function<absl::StatusOr<InboundConversion>()> convert,
    DoneCallback done, std::shared_ptr<Input>* here) {
  if (stopped_) return absl::UnavailableError("the adapter is stopping");
  if (!route.key.empty()) {
    auto it = by_key_.find(route.key);
    if (it != by_key_.end()) {
      it->second->waiters.push_back(std::move(done));
      return absl::OkStatus();
    }
  }
  Lane& lane = lanes_[route.chat];
  if (held_ >= options_.max_inputs ||
      lane.inputs.size() >= options_.max_lane_inputs) {
    if (lane.inputs.empty()) lanes_.erase(route.chat);
    return absl::ResourceExhaustedError(
        "too many incoming events are waiting; try again later");
  }
  auto input = std::make_shared<Input>();
  input->chat = route.chat;
  input->key = route.key;
  input->here = route.convert_here;
  input->convert = std::move(convert);
  input->waiters.push_back(std::move(done));
  lane.inputs.push_back(input);
  ++held_;
  if (!route.key.empty()) by_key_[route.key] = input;
  *here = StartNextLocked(route.chat, true);
  return absl::OkStatus();
}

void InboundPipeline::Run(std::shared_ptr<Input> input) {
  while (input != nullptr) input = Convert(input);
}

bool InboundPipeline::WaitForRoom(absl::string_view chat,
                                  absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_) return true;
    if (held_ >= options_.max_inputs) return false;
    auto it = lanes_.find(chat);
    return it == lanes_.end() ||
           it->second.inputs.size() < options_.max_lane_inputs;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&room), timeout) && !stopped_;
}

size_t InboundPipeline::held() const {
  absl::MutexLock lock(&mu_);
  return held_;
}

std::shared_ptr<InboundPipeline::Input> InboundPipeline::StartNextLocked(
    const std::string& chat, bool here) {
  if (stopped_) return nullptr;
  auto it = lanes_.find(chat);
  if (it == lanes_.end()) return nullptr;
  Lane& lane = it->second;
  if (lane.active != nullptr) return nullptr;
  size_t in_flight = 0;
  std::shared_ptr<Input> next;
  for (const std::shared_ptr<Input>& input : lane.inputs) {
    if (input->state == Input::State::kQueued) {
      next = input;
      break;
    }
    ++in_flight;  // Published, or answered only after an earlier one.
  }
  if (next == nullptr) return nullptr;
  if (lane.broken) {
    // What was queued when an input failed was answered with it; what came
    // later waits until the inputs published before the failure are
    // through.
    if (lane.inputs.front() != next) return nullptr;
    lane.broken = false;
  }
  if (in_flight >= std::max<size_t>(options_.max_lane_in_flight, 1)) {
    return nullptr;
  }
  next->state = Input::State::kActive;
  lane.active = next;
  if (here && next->here) return next;
  converters_->Post([this, next] { Run(next); });
  return nullptr;
}

std::shared_ptr<InboundPipeline::Input> InboundPipeline::Convert(
    const std::shared_ptr<Input>& input) {
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
    return nullptr;
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
      return nullptr;
    }
  }
  if (input->conversion.files.empty()) return Publish(input);
  downloads_->Post([this, input] { CopyFiles(input); });
  return nullptr;
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
  Run(Publish(input));
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

std::shared_ptr<InboundPipeline::Input> InboundPipeline::Publish(
    const std::shared_ptr<Input>& input) {
  const size_t events = input->conversion.events.size();
  if (events == 0) {
    Finish(input, InboundResult());
    return nullptr;
  }
  bool publish = false;
  {
    absl::MutexLock lock(&mu_);
    // Stop() answered it.
    if (input->state != Input::State::kActive) return nullptr;
    publish = !lanes_.find(input->chat)->second.broken;
    if (publish) {
      // The lane stays active until every event was handed over, so that
      // the next input's events cannot be handed over in between.
      input->state = Input::State::kPublished;
      input->unacknowledged = events;
    }
  }
  if (!publish) {
    Finish(input,
           Result(InboundResult::Outcome::kRetry,
                  "an earlier event of the same chat is to be retried first"));
    return nullptr;
  }
  for (size_t i = 0; i < events; ++i) {
    if (i > 0) {
      // An event refused at once (the router client is full) ends the
      // input; the events after it are not published.
      absl::MutexLock lock(&mu_);
      if (input->state == Input::State::kDone) break;
    }
    // Moved: nothing reads the event after it was handed over (a retry
    // that joins the input gets its result; logs name the input's key).
    router_->Publish(std::move(input->conversion.events[i]),
                     [this, input](absl::StatusOr<v1::PublishAck> ack) {
                       Acknowledged(input, std::move(ack));
                     });
  }
  absl::MutexLock lock(&mu_);
  auto lane = lanes_.find(input->chat);
  if (lane != lanes_.end() && lane->second.active == input) {
    lane->second.active = nullptr;
  }
  return StartNextLocked(input->chat, true);
}

void InboundPipeline::Acknowledged(const std::shared_ptr<Input>& input,
                                   absl::StatusOr<v1::PublishAck> ack) {
  if (!ack.ok()) {
    // An event that cannot be sent at all (text that is not UTF-8) is the
    // input's fault; anything else passes.
    Finish(input, Result(absl::IsInvalidArgument(ack.status())
                             ? InboundResult::Outcome::kInvalid
                             : InboundResult::Outcome::kRetry,
                         std::string(ack.status().message())));
    return;
  }
  switch (ack->outcome()) {
    case v1::PublishAck::ACCEPTED:
    case v1::PublishAck::DUPLICATE:
    case v1::PublishAck::DROPPED: {
      bool last = false;
      {
        absl::MutexLock lock(&mu_);
        last = input->unacknowledged > 0 && --input->unacknowledged == 0;
      }
      if (last) Finish(input, InboundResult());
      return;
    }
    default: {
      // A rejected event is the input's fault (sending it again won't
      // help); one the router failed to store may be retried.
      const bool rejected = ack->outcome() == v1::PublishAck::REJECTED;
      LogWarn("router did not take an incoming event",
              {{"key", input->key},
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
}

void InboundPipeline::Finish(const std::shared_ptr<Input>& input,
                             InboundResult result) {
  Answers answers;
  {
    absl::MutexLock lock(&mu_);
    FinishLocked(input, std::move(result), &answers);
  }
  // Answered before the lane's next input starts, so that answers come in
  // the lane's order also when the next one fails before it is published.
  Answer(answers);
  absl::MutexLock lock(&mu_);
  StartNextLocked(input->chat, false);
}

void InboundPipeline::FinishLocked(const std::shared_ptr<Input>& input,
                                   InboundResult result, Answers* answers) {
  if (input->state == Input::State::kDone) return;  // The first result counts.
  auto it = lanes_.find(input->chat);
  if (it == lanes_.end()) return;
  Lane& lane = it->second;
  // An input being handed to the router keeps its lane until its loop is
  // through (see Publish).
  if (lane.active == input && input->state == Input::State::kActive) {
    lane.active = nullptr;
  }
  input->state = Input::State::kDone;
  input->result = std::move(result);
  const InboundResult::Outcome outcome = input->result.outcome;
  if (outcome == InboundResult::Outcome::kRetry ||
      outcome == InboundResult::Outcome::kFailed) {
    // The transport delivers this input again; what came after it in its
    // chat and was not published yet must not go first.
    lane.broken = true;
    for (const std::shared_ptr<Input>& later : lane.inputs) {
      if (later->state != Input::State::kQueued) continue;
      later->state = Input::State::kDone;
      later->result =
          Result(InboundResult::Outcome::kRetry,
                 "an earlier event of the same chat is to be retried first");
    }
  }
  // Answers go out in the lane's order: an input is answered when every
  // earlier input of its lane was.
  while (!lane.inputs.empty() &&
         lane.inputs.front()->state == Input::State::kDone) {
    std::shared_ptr<Input> done = std::move(lane.inputs.front());
    lane.inputs.pop_front();
    --held_;
    for (DoneCallback& d : done->waiters) {
      answers->emplace_back(std::move(d), done->result);
    }
    done->waiters.clear();
    auto by_key = by_key_.find(done->key);
    if (by_key != by_key_.end() && by_key->second == done) {
      by_key_.erase(by_key);
    }
  }
  if (lane.inputs.empty()) lanes_.erase(it);
}

void InboundPipeline::Answer(Answers& answers) {
  for (auto& [done, result] : answers) done(result);
}

void InboundPipeline::Stop() {
  Answers refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    // Inputs not started yet are handed back to their transports.
    InboundResult stopping =
        Result(InboundResult::Outcome::kRetry, "the adapter is stopping");
    std::vector<std::shared_ptr<Input>> queued;
    for (auto& [chat, lane] : lanes_) {
      for (const auto& input : lane.inputs) {
        if (input->state == Input::State::kQueued) queued.push_back(input);
      }
    }
    for (const auto& input : queued) FinishLocked(input, stopping, &refused);
  }
  Answer(refused);
  // Conversions (on workers and in Submit() calls), then file copies (which
  // conversions post), run out.
  converters_.reset();
  {
    absl::MutexLock lock(&mu_);
    auto converted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return submitters_converting_ == 0;
    };
    mu_.Await(absl::Condition(&converted));
  }
  downloads_.reset();
  Answers unanswered;
  {
    absl::MutexLock lock(&mu_);
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return held_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&drained), options_.stop_timeout);
    InboundResult stopping =
        Result(InboundResult::Outcome::kRetry, "the adapter is stopping");
    std::vector<std::shared_ptr<Input>> left;
    for (auto& [chat, lane] : lanes_) {
      for (const auto& input : lane.inputs) left.push_back(input);
    }
    for (const auto& input : left) FinishLocked(input, stopping, &unanswered);
  }
  Answer(unanswered);
}

}  // namespace imbridge::adapters
