#include "adapters/common/connector.h"

#include "absl/strings/str_cat.h"

namespace imbridge::adapters {
namespace {

// The connector as interface I if it implements I and offers `capability`;
// null otherwise.
template <typename I>
I* Offered(Connector* connector, Capability capability) {
  I* as = dynamic_cast<I*>(connector);
  return as != nullptr && connector->Offers(capability) ? as : nullptr;
}

template <typename I>
bool Has(const Connector& connector, Capability capability) {
  return dynamic_cast<const I*>(&connector) != nullptr &&
         connector.Offers(capability);
}

absl::Status NotRendered(Capability capability) {
  return absl::FailedPreconditionError(absl::StrCat(
      "this adapter does not render ", CapabilityName(capability),
      " (it did not announce \"", CapabilityName(capability), "\")"));
}

}  // namespace

absl::string_view CapabilityName(Capability capability) {
  switch (capability) {
    case Capability::kEdits:
      return "edits";
    case Capability::kDeletes:
      return "deletes";
    case Capability::kThreads:
      return "threads";
    case Capability::kFiles:
      return "files";
    case Capability::kPresence:
      return "presence";
    case Capability::kMembership:
      return "membership";
  }
  return "";
}

v1::ChannelRef CommandThread(const v1::ChatCommand& command) {
  const v1::Event& e = command.event();
  v1::ChannelRef thread = e.channel();
  thread.set_thread_id(e.posted().thread_root_id().empty()
                           ? e.posted().message_id()
                           : e.posted().thread_root_id());
  return thread;
}

std::vector<std::string> ConnectorCapabilities(const Connector& connector) {
  std::vector<std::string> names;
  auto add = [&](bool implemented, Capability capability) {
    if (implemented) names.emplace_back(CapabilityName(capability));
  };
  add(Has<MessageEditor>(connector, Capability::kEdits), Capability::kEdits);
  add(Has<MessageDeleter>(connector, Capability::kDeletes),
      Capability::kDeletes);
  add(Has<ThreadedMessages>(connector, Capability::kThreads),
      Capability::kThreads);
  add(Has<FileMessages>(connector, Capability::kFiles), Capability::kFiles);
  add(Has<PresenceRenderer>(connector, Capability::kPresence),
      Capability::kPresence);
  add(Has<MembershipRenderer>(connector, Capability::kMembership),
      Capability::kMembership);
  return names;
}

ConnectorDeliveryHandler::ConnectorDeliveryHandler(Connector* connector)
    : connector_(connector),
      accounts_([connector] {
        std::vector<std::string> accounts = connector->Accounts();
        return absl::flat_hash_set<std::string>(accounts.begin(),
                                                accounts.end());
      }()),
      editor_(Offered<MessageEditor>(connector, Capability::kEdits)),
      deleter_(Offered<MessageDeleter>(connector, Capability::kDeletes)),
      presence_(Offered<PresenceRenderer>(connector, Capability::kPresence)),
      membership_(
          Offered<MembershipRenderer>(connector, Capability::kMembership)) {}

absl::StatusOr<std::vector<std::string>> ConnectorDeliveryHandler::Deliver(
    const v1::Delivery& delivery) {
  using Ids = std::vector<std::string>;
  if (!accounts_.contains(delivery.target().account())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this adapter serves no account '", delivery.target().account(), "'"));
  }
  // Edits, deletes and presence create nothing: their result has no ids.
  auto no_ids = [](const absl::Status& status) -> absl::StatusOr<Ids> {
    if (!status.ok()) return status;
    return Ids();
  };
  const v1::Event& event = delivery.event();
  switch (event.kind_case()) {
    case v1::Event::kPosted:
      return connector_->SendMessage(delivery);
    case v1::Event::kEdited:
      if (editor_ == nullptr) return NotRendered(Capability::kEdits);
      return no_ids(editor_->EditMessage(delivery));
    case v1::Event::kDeleted:
      if (deleter_ == nullptr) return NotRendered(Capability::kDeletes);
      return no_ids(deleter_->DeleteMessage(delivery));
    case v1::Event::kPresence:
      if (presence_ == nullptr) return NotRendered(Capability::kPresence);
      return no_ids(presence_->SendPresence(delivery));
    case v1::Event::kMembership:
      if (membership_ == nullptr) return NotRendered(Capability::kMembership);
      return membership_->SendMembership(delivery);
    case v1::Event::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("the delivery's event has no kind");
}

}  // namespace imbridge::adapters
