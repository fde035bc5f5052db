#ifndef IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_
#define IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_

#include "absl/status/status.h"
#include "bridge/link_catalog.h"
#include "imbridge/v1/config.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// Runtime links requested by adapters over their Attach stream
// (router.proto LinkRequest), without an admin token.

// OK if an adapter that said `hello` may create or delete `link`: at least
// one member is a channel of the adapter (its platform, one of its
// accounts). kPermissionDenied naming the adapter otherwise.
absl::Status AdapterMayTouchLink(const v1::Hello& hello, const v1::Link& link);

// Carries out `request` for the adapter that said `hello` against `catalog`
// and returns the reply to send. Creates are owned by hello.platform();
// deletes touch only links owned by it (LinkCatalog::DeleteOwnedLink).
// Blocks until the change is committed: call it off gRPC's reaction threads.
v1::LinkReply HandleLinkRequest(LinkCatalog& catalog, const v1::Hello& hello,
                                const v1::LinkRequest& request);

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_ADAPTER_LINKS_H_
