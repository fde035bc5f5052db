#include "adapters/slack/user_channels.h"

#include "absl/strings/match.h"

namespace imbridge::adapters::slack {

UserChannels::UserChannels(const v1::SlackUserChannels& rule,
                           const SlackApi* api, size_t cache_size)
    : rule_(rule),
      listed_(rule.channels().begin(), rule.channels().end()),
      api_(api),
      decided_(cache_size) {}

bool UserChannels::empty() const {
  return rule_.channels().empty() && rule_.created_by().empty() &&
         rule_.name_prefixes().empty();
}

bool UserChannels::Selects(const SlackChannel& channel) const {
  if (listed_.contains(channel.id)) return true;
  for (const std::string& creator : rule_.created_by()) {
    if (!channel.creator.empty() && channel.creator == creator) return true;
  }
  for (const std::string& prefix : rule_.name_prefixes()) {
    if (!prefix.empty() && absl::StartsWith(channel.name, prefix)) return true;
  }
  return false;
}

absl::StatusOr<bool> UserChannels::PostsAsUser(absl::string_view channel_id) {
  if (listed_.contains(channel_id)) return true;
  if (rule_.created_by().empty() && rule_.name_prefixes().empty()) {
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    if (const bool* known = decided_.Find(channel_id)) return *known;
  }
  absl::StatusOr<SlackChannel> info = api_->ChannelInfo(channel_id);
  if (!info.ok()) return info.status();
  info->id = std::string(channel_id);
  return Learn(*info);
}

bool UserChannels::Learn(const SlackChannel& channel) {
  bool selected = Selects(channel);
  absl::MutexLock lock(&mu_);
  decided_.Put(channel.id, selected);
  return selected;
}

}  // namespace imbridge::adapters::slack
