#ifndef IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_
#define IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "bridge/link_catalog.h"
#include "bridge/store.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// Runtime links requested by adapters over their Attach stream
// (router.proto LinkRequest), without an admin token.

// OK if an adapter that said `hello` may create or delete `link`: at least
// one member is a channel of the adapter (its platform, one of its
// accounts). kPermissionDenied naming the adapter otherwise.
absl::Status AdapterMayTouchLink(const v1::Hello& hello, const v1::Link& link);

// What resolving a create's member_thread_roots (router.proto
// MemberThreadRoot) reads.
struct ThreadRootLookup {
  // The message map and the outbox (committed data). Null: requests with
  // member_thread_roots are refused (kUnimplemented).
  Store* store = nullptr;
  // Whether the adapter attached now for `member`'s platform and account
  // posts in threads ("threads" in its Hello); std::nullopt when none is
  // attached (taken as threading). Null: every member's adapter is taken
  // as threading.
  std::function<std::optional<bool>(const v1::LinkMember& member)>
      member_threads;
};

// Narrows each member that `request.member_thread_roots()` names in `link`
// (a copy of request.create()) to the thread rooted at the bridge's copy of
// the root message in that member's chat: its thread_id is the copy's
// native id, or, while the copy's delivery is pending, its
// pending_thread_root is the message's event id (the member's deliveries
// are parked until the copy exists: bridge/thread_roots.h). The outcomes
// are documented on MemberThreadRoot (OK with the member left whole for an
// adapter without threads; kNotFound, kFailedPrecondition,
// kInvalidArgument). A chat whose adapter is not attached is taken as
// threading. Reads only; on an error `link` may be partly changed.
absl::Status ResolveMemberThreadRoots(const ThreadRootLookup& lookup,
                                      const v1::LinkRequest& request,
                                      v1::Link* link);

// Carries out `request` for the adapter that said `hello` against `catalog`
// and returns the reply to send. Creates are owned by hello.platform(),
// their member_thread_roots resolved with `lookup` first (a create of a
// runtime link that exists with the same definition, the rooted members'
// threads aside, is answered with the stored link); deletes touch only
// links owned by it (LinkCatalog::DeleteOwnedLink). Blocks until the change
// is committed: call it off gRPC's reaction threads.
v1::LinkReply HandleLinkRequest(LinkCatalog& catalog, const v1::Hello& hello,
                                const v1::LinkRequest& request,
                                const ThreadRootLookup& lookup = {});

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_
