#include "bridge/link_table.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "bridge/store.h"
#include "bridge/thread_roots.h"
#include "common/config_loader.h"

namespace imbridge::bridge {
namespace {

bool SameChat(const v1::LinkMember& m, const v1::ChannelRef& c) {
  return m.platform() == c.platform() && m.account() == c.account() &&
         m.chat_id() == c.chat_id();
}
bool SameChat(const v1::LinkMember& a, const v1::LinkMember& b) {
  return a.platform() == b.platform() && a.account() == b.account() &&
         a.chat_id() == b.chat_id();
}

// Whether an event in `origin` belongs to member `m`.
bool MemberContains(const v1::LinkMember& m, const v1::ChannelRef& origin) {
  if (m.platform() != origin.platform() || m.account() != origin.account() ||
      m.pending_thread_root() != 0) {
    return false;
  }
  if (origin.chat_id().empty()) return true;  // presence: the whole account
  if (m.chat_id() != origin.chat_id()) return false;
  return m.thread_id().empty() || m.thread_id() == origin.thread_id();
}

// The members of `link` that contain `origin` and feed the link.
std::vector<const v1::LinkMember*> Feeders(const v1::Link& link,
                                           const v1::ChannelRef& origin) {
  std::vector<const v1::LinkMember*> feeders;
  for (const v1::LinkMember& m : link.members()) {
    if (MemberContains(m, origin) && m.direction() != v1::OUT) {
      feeders.push_back(&m);
    }
  }
  return feeders;
}

// Adds to `targets` the members of `link` that receive an event of kind
// `kind` fed by `feeders`: those outside the feeders' chats whose direction
// and options take it, each queue once (`seen`).
void AddReceivers(const v1::Link& link,
                  const std::vector<const v1::LinkMember*>& feeders,
                  v1::Event::KindCase kind,
                  absl::flat_hash_set<std::string>& seen,
                  std::vector<LinkTarget>& targets) {
  for (const v1::LinkMember& m : link.members()) {
    if (m.direction() == v1::IN || !MemberAccepts(m.options(), kind)) continue;
    bool is_origin = false;
    for (const v1::LinkMember* f : feeders) {
      if (SameChat(m, *f)) is_origin = true;
    }
    if (is_origin) continue;
    v1::ChannelRef channel = MemberChannel(m);
    std::string key =
        m.pending_thread_root() != 0
            ? ParkedQueueKey(m.pending_thread_root(),
                             ChannelKey(channel, /*with_thread=*/false))
            : ChannelKey(channel, /*with_thread=*/true);
    if (!seen.insert(key).second) continue;
    targets.push_back(
        LinkTarget{link.name(), &m, std::move(channel), std::move(key)});
  }
}

}  // namespace

v1::ChannelRef MemberChannel(const v1::LinkMember& m) {
  v1::ChannelRef c;
  c.set_platform(m.platform());
  c.set_account(m.account());
  c.set_chat_id(m.chat_id());
  c.set_thread_id(m.thread_id());
  return c;
}

const std::vector<size_t>& LinkTable::CandidateLinks(
    const v1::ChannelRef& origin) const {
  static const std::vector<size_t>* const kNone = new std::vector<size_t>();
  const auto& index =
      origin.chat_id().empty() ? links_by_account_ : links_by_chat_;
  auto it =
      index.find(origin.chat_id().empty()
                     ? absl::StrCat(origin.platform(), "/", origin.account())
                     : ChannelKey(origin, /*with_thread=*/false));
  return it == index.end() ? *kNone : it->second;
}

std::vector<const v1::Link*> LinkTable::LinksOf(
    const v1::ChannelRef& origin) const {
  std::vector<const v1::Link*> out;
  for (size_t i : CandidateLinks(origin)) {
    const v1::Link& link = links_[i];
    for (const v1::LinkMember& m : link.members()) {
      if (MemberContains(m, origin)) {
        out.push_back(&link);
        break;
      }
    }
  }
  return out;
}

bool MemberAccepts(const v1::MemberOptions& o, v1::Event::KindCase kind) {
  switch (kind) {
    case v1::Event::kEdited:
      return !o.has_edits() || o.edits();
    case v1::Event::kDeleted:
      return !o.has_deletes() || o.deletes();
    case v1::Event::kPresence:
      return !o.has_presence() || o.presence();
    case v1::Event::kMembership:
      return !o.has_membership() || o.membership();
    default:
      return true;
  }
}

std::string RenderSenderName(const v1::MemberOptions& options,
                             const v1::UserRef& sender,
                             const v1::ChannelRef& origin) {
  const std::string& format = options.sender_format().empty()
                                  ? std::string("{name} ({platform})")
                                  : options.sender_format();
  std::string name =
      sender.display_name().empty() ? sender.id() : sender.display_name();
  if (name.empty()) name = "unknown";
  return absl::StrReplaceAll(format, {{"{name}", name},
                                      {"{platform}", origin.platform()},
                                      {"{account}", origin.account()},
                                      {"{user_id}", sender.id()}});
}

absl::StatusOr<std::shared_ptr<const LinkTable>> LinkTable::Build(
    const google::protobuf::RepeatedPtrField<v1::Link>& links,
    absl::string_view source) {
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < links.size(); ++i) {
    const v1::Link& link = links[i];
    std::string path = absl::StrCat("links[", i, "]");
    if (link.name().empty()) {
      return ConfigError(source, path + ".name", "required");
    }
    if (!names.insert(link.name()).second) {
      return ConfigError(
          source, path + ".name",
          absl::StrCat("duplicate link name '", link.name(), "'"));
    }
    if (link.members_size() < 2) {
      return ConfigError(source, path + ".members",
                         "a link needs at least two members");
    }
    absl::flat_hash_set<std::string> keys;
    for (int j = 0; j < link.members_size(); ++j) {
      const v1::LinkMember& m = link.members(j);
      std::string mpath = absl::StrCat(path, ".members[", j, "]");
      if (m.platform().empty())
        return ConfigError(source, mpath + ".platform", "required");
      if (m.account().empty())
        return ConfigError(source, mpath + ".account", "required");
      if (m.chat_id().empty())
        return ConfigError(source, mpath + ".chat_id", "required");
      if (m.platform().find('/') != std::string::npos ||
          m.account().find('/') != std::string::npos) {
        return ConfigError(source, mpath,
                           "platform and account may not contain '/'");
      }
      if (m.pending_thread_root() < 0 ||
          (m.pending_thread_root() != 0 && !m.thread_id().empty())) {
        return ConfigError(source, mpath + ".pending_thread_root",
                           "a positive event id, without thread_id");
      }
      if (!keys.insert(ChannelKey(MemberChannel(m), true)).second) {
        return ConfigError(source, mpath,
                           "the same channel is listed twice in this link");
      }
    }
  }
  return std::shared_ptr<const LinkTable>(
      new LinkTable(std::vector<v1::Link>(links.begin(), links.end())));
}

