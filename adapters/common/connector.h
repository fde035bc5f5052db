#ifndef IMBRIDGE_ADAPTERS_COMMON_CONNECTOR_H_
#define IMBRIDGE_ADAPTERS_COMMON_CONNECTOR_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/inbound_pipeline.h"
#include "imbridge/v1/router.pb.h"

// The connector interfaces: what a messenger implements to be bridged, as in
// mautrix bridgev2. One small required interface (Connector: the accounts it
// serves, sending a message and returning its native ids, plus the inbound
// conversion of InboundConnector<Raw>, inbound_pipeline.h) and optional
// capability interfaces, one per thing a messenger may or may not do (edit,
// delete, threads, files, presence, membership). The capabilities an adapter
// announces in Hello are derived from the interfaces its connector implements
// (ConnectorCapabilities), and ConnectorDeliveryHandler routes each of the
// router's deliveries to the interface that handles it.
//
// Threading, for every method that renders a delivery: it is called on the
// RouterClient's worker threads, for one target channel (ChannelRef with its
// thread) one call at a time in the router's order, for different targets
// concurrently. It may block (it makes the messenger's HTTP calls and honours
// its rate limits). Errors: RetryableError() (delivery_handler.h) for a
// failure worth retrying (rate limits, 5xx, timeouts); anything else is
// permanent and the router dead-letters the delivery. Exceptions are caught by
// the runtime's barrier (DeliverGuarded) and become permanent failures.
//
// Native ids are opaque to the bridge: whatever strings the connector returns
// come back to it in Delivery.target_message_ids, reply_to_target_id and
// thread_root_target_id. They must be valid UTF-8.

namespace imbridge::adapters {

// A capability an adapter announces in Hello (router.proto).
enum class Capability {
  kEdits,       // "edits": MessageEditor
  kDeletes,     // "deletes": MessageDeleter
  kThreads,     // "threads": ThreadedMessages
  kFiles,       // "files": FileMessages
  kPresence,    // "presence": PresenceRenderer
  kMembership,  // "membership": MembershipRenderer
};

// Its name in Hello: "edits", "deletes", "threads", "files", "presence",
// "membership".
absl::string_view CapabilityName(Capability capability);

// The required interface of a messenger's connector. A messenger's top-level
// class derives from it, from InboundConnector<Raw> for its inbound side
// (what the InboundPipeline calls to convert its transports' raw input), and
// from each optional interface below that it implements.
//
// Ownership: the binary's main (RunAdapter) owns the connector; the
// AdapterRuntime only points to it and stops calling it before it goes.
class Connector {
 public:
  virtual ~Connector() = default;

  // The accounts (bot identities) it serves, as the router's links name
  // them. Fixed after construction; announced in Hello, and deliveries to
  // other accounts are refused before they reach the connector.
  virtual std::vector<std::string> Accounts() const = 0;

  // Renders a new message (delivery.event().posted()) in delivery.target(),
  // with sender_name and the text; a reply (reply_to_target_id) as the
  // messenger's reply where it has one, else as it can. Returns the native
  // ids of everything it created, in order (one message may become several:
  // a long text split, files sent one by one). Idempotence: a delivery may
  // come again with the same idempotency_key after a retry or a restart;
  // the connector records its steps in the DeliveryJournal so that it does
  // not create the message twice.
  virtual absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) = 0;

  // Called once the adapter's HTTP server listens and its router client
  // runs (register webhooks, start pollers and sockets). An error stops
  // the process. Default: nothing.
  virtual absl::Status Start() { return absl::OkStatus(); }

  // Called when the process stops, after the HTTP server stopped and before
  // the router client stops: stop pollers and sockets, finish inbound work
  // in progress. Default: nothing.
  virtual void Stop() {}

  // Whether it offers `capability` in this configuration, asked only for a
  // capability whose interface it implements (a connector whose presence
  // relay is switched off in its config answers false for kPresence).
  // Default: every implemented one.
  virtual bool Offers(Capability capability) const {
    (void)capability;
    return true;
  }
};

// The required interface in one piece, for a messenger whose transports
// hand the inbound pipeline `Raw` inputs.
template <typename Raw>
class MessengerConnector : public Connector, public InboundConnector<Raw> {};

// "edits": changes the copies of an edited message.
class MessageEditor {
 public:
  virtual ~MessageEditor() = default;
  // Replaces the text of delivery.target_message_ids() (the native ids the
  // connector returned for the copy) with delivery.event().edited().
  // A copy already gone counts as done where the messenger tells so.
  virtual absl::Status EditMessage(const v1::Delivery& delivery) = 0;
};

