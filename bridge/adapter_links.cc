#include "bridge/adapter_links.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace imbridge::bridge {
namespace {

// Pending deliveries read per page while looking for the root's.
constexpr int kPendingPage = 256;

// The first part of the copy of message `group_id` in `chat_key`, or "".
absl::StatusOr<std::string> CopyIn(Store& store, int64_t group_id,
                                   const std::string& chat_key) {
  absl::StatusOr<std::vector<std::string>> ids =
      store.FindMessagesInChannel(group_id, chat_key);
  if (!ids.ok()) return ids.status();
  return ids->empty() ? std::string() : ids->front();
}

// Whether a delivery of event `group_id` to `target_key` is pending.
absl::StatusOr<bool> DeliveryPending(Store& store, int64_t group_id,
                                     const std::string& target_key) {
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<DeliveryRecord>> page =
        store.LoadPendingDeliveries(target_key, after, kPendingPage);
    if (!page.ok()) return page.status();
    for (const DeliveryRecord& d : *page) {
      if (d.event_id == group_id) return true;
      after = d.id;
    }
    if (page->size() < static_cast<size_t>(kPendingPage)) return false;
  }
}

// The thread `root` names for `member`: the copy's native id, or "" for the
// whole chat (an adapter without threads).
absl::StatusOr<std::string> ResolveRoot(const ThreadRootLookup& lookup,
                                        const v1::MemberThreadRoot& root,
                                        const v1::LinkMember& member) {
  if (!member.thread_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member ", root.member(),
                     " names a thread_id already; a thread root narrows a "
                     "whole chat to a thread"));
  }
  if (root.origin().platform().empty() || root.origin().account().empty() ||
      root.origin().chat_id().empty() || root.message_id().empty()) {
    return absl::InvalidArgumentError(
        "a member thread root needs origin (platform, account, chat_id) and "
        "message_id");
  }
  const std::string origin_key = ChannelKey(root.origin(), false);
  absl::StatusOr<std::optional<MessageLocation>> location =
      lookup.store->FindMessage(origin_key, root.message_id());
  if (!location.ok()) return location.status();
  if (!location->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("message '", root.message_id(), "' of ", origin_key,
                     " is not in the message map (not published yet, or "
                     "pruned)"));
  }
  const int64_t group = (*location)->group_id;
  v1::ChannelRef chat;
  chat.set_platform(member.platform());
  chat.set_account(member.account());
  chat.set_chat_id(member.chat_id());
  const std::string chat_key = ChannelKey(chat, false);
  if (lookup.member_threads != nullptr) {
    std::optional<bool> threads = lookup.member_threads(member);
    if (!threads.has_value()) {
      return absl::UnavailableError(
          absl::StrCat("no adapter of ", chat_key,
                       " is attached; cannot tell whether it has threads"));
    }
    if (!*threads) return std::string();
  }
  // Copy, pending, copy again: a delivery that completes between the reads
  // (its copy and its completion are one commit) is found by the second.
  absl::StatusOr<std::string> copy = CopyIn(*lookup.store, group, chat_key);
  if (!copy.ok() || !copy->empty()) return copy;
  absl::StatusOr<bool> pending =
      DeliveryPending(*lookup.store, group, ChannelKey(chat, true));
  if (!pending.ok()) return pending.status();
  if (*pending) {
    return absl::UnavailableError(
        absl::StrCat("the copy of '", root.message_id(), "' in ", chat_key,
                     " is not made yet (its delivery is pending)"));
  }
  copy = CopyIn(*lookup.store, group, chat_key);
  if (!copy.ok() || !copy->empty()) return copy;
  return absl::FailedPreconditionError(absl::StrCat(
      "message '", root.message_id(), "' has no copy in ", chat_key,
      " and none is pending (dead-lettered, skipped, or not routed there)"));
}

}  // namespace

absl::Status ResolveMemberThreadRoots(const ThreadRootLookup& lookup,
                                      const v1::LinkRequest& request,
                                      v1::Link* link) {
  if (request.member_thread_roots().empty()) return absl::OkStatus();
  if (request.action_case() != v1::LinkRequest::kCreate) {
    return absl::InvalidArgumentError(
        "member_thread_roots go with `create` only");
  }
  if (lookup.store == nullptr) {
    return absl::UnimplementedError(
        "this router does not resolve member thread roots");
  }
  for (const v1::MemberThreadRoot& root : request.member_thread_roots()) {
    if (root.member() >= static_cast<uint32_t>(link->members_size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("member thread root names member ", root.member(),
                       " of a link with ", link->members_size()));
    }
    v1::LinkMember* member = link->mutable_members(root.member());
    absl::StatusOr<std::string> thread = ResolveRoot(lookup, root, *member);
    if (!thread.ok()) return thread.status();
    member->set_thread_id(*thread);
  }
  return absl::OkStatus();
}

absl::Status AdapterMayTouchLink(const v1::Hello& hello, const v1::Link& link) {
  for (const v1::LinkMember& m : link.members()) {
    if (m.platform() != hello.platform()) continue;
    if (std::find(hello.accounts().begin(), hello.accounts().end(),
                  m.account()) != hello.accounts().end()) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "link '", link.name(), "' has no member on the adapter's own accounts (",
      hello.platform(), ": ", absl::StrJoin(hello.accounts(), ", "),
      "); an adapter may only link its own chats"));
}

v1::LinkReply HandleLinkRequest(LinkCatalog& catalog, const v1::Hello& hello,
                                const v1::LinkRequest& request,
                                const ThreadRootLookup& lookup) {
  v1::LinkReply reply;
  reply.set_id(request.id());
  absl::Status status;
  std::string name;
  const char* action = "create";
  switch (request.action_case()) {
    case v1::LinkRequest::kCreate: {
      name = request.create().name();
      status = AdapterMayTouchLink(hello, request.create());
      if (!status.ok()) break;
      v1::Link link = request.create();
      status = ResolveMemberThreadRoots(lookup, request, &link);
      if (!status.ok()) break;
      absl::StatusOr<v1::LinkInfo> info =
          catalog.CreateOwnedLink(link, hello.platform());
      status = info.status();
      if (info.ok()) *reply.mutable_link() = info->link();
      break;
    }
    case v1::LinkRequest::kDeleteName:
      action = "delete";
      name = request.delete_name();
      status = catalog.DeleteOwnedLink(
          name, hello.platform(), [&hello](const v1::Link& link) {
            return AdapterMayTouchLink(hello, link);
          });
      break;
    default:
      status = absl::InvalidArgumentError(
          "link request: set `create` or `delete_name`");
  }
  if (!status.ok()) {
    reply.set_code(static_cast<int32_t>(status.code()));
    reply.set_message(std::string(status.message()));
    // A root whose copy is not made yet is asked for again, often: debug.
    Log(absl::IsUnavailable(status) ? LogLevel::kDebug : LogLevel::kWarn,
        "adapter link request refused",
        {{"adapter", hello.adapter_name()},
         {"action", action},
         {"link", name},
         {"error", status.message()}});
  }
  return reply;
}

}  // namespace imbridge::bridge
