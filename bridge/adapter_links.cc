#include "bridge/adapter_links.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace imbridge::bridge {

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
                                const v1::LinkRequest& request) {
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
      absl::StatusOr<v1::LinkInfo> info =
          catalog.CreateOwnedLink(request.create(), hello.platform());
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
