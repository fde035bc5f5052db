#include "bridge/chat_commands.h"

#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bridge/adapter_commands.h"

namespace imbridge::bridge {
namespace {

std::string PresenceWord(v1::Presence p) {
  switch (p) {
    case v1::ONLINE:
      return "online";
    case v1::AWAY:
      return "away";
    case v1::DND:
      return "do not disturb";
    case v1::OFFLINE:
      return "offline";
    default:
      return "presence unknown";
  }
}

std::string Describe(const v1::ChannelRef& c) {
  std::string out = absl::StrCat(c.platform(), " chat ", c.chat_id());
  if (!c.thread_id().empty())
    absl::StrAppend(&out, " (thread ", c.thread_id(), ")");
  return out;
}

std::string Age(absl::Duration d) {
  if (d < absl::Minutes(1)) return absl::StrCat(absl::ToInt64Seconds(d), " s");
  if (d < absl::Hours(1)) return absl::StrCat(absl::ToInt64Minutes(d), " min");
  return absl::StrCat(absl::ToInt64Hours(d), " h");
}

// The other members of the links `origin` belongs to, each once.
std::vector<std::pair<std::string, v1::LinkMember>> OtherMembers(
    const v1::ChannelRef& origin, const LinkTable& links) {
  std::vector<std::pair<std::string, v1::LinkMember>> out;
  std::vector<std::string> seen;
  for (const v1::Link* link : links.LinksOf(origin)) {
    for (const v1::LinkMember& m : link->members()) {
      if (m.platform() == origin.platform() &&
          m.account() == origin.account() && m.chat_id() == origin.chat_id()) {
        continue;
      }
      std::string key = ChannelKey(MemberChannel(m), true);
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      out.emplace_back(link->name(), m);
    }
  }
  return out;
}

}  // namespace

ChatCommands::ChatCommands(const v1::ChatCommandOptions& options, Store* store)
    : enabled_(!options.has_enabled() || options.enabled()),
      prefix_(options.prefix().empty() ? "!bridge" : options.prefix()),
      store_(store) {}

bool ChatCommands::IsCommand(const v1::Event& event) const {
  if (!enabled_ || !event.has_posted()) return false;
  absl::string_view text =
      absl::StripLeadingAsciiWhitespace(event.posted().text().text());
  if (!absl::StartsWith(text, prefix_)) return false;
  text.remove_prefix(prefix_.size());
  return text.empty() ||
         absl::ascii_isspace(static_cast<unsigned char>(text[0]));
}

void ChatCommands::Answer(const v1::Event& event, const LinkTable& links,
                          absl::Time now, AnswerDone done) const {
  absl::string_view text =
      absl::StripAsciiWhitespace(event.posted().text().text());
  text.remove_prefix(std::min(text.size(), prefix_.size()));
  auto [word, args] = SplitCommand(text);
  if (word == "who" && args.empty()) {
    done(CommandAnswer{Who(event, links), false});
    return;
  }
  if (word == "status" && args.empty()) {
    done(CommandAnswer{Status(event, links, now), false});
    return;
  }
  if (adapters_ != nullptr && !word.empty() &&
      adapters_->Forward(word, args, event, done)) {
    return;
  }
  done(CommandAnswer{Help(), false});
}

std::string ChatCommands::Help() const {
  std::string out =
      absl::StrCat("imbridge commands:\n", prefix_,
                   " who: the people on the other side of this chat\n", prefix_,
                   " status: the health of this chat's links");
  if (adapters_ != nullptr) {
    for (const auto& [word, platform] : adapters_->AttachedWords()) {
      absl::StrAppend(&out, "\n", prefix_, " ", word, " ...: answered by the ",
                      platform, " adapter");
    }
  }
  return out;
}

std::string ChatCommands::Who(const v1::Event& event,
                              const LinkTable& links) const {
  auto members = OtherMembers(event.channel(), links);
  if (members.empty()) return "This chat is not linked to any other chat.";
  // Last known presence per platform/account/user, of the platforms on the
  // other side only.
  std::map<std::string, v1::Presence> presence;
  std::set<std::string> platforms;
  for (const auto& [link, member] : members)
    platforms.insert(member.platform());
  for (const std::string& platform : platforms) {
    auto roster = store_->ListRoster(platform);
    if (!roster.ok()) continue;
    for (const RosterEntry& e : *roster) {
      presence[absl::StrCat(e.platform, "/", e.account, "/", e.user_id)] =
          e.presence;
    }
  }
  std::string out = "People on the other side of this chat:";
  int people = 0;
  for (const auto& [link, member] : members) {
    v1::ChannelRef channel = MemberChannel(member);
    auto participants = store_->ListParticipants(ChannelKey(channel, false));
    if (!participants.ok() || participants->empty()) continue;
    absl::StrAppend(&out, "\n", Describe(channel), " (link ", link, "):");
    for (const Participant& p : *participants) {
      auto it = presence.find(absl::StrCat(channel.platform(), "/",
                                           channel.account(), "/", p.user_id));
      absl::StrAppend(
          &out, "\n• ", p.display_name.empty() ? p.user_id : p.display_name,
          " (", channel.platform(), "): ",
          PresenceWord(it == presence.end() ? v1::PRESENCE_UNSPECIFIED
                                            : it->second));
      ++people;
    }
  }
  if (people == 0) {
    return "Nobody on the other side of this chat has spoken here yet.";
  }
  return out;
}

std::string ChatCommands::Status(const v1::Event& event, const LinkTable& links,
                                 absl::Time now) const {
  std::vector<const v1::Link*> mine = links.LinksOf(event.channel());
  if (mine.empty()) return "This chat is not linked to any other chat.";
  std::string out;
  for (const v1::Link* link : mine) {
    if (!out.empty()) out += "\n";
    absl::StrAppend(&out, "Link ", link->name(), ": ", link->members_size(),
                    " members");
    for (const v1::LinkMember& m : link->members()) {
      v1::ChannelRef channel = MemberChannel(m);
      bool attached = attached_ && attached_(channel);
      absl::StrAppend(&out, "\n• ", Describe(channel), ": ",
                      attached ? "attached" : "NOT attached");
      auto counts = store_->CountDeliveries(ChannelKey(channel, true));
      if (!counts.ok()) {
        absl::StrAppend(&out, ", queue unknown");
        continue;
      }
      absl::StrAppend(&out, ", ", counts->pending, " queued");
      if (counts->pending > 0 &&
          counts->oldest_pending != absl::InfiniteFuture()) {
        absl::StrAppend(&out, " (oldest ", Age(now - counts->oldest_pending),
                        ")");
      }
      absl::StrAppend(&out, ", ", counts->dead, " dead-lettered");
    }
  }
  return out;
}

}  // namespace imbridge::bridge
