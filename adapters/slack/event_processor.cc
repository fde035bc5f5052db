#include "adapters/slack/event_processor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {

EventProcessor::EventProcessor(Options options, const SlackApi* api,
                               UserDirectory* users, Executor* executor,
                               Publisher publish, BlobStore blobs)
    : options_(std::move(options)),
      api_(api),
      users_(users),
      executor_(executor),
      publish_(std::move(publish)),
      blobs_(std::move(blobs)) {}

void EventProcessor::SetIdentity(BotIdentity identity) {
  absl::MutexLock lock(&mu_);
  identity_ = std::move(identity);
}

std::optional<BotIdentity> EventProcessor::identity() const {
  absl::MutexLock lock(&mu_);
  return identity_;
}

uint64_t EventProcessor::deduplicated() const {
  absl::MutexLock lock(&mu_);
  return deduplicated_;
}

void EventProcessor::Handle(nlohmann::json callback, Done done) {
  std::string event_id;
  auto it = callback.find("event_id");
  if (it != callback.end() && it->is_string())
    event_id = it->get<std::string>();
  if (event_id.empty()) {
    LogWarn("event callback without event_id ignored",
            {{"account", options_.account}});
    done(200);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!identity_.has_value()) {
      // Without the bot's identity its own posts cannot be recognised.
      done(503);
      return;
    }
    auto seen = seen_.find(event_id);
    if (seen != seen_.end()) {
      ++deduplicated_;
      if (!seen->second.done) {
        seen->second.waiters.push_back(std::move(done));
        return;
      }
    } else {
      seen_[event_id].waiters.push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) {
    LogDebug("event already handled", {{"event_id", event_id}});
    done(200);
    return;
  }
  executor_->Post([this, callback = std::move(callback), event_id] {
    Process(callback, event_id);
  });
}

void EventProcessor::Process(const nlohmann::json& callback,
                             const std::string& event_id) {
  BotIdentity self = *identity();
  UserLookup lookup = [this](absl::string_view id) {
    return users_->Lookup(id);
  };
  InboundConversion c =
      ConvertEventCallback(callback, options_.account, self, lookup);
  if (!c.event.has_value()) {
    LogDebug("event not relayed",
             {{"event_id", event_id}, {"reason", c.ignored}});
    Finish(event_id, 200);
    return;
  }
  v1::Event event = std::move(*c.event);
  if (event.has_posted() && !c.file_urls.empty()) {
    absl::Status copied = CopyFiles(c.file_urls, event.mutable_posted());
    if (!copied.ok()) {
      LogWarn("file copy failed; Slack will retry the event",
              {{"event_id", event_id}, {"error", copied.message()}});
      Finish(event_id, 503);
      return;
    }
  }
  std::function<void(const v1::Event&)> on_posted;
  if (event.has_posted()) on_posted = options_.on_posted;
  auto posted_copy = std::make_shared<v1::Event>();
  if (on_posted) *posted_copy = event;
  absl::Status status = publish_(
      std::move(event),
      [this, event_id, on_posted, posted_copy](const v1::PublishAck& ack) {
        bool ok = ack.outcome() == v1::PublishAck::ACCEPTED ||
                  ack.outcome() == v1::PublishAck::DUPLICATE ||
                  ack.outcome() == v1::PublishAck::DROPPED;
        if (!ok) {
          LogWarn("router refused an event",
                  {{"event_id", event_id}, {"detail", ack.detail()}});
        }
        if (ok && on_posted && ack.outcome() == v1::PublishAck::ACCEPTED) {
          on_posted(*posted_copy);
        }
        Finish(event_id, ok ? 200 : 500);
      });
  if (!status.ok()) {
    LogWarn("publish failed",
            {{"event_id", event_id}, {"error", status.message()}});
    Finish(event_id, 503);
  }
}

absl::Status EventProcessor::CopyFiles(const std::vector<std::string>& urls,
                                       v1::MessagePosted* posted) {
  for (int i = 0;
       i < posted->attachments_size() && i < static_cast<int>(urls.size());
       ++i) {
    v1::Attachment* a = posted->mutable_attachments(i);
    if (!a->unavailable_reason().empty() || urls[i].empty()) continue;
    if (a->size() > options_.max_file_bytes) {
      a->set_unavailable_reason(
          absl::StrCat("larger than ", options_.max_file_bytes, " bytes"));
      continue;
    }
    auto data = api_->DownloadFile(urls[i], options_.max_file_bytes,
                                   options_.download_timeout);
    if (!data.ok()) {
      if (data.status().code() == absl::StatusCode::kOutOfRange) {
        a->set_unavailable_reason(
            absl::StrCat("larger than ", options_.max_file_bytes, " bytes"));
        continue;
      }
      if (IsRetryable(data.status())) return data.status();
      a->set_unavailable_reason(std::string(data.status().message()));
      continue;
    }
    v1::BlobMeta meta;
    meta.set_name(a->name());
    meta.set_mime_type(a->mime_type());
    meta.set_size(data->size());
    auto ref = blobs_(meta, *data);
    if (!ref.ok()) {
      if (ref.status().code() == absl::StatusCode::kResourceExhausted) {
        a->set_unavailable_reason("larger than the bridge's file limit");
        continue;
      }
      return RetryableError(
          absl::StrCat("blob store: ", ref.status().message()));
    }
    a->set_blob_id(ref->blob_id());
    a->set_size(ref->size());
  }
  return absl::OkStatus();
}

void EventProcessor::Finish(const std::string& event_id, int http_status) {
  std::vector<Done> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(event_id);
    if (it == seen_.end()) return;
    waiters = std::move(it->second.waiters);
    it->second.waiters.clear();
    if (http_status == 200) {
      if (!it->second.done) {
        it->second.done = true;
        done_order_.push_back(event_id);
        while (done_order_.size() > options_.dedupe_capacity) {
          seen_.erase(done_order_.front());
          done_order_.pop_front();
        }
      }
    } else {
      seen_.erase(it);
    }
  }
  for (auto& w : waiters) w(http_status);
}

}  // namespace imbridge::adapters::slack
