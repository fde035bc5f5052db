#ifndef IMBRIDGE_BRIDGE_LINK_TABLE_H_
#define IMBRIDGE_BRIDGE_LINK_TABLE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/events.pb.h"

namespace imbridge::bridge {

// A channel that should receive an event, and why.
struct LinkTarget {
  // The link that carries the event there.
  std::string link;
  // The receiving member (its channel, direction and options), in the
  // LinkTable that returned it, which must outlive this.
  const v1::LinkMember* member = nullptr;
  // The member's channel, as a ChannelRef.
  v1::ChannelRef channel;
  // ChannelKey(channel, /*with_thread=*/true): the outbox queue it goes to;
  // for a member whose thread is pending (LinkMember.pending_thread_root),
  // its parked queue (bridge/thread_roots.h), `channel` being the chat.
  std::string target_key;
};

// Receivers an event has only if a thread root turned out to be the
// event's thread (LinkTable::TargetsOnceRooted).
struct RootedTargets {
  // The root and its chat, as the key of their parked queue
  // (bridge/thread_roots.h ParkedQueueKey).
  std::string root_key;
  std::vector<LinkTarget> targets;
};

// The links, resolved for lookups: which channels receive an event from a
// given channel. Immutable once built; share it through
// std::shared_ptr<const LinkTable> and swap the pointer to change links.
// Thread-safe (all methods are const).
class LinkTable {
 public:
  // Validates `links` and builds the table. Errors name `source` and the
  // field path ("links[1].members[0].chat_id: required").
  static absl::StatusOr<std::shared_ptr<const LinkTable>> Build(
      const google::protobuf::RepeatedPtrField<v1::Link>& links,
      absl::string_view source);

  // Receivers of an event of kind `kind` that happened in `origin`: every
  // other member of every link in which `origin` is a member that feeds the
  // link (direction both or in), whose own direction receives (both or out)
  // and whose options allow the kind. Never a channel of the origin's own
  // chat. A channel reached through several links appears once (the first
  // link wins). For presence events `origin.chat_id` may be empty: then every
  // linked channel of the origin's account counts as an origin. A member
  // whose thread is pending feeds nothing (its thread is not known yet;
  // TargetsOnceRooted says what it would feed).
  std::vector<LinkTarget> TargetsFor(const v1::ChannelRef& origin,
                                     v1::Event::KindCase kind) const;

  // The receivers an event of kind `kind` in `origin` would have besides
  // `targets` (TargetsFor's) if a member of origin's chat that waits on a
  // thread root (LinkMember.pending_thread_root) were origin's thread: one
  // entry per root with receivers, each receiver once per root and none of
  // `targets`. The members are as TargetsFor would see them with the
  // member narrowed to origin's thread (or, for an origin without thread,
  // left the whole chat). Empty for presence without chat and for chats
  // without such members. The committer keeps these only if the root's
  // copy turned out so (Committer, "Thread roots").
  std::vector<RootedTargets> TargetsOnceRooted(
      const v1::ChannelRef& origin, v1::Event::KindCase kind,
      const std::vector<LinkTarget>& targets) const;

  // Whether a member waits on the thread root that parked queue key
  // `root_key` names (bridge/thread_roots.h).
  bool WaitsOnThreadRoot(absl::string_view root_key) const {
    return pending_roots_.contains(root_key);
  }

  // The links `origin` is a member of (any direction), in table order.
  std::vector<const v1::Link*> LinksOf(const v1::ChannelRef& origin) const;

  // The member `target_key` of link `link`, or nullptr if the link or the
  // member is gone.
  const v1::LinkMember* FindMember(absl::string_view link,
                                   absl::string_view target_key) const;

  // Channels of `platform` whose account is one of `accounts`, deduplicated.
  std::vector<v1::ChannelRef> ChannelsOf(
      absl::string_view platform,
      const std::vector<std::string>& accounts) const;

  // The queue of every linked channel (ChannelKey with thread), each once,
  // in table order; with `receiving_only`, of the members that receive
  // (direction both or out) only.
  std::vector<std::string> QueueKeys(bool receiving_only) const;

  // The links as configured. The reference lives as long as this table:
  // hold the std::shared_ptr while using it (see LinkRegistry::Get).
  const std::vector<v1::Link>& links() const { return links_; }

 private:
  explicit LinkTable(std::vector<v1::Link> links);
  // Not copyable: the indexes point into links_.
  LinkTable(const LinkTable&) = delete;
  LinkTable& operator=(const LinkTable&) = delete;

  // Indexes of the links that may contain `origin`, ascending: those with a
  // member in its chat, or for an origin without chat_id (presence) those
  // with a member of its account. Empty if none.
  const std::vector<size_t>& CandidateLinks(const v1::ChannelRef& origin) const;

  std::vector<v1::Link> links_;
  // The index for FindMember: link name -> ChannelKey with thread -> the
  // member in links_ (which never changes after the constructor).
  absl::flat_hash_map<std::string,
                      absl::flat_hash_map<std::string, const v1::LinkMember*>>
      members_by_link_;
  // The index for CandidateLinks, keyed by "platform/account/chat_id" and by
  // "platform/account".
  absl::flat_hash_map<std::string, std::vector<size_t>> links_by_chat_;
  absl::flat_hash_map<std::string, std::vector<size_t>> links_by_account_;
  // Members waiting on a thread root: the parked queue keys of their roots,
  // and their chats (ChannelKey without thread).
  absl::flat_hash_set<std::string> pending_roots_;
  absl::flat_hash_set<std::string> pending_chats_;
};

// Renders a sender name with a member's format ({name}, {platform},
// {account}, {user_id}); the default format is "{name} ({platform})".
std::string RenderSenderName(const v1::MemberOptions& options,
                             const v1::UserRef& sender,
                             const v1::ChannelRef& origin);

// The channel of a link member.
v1::ChannelRef MemberChannel(const v1::LinkMember& member);

// Whether `options` lets events of `kind` through (unset flags are true).
bool MemberAccepts(const v1::MemberOptions& options, v1::Event::KindCase kind);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_LINK_TABLE_H_