// "deletes": removes the copies of a deleted message.
class MessageDeleter {
 public:
  virtual ~MessageDeleter() = default;
  // Removes every one of delivery.target_message_ids(); ids already gone
  // count as removed.
  virtual absl::Status DeleteMessage(const v1::Delivery& delivery) = 0;
};

// "threads": SendMessage() posts a delivery that carries
// thread_root_target_id into that thread (a Slack thread, a Telegram forum
// topic reply). Without it the router turns a message in a thread into a
// plain reply to the thread's root and sends no thread root.
class ThreadedMessages {
 public:
  virtual ~ThreadedMessages() = default;
};

// "files": SendMessage() uploads the posted message's attachments that
// carry a blob_id (read from the router's blob store) and returns their
// native ids with the text's. Without it the router sends each file as a
// line of the text ("📎 report.pdf (2.1 MB)") and no attachments.
class FileMessages {
 public:
  virtual ~FileMessages() = default;
};

// "presence": shows a presence change of a member of a linked channel.
class PresenceRenderer {
 public:
  virtual ~PresenceRenderer() = default;
  // Renders delivery.event().presence() (the member is
  // event().presence().user()).
  virtual absl::Status SendPresence(const v1::Delivery& delivery) = 0;
};

// "membership": shows that a member joined or left a linked channel.
class MembershipRenderer {
 public:
  virtual ~MembershipRenderer() = default;
  // Renders delivery.event().membership(); returns the native ids of what it
  // created (a notice message), empty if nothing.
  virtual absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery) = 0;
};

// Chat commands addressed to this adapter: "<prefix> <word> ..." in any
// linked chat, where <word> is one of CommandWords() (router.proto
// Hello.chat_commands; the AdapterRuntime announces them when the connector
// implements this interface). The router forwards the command with its
// origin channel (and thread), sender and native message id, and posts the
// answer's text where the command was sent, or, with in_command_thread, in
// the thread rooted at the command (CommandThread() below): create the
// runtime link for that thread (AdapterRuntime::CreateLink) before
// answering, and the thread is linked from the answer on.
class ChatCommandHandler {
 public:
  virtual ~ChatCommandHandler() = default;
  // Lower case letters, digits, '-' and '_'; not "who", "status", "help".
  virtual std::vector<std::string> CommandWords() const = 0;
  // Answers one command (command.args() is the text after the word). Runs on
  // the router client's command thread, one command at a time; may block. A
  // command may come more than once (at least once delivery): act on
  // command.event().key() once. Failures are answered as text.
  virtual v1::ChatCommandAnswer HandleChatCommand(
      const v1::ChatCommand& command) = 0;
};

// The channel of the thread rooted at a command's message (the command's
// own thread if it was sent in one): where an answer with in_command_thread
// goes, and the link member for that thread.
v1::ChannelRef CommandThread(const v1::ChatCommand& command);

// The capabilities `connector` announces: those whose interface it
// implements and Offers(), in the order of Capability, by name.
std::vector<std::string> ConnectorCapabilities(const Connector& connector);

// The generic dispatcher: the DeliveryHandler of every adapter. It routes
// each delivery by its event kind to the connector's interface for it
// (posted: SendMessage; edited: MessageEditor; deleted: MessageDeleter;
// presence: PresenceRenderer; membership: MembershipRenderer) and returns
// its native ids (none for edits, deletes and presence). A delivery to an
// account the connector does not serve, of a kind it does not implement or
// without a kind is a permanent failure (kFailedPrecondition,
// kInvalidArgument) with the reason, and the connector is not called.
//
// The exception barrier is outside: the AdapterRuntime calls it through
// DeliverGuarded. Thread-safe as far as the connector is (see above);
// `connector` must outlive it.
class ConnectorDeliveryHandler : public DeliveryHandler {
 public:
  explicit ConnectorDeliveryHandler(Connector* connector);

  absl::StatusOr<std::vector<std::string>> Deliver(
      const v1::Delivery& delivery) override;

 private:
  Connector* const connector_;
  const absl::flat_hash_set<std::string> accounts_;
  // The optional interfaces it implements and offers; null where not.
  MessageEditor* const editor_;
  MessageDeleter* const deleter_;
  PresenceRenderer* const presence_;
  MembershipRenderer* const membership_;
};

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_CONNECTOR_H_
