#include "adapters/slack/service_presence.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/delivery_handler.h"
#include "common/logging.h"

namespace imbridge::adapters::slack {
namespace {

constexpr char kStatePrefix[] = "slack/service_presence/";
constexpr char kOnline[] = "online";
constexpr char kAway[] = "away";

bool CanAnswer(v1::Presence p) { return p == v1::ONLINE || p == v1::DND; }

}  // namespace

ServicePresence::ServicePresence(std::string account,
                                 const v1::SlackServicePresence& config,
                                 const SlackApi* user_api,
                                 DeliveryJournal* journal)
    : account_(std::move(account)),
      links_(config.links().begin(), config.links().end()),
      people_(config.people().begin(), config.people().end()),
      user_api_(user_api),
      journal_(journal) {}

bool ServicePresence::Follows(absl::string_view link) const {
  for (const std::string& l : links_) {
    if (absl::EndsWith(l, "*")) {
      if (absl::StartsWith(link, absl::string_view(l).substr(0, l.size() - 1)))
        return true;
    } else if (link == l) {
      return true;
    }
  }
  return false;
}

std::string ServicePresence::StateName(absl::string_view person) const {
  return absl::StrCat(kStatePrefix, account_, "/", person);
}

std::string ServicePresence::Wanted() const {
  absl::MutexLock lock(&mu_);
  return online_.empty() ? "away" : "auto";
}

absl::Status ServicePresence::LoadLocked() {
  if (loaded_) return absl::OkStatus();
  auto stored = journal_->ListState(StateName(""));
  if (!stored.ok()) {
    return RetryableError(absl::StrCat("cannot read the delivery journal: ",
                                       stored.status().message()));
  }
  const size_t prefix = StateName("").size();
  for (const auto& [name, value] : *stored) {
    std::string person = name.substr(prefix);
    if (value == kOnline && (people_.empty() || people_.contains(person))) {
      online_.insert(person);
    }
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status ServicePresence::Start() {
  absl::MutexLock tell(&tell_mu_);
  {
    absl::MutexLock lock(&mu_);
    absl::Status loaded = LoadLocked();
    if (!loaded.ok()) return loaded;
    // Slack is told again after a start, whatever it was told before.
    told_.reset();
  }
  return Tell(Wanted());
}

absl::Status ServicePresence::Apply(const v1::Delivery& delivery) {
  const v1::PresenceChanged& p = delivery.event().presence();
  const std::string person = absl::StrCat(
      p.user().platform().empty() ? delivery.event().channel().platform()
                                  : p.user().platform(),
      "/", p.user().id());
  if (!people_.empty() && !people_.contains(person)) return absl::OkStatus();
  const bool online = CanAnswer(p.presence());
  absl::MutexLock tell(&tell_mu_);
  absl::Status stored =
      journal_->PutState(StateName(person), online ? kOnline : kAway);
  if (!stored.ok()) {
    return RetryableError(
        absl::StrCat("cannot write the delivery journal: ", stored.message()));
  }
  {
    absl::MutexLock lock(&mu_);
    absl::Status loaded = LoadLocked();
    if (!loaded.ok()) return loaded;
    if (online) {
      online_.insert(person);
    } else {
      online_.erase(person);
    }
  }
  return Tell(Wanted());
}

absl::Status ServicePresence::Tell(const std::string& wanted) {
  {
    absl::MutexLock lock(&mu_);
    if (told_.has_value() && *told_ == wanted) return absl::OkStatus();
  }
  absl::Status s = user_api_->SetPresence(wanted);
  if (!s.ok()) {
    LogWarn(
        "could not set the service user's presence",
        {{"account", account_}, {"presence", wanted}, {"error", s.message()}});
    return s;
  }
  LogInfo("service user's presence set",
          {{"account", account_}, {"presence", wanted}});
  absl::MutexLock lock(&mu_);
  told_ = wanted;
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::slack
