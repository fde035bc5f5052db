#include "adapters/slack/event_processor.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {
namespace {

// The channel an event belongs to: `channel` (an id, or an object with an
// id), else `item.channel` (reactions); empty when it has none.
std::string EventChannel(const nlohmann::json& event) {
  if (!event.is_object()) return "";
  auto channel = event.find("channel");
  if (channel != event.end()) {
    if (channel->is_string()) return channel->get<std::string>();
    if (channel->is_object()) {
      auto id = channel->find("id");
      if (id != channel->end() && id->is_string()) {
        return id->get<std::string>();
      }
    }
  }
  auto item = event.find("item");
  if (item != event.end() && item->is_object()) {
    auto c = item->find("channel");
    if (c != item->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

}  // namespace

EventProcessor::EventProcessor(Options options, const SlackApi* api,
                               UserDirectory* users)
    : options_(std::move(options)), api_(api), users_(users) {}

void EventProcessor::SetIdentity(BotIdentity identity) {
  absl::MutexLock lock(&mu_);
  identity_ = std::move(identity);
}

std::optional<BotIdentity> EventProcessor::identity() const {
  absl::MutexLock lock(&mu_);
  return identity_;
}

absl::StatusOr<InboundRoute> EventProcessor::Route(
    const nlohmann::json& callback) {
  auto event = callback.find("event");
  return AccountInboundRoute(
      options_.account,
      event == callback.end() ? std::string() : EventChannel(*event),
      callback.value("event_id", std::string()));
}

absl::StatusOr<adapters::InboundConversion> EventProcessor::Convert(
    const nlohmann::json& callback) {
  std::optional<BotIdentity> self = identity();
  if (!self.has_value()) return RetryableError("bot identity not known yet");
  UserLookup lookup = [this](absl::string_view id) {
    return users_->Lookup(id);
  };
  InboundConversion c = ConvertEventCallback(callback, options_.account, *self,
                                             lookup, options_.is_copy);
  if (!c.status.ok()) return c.status;
  if (c.created_channel.has_value() && options_.on_channel_created) {
    absl::Status s = options_.on_channel_created(*c.created_channel);
    if (!s.ok()) return s;
  }
  adapters::InboundConversion conversion;
  if (!c.event.has_value()) {
    LogDebug("event not relayed",
             {{"event_id", callback.value("event_id", std::string())},
              {"reason", c.ignored}});
    return conversion;
  }
  conversion.events.push_back(*std::move(c.event));
  v1::Event& event = conversion.events[0];
  if (!event.has_posted()) return conversion;
  if (options_.on_posted) options_.on_posted(event);
  v1::MessagePosted* posted = event.mutable_posted();
  const std::string too_big =
      absl::StrCat("larger than ", options_.max_file_bytes, " bytes");
  int files = std::min(posted->attachments_size(),
                       static_cast<int>(c.file_urls.size()));
  for (int i = 0; i < files; ++i) {
    v1::Attachment* a = posted->mutable_attachments(i);
    if (!a->unavailable_reason().empty() || c.file_urls[i].empty()) continue;
    if (a->size() > options_.max_file_bytes) {
      a->set_unavailable_reason(too_big);
      continue;
    }
    InboundFile file;
    file.attachment_index = i;
    file.download =
        [this, url = c.file_urls[i], too_big](
            uint64_t max_bytes,
            const std::function<absl::Status(absl::string_view)>& write)
        -> absl::Status {
      absl::StatusOr<std::string> data =
          api_->DownloadFile(url, std::min(max_bytes, options_.max_file_bytes),
                             options_.download_timeout);
      if (!data.ok()) {
        if (absl::IsOutOfRange(data.status())) {
          return absl::FailedPreconditionError(too_big);
        }
        return data.status();
      }
      return write(*data);
    };
    conversion.files.push_back(std::move(file));
  }
  return conversion;
}

}  // namespace imbridge::adapters::slack