LinkTable::LinkTable(std::vector<v1::Link> links) : links_(std::move(links)) {
  auto add = [](std::vector<size_t>& indexes, size_t i) {
    if (indexes.empty() || indexes.back() != i) indexes.push_back(i);
  };
  for (size_t i = 0; i < links_.size(); ++i) {
    auto& members = members_by_link_[links_[i].name()];
    for (const v1::LinkMember& m : links_[i].members()) {
      // The first of a link name and key wins, as in a scan of the links.
      members.emplace(ChannelKey(MemberChannel(m), /*with_thread=*/true), &m);
      add(links_by_chat_[ChannelKey(MemberChannel(m), /*with_thread=*/false)],
          i);
      add(links_by_account_[absl::StrCat(m.platform(), "/", m.account())], i);
      if (m.pending_thread_root() != 0) {
        std::string chat_key =
            ChannelKey(MemberChannel(m), /*with_thread=*/false);
        pending_roots_.insert(
            ParkedQueueKey(m.pending_thread_root(), chat_key));
        pending_chats_.insert(std::move(chat_key));
      }
    }
  }
}

std::vector<LinkTarget> LinkTable::TargetsFor(const v1::ChannelRef& origin,
                                              v1::Event::KindCase kind) const {
  std::vector<LinkTarget> targets;
  absl::flat_hash_set<std::string> seen;
  for (size_t i : CandidateLinks(origin)) {
    const v1::Link& link = links_[i];
    std::vector<const v1::LinkMember*> feeders = Feeders(link, origin);
    if (!feeders.empty()) AddReceivers(link, feeders, kind, seen, targets);
  }
  return targets;
}

