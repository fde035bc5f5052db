#include "bridge/adapter_links.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bridge/thread_roots.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::bridge {
namespace {

// Narrows `member` to the thread `root` names: its thread_id is the copy's
// native id; without a copy yet, pending_thread_root is the root's event;
// for an adapter without threads, or a root whose copy cannot be made
// (kFailedPrecondition), it stays the whole chat.
absl::Status ResolveRoot(const ThreadRootLookup& lookup,
                         const v1::MemberThreadRoot& root,
                         v1::LinkMember* member) {
  if (!member->thread_id().empty() || member->pending_thread_root() != 0) {
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
  chat.set_platform(member->platform());
  chat.set_account(member->account());
  chat.set_chat_id(member->chat_id());
  if (lookup.member_threads != nullptr) {
    // No adapter of the chat attached: taken as threading; an adapter
    // without threads then shows the thread's messages in the chat.
    std::optional<bool> threads = lookup.member_threads(*member);
    if (threads.has_value() && !*threads) return absl::OkStatus();
  }
  absl::StatusOr<ThreadRootState> state =
      LookUpThreadRoot(*lookup.store, group, chat);
  if (!state.ok()) return state.status();
  switch (state->kind) {
    case ThreadRootState::kThread:
      member->set_thread_id(state->thread_id);
      return absl::OkStatus();
    case ThreadRootState::kPending:
      member->set_pending_thread_root(group);
      return absl::OkStatus();
    case ThreadRootState::kWholeChat:
      break;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("message '", root.message_id(), "' has no copy in ",
                   ChannelKey(chat, false),
                   " and none is pending (dead-lettered, skipped, or not "
                   "routed there)"));
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
    IMB_RETURN_IF_ERROR(
        ResolveRoot(lookup, root, link->mutable_members(root.member())));
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
      // A repeated create is answered with the link as stored, whatever
      // became of its thread roots since.
      std::vector<uint32_t> rooted;
      for (const v1::MemberThreadRoot& root : request.member_thread_roots()) {
        rooted.push_back(root.member());
      }
      if (std::optional<v1::LinkInfo> same =
              catalog.FindSameRuntimeLink(request.create(), rooted)) {
        *reply.mutable_link() = same->link();
        break;
      }
      v1::Link link = request.create();
      status = ResolveMemberThreadRoots(lookup, request, &link);
      if (!status.ok()) break;
      absl::StatusOr<v1::LinkInfo> info =
          catalog.CreateOwnedLink(link, hello.platform(), rooted);
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
    LogWarn("adapter link request refused", {{"adapter", hello.adapter_name()},
                                             {"action", action},
                                             {"link", name},
                                             {"error", status.message()}});
  }
  return reply;
}

}  // namespace imbridge::bridge