std::vector<RootedTargets> LinkTable::TargetsOnceRooted(
    const v1::ChannelRef& origin, v1::Event::KindCase kind,
    const std::vector<LinkTarget>& targets) const {
  std::vector<RootedTargets> rooted;
  if (pending_chats_.empty() || origin.chat_id().empty()) return rooted;
  const std::string chat_key = ChannelKey(origin, /*with_thread=*/false);
  if (!pending_chats_.contains(chat_key)) return rooted;
  absl::flat_hash_set<std::string> reached;
  for (const LinkTarget& t : targets) reached.insert(t.target_key);
  // Per root: its entry in `rooted` and the receivers it has so far.
  absl::flat_hash_map<std::string, size_t> index;
  std::vector<absl::flat_hash_set<std::string>> seen;
  for (size_t i : CandidateLinks(origin)) {
    const v1::Link& link = links_[i];
    std::vector<const v1::LinkMember*> feeders = Feeders(link, origin);
    for (const v1::LinkMember& m : link.members()) {
      if (m.pending_thread_root() == 0 || m.direction() == v1::OUT ||
          !SameChat(m, origin)) {
        continue;
      }
      std::string root_key = ParkedQueueKey(m.pending_thread_root(), chat_key);
      auto [it, added] = index.emplace(root_key, rooted.size());
      if (added) {
        rooted.push_back(RootedTargets{std::move(root_key), {}});
        seen.push_back(reached);
      }
      std::vector<const v1::LinkMember*> with_root = feeders;
      with_root.push_back(&m);
      AddReceivers(link, with_root, kind, seen[it->second],
                   rooted[it->second].targets);
    }
  }
  rooted.erase(
      std::remove_if(rooted.begin(), rooted.end(),
                     [](const RootedTargets& r) { return r.targets.empty(); }),
      rooted.end());
  return rooted;
}

const v1::LinkMember* LinkTable::FindMember(
    absl::string_view link, absl::string_view target_key) const {
  auto l = members_by_link_.find(link);
  if (l == members_by_link_.end()) return nullptr;
  auto m = l->second.find(target_key);
  return m == l->second.end() ? nullptr : m->second;
}

std::vector<v1::ChannelRef> LinkTable::ChannelsOf(
    absl::string_view platform,
    const std::vector<std::string>& accounts) const {
  std::vector<v1::ChannelRef> out;
  absl::flat_hash_set<std::string> seen;
  for (const v1::Link& l : links_) {
    for (const v1::LinkMember& m : l.members()) {
      if (m.platform() != platform) continue;
      bool ours = false;
      for (const std::string& a : accounts) ours = ours || a == m.account();
      if (!ours) continue;
      v1::ChannelRef c = MemberChannel(m);
      if (seen.insert(ChannelKey(c, true)).second) out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<std::string> LinkTable::QueueKeys(bool receiving_only) const {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  for (const v1::Link& l : links_) {
    for (const v1::LinkMember& m : l.members()) {
      // A member that only feeds the link never receives.
      if (receiving_only && m.direction() == v1::IN) continue;
      std::string key = ChannelKey(MemberChannel(m), true);
      if (seen.insert(key).second) out.push_back(std::move(key));
    }
  }
  return out;
}

}  // namespace imbridge::bridge
