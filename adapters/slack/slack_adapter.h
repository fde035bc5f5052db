#ifndef IMBRIDGE_ADAPTERS_SLACK_SLACK_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_SLACK_SLACK_ADAPTER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/slack/event_processor.h"
#include "adapters/slack/outbound.h"
#include "adapters/slack/posts_in_flight.h"
#include "adapters/slack/presence_poller.h"
#include "adapters/slack/service_presence.h"
#include "adapters/slack/slack_api.h"
#include "adapters/slack/socket_mode.h"
#include "adapters/slack/user_channels.h"
#include "adapters/slack/user_directory.h"
#include "common/http/http_client.h"
#include "imbridge/v1/slack_config.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {

// Defaults of the slack adapter (see slack_config.proto).
inline constexpr uint16_t kDefaultPort = 7712;
inline constexpr int kDefaultRequestTimeoutMs = 2500;

// One Events API callback as it came from Slack (HTTP or Socket Mode), for
// the account `account` names: the inbound pipeline's raw input.
struct SlackEventCallback {
  std::string account;
  nlohmann::json callback;
};

// The Slack adapter: every configured account (one app installation each)
// with its Web API client, its inbound transport (Events API route
// `/slack/<account>/events` or Socket Mode), its presence poller and its
// outbound renderer, wired to an AdapterRuntime; the connector
// (adapters/common/connector.h) for messages, edits, deletes, threads and
// files, and for presence when an account's service user follows other
// people's presence (ServicePresence; Slack cannot show other people's
// presence otherwise, and has no membership notices).
//
// Inbound HTTP requests are checked in this order: the account exists (else
// 404), X-Slack-Signature and X-Slack-Request-Timestamp are present and the
// v0 signature over the raw body is valid within 5 minutes (else 401), the
// body is a JSON object (else 400); bodies over http.max_body_bytes were
// already answered 413 by the server. `url_verification` is answered with
// the challenge; `event_callback` goes through the inbound pipeline (one lane
// per channel, so a message waiting for its file is never overtaken by the
// next event of its channel) and is answered 200 after the router
// acknowledged it (or the server answers 503 after the request timeout). In
// Socket Mode the envelope is acknowledged only then. The adapter is the
// pipeline's connector: each callback is converted by its account's
// EventProcessor.
//
// Threading: construct from the main thread; Start() and Stop() are called
// by the runtime; the rest runs on the runtime's and the adapter's threads.
// The rendering methods are thread-safe.
class SlackAdapter : public MessengerConnector<SlackEventCallback>,
                     public MessageEditor,
                     public MessageDeleter,
                     public ThreadedMessages,
                     public FileMessages,
                     public PresenceRenderer {
 public:
  // Registers the routes and readiness checks on `runtime`. `config` must
  // be valid (ValidateSlackConfig). Every account's deliveries are recorded
  // in `journal` (which must outlive the adapter).
  SlackAdapter(const v1::SlackAdapterConfig& config, AdapterRuntime* runtime,
               DeliveryJournal* journal);
  ~SlackAdapter() override;

  // Connector.
  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  // Starts identifying each account (auth.test, retried until it works),
  // then its Socket Mode client and presence poller. Returns at once.
  absl::Status Start() override;
  // Stops pollers and sockets and waits for inbound work. Idempotent.
  void Stop() override;

  // The optional interfaces.
  absl::Status EditMessage(const v1::Delivery& delivery) override;
  absl::Status DeleteMessage(const v1::Delivery& delivery) override;
  // Presence of the links an account's service_presence follows; others
  // are taken without effect.
  absl::Status SendPresence(const v1::Delivery& delivery) override;
  // Presence only when some account has a service_presence.
  bool Offers(Capability capability) const override;

 private:
  struct Account;
  // The transport's answer: 200 when the router acknowledged the event (or
  // it is deliberately ignored), 400 when it cannot be converted, 500 when
  // the router refused it, 503 when it cannot be handled now.
  using Done = std::function<void(int http_status)>;

  // The EventProcessor of the callback's account; kInvalidArgument if none.
  absl::StatusOr<EventProcessor*> EventsOf(const SlackEventCallback& raw) const;
  // InboundConnector: the callback's account's EventProcessor.
  absl::StatusOr<InboundRoute> Route(const SlackEventCallback& raw) override;
  absl::StatusOr<adapters::InboundConversion> Convert(
      const SlackEventCallback& raw) override;

  // Hands one `event_callback` envelope to the pipeline. `done` runs
  // exactly once, on any thread (possibly inside this call).
  void HandleCallback(Account* account, nlohmann::json callback, Done done);
  void HandleEvents(Account* account, HttpRequest request,
                    std::shared_ptr<Responder> responder);
  void Identify(Account* account);
  void OnPosted(Account* account, const v1::Event& event);
  // The account a delivery goes to; kFailedPrecondition if none.
  absl::StatusOr<Account*> AccountFor(const v1::Delivery& delivery) const;

  AdapterRuntime* runtime_;
  RuntimeInboundRouter inbound_router_;
  HttpClient http_;
  // Inbound events of every account: one lane per channel.
  std::unique_ptr<InboundPipeline> pipeline_;
  AccountSet<Account> accounts_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> identify_threads_;
};

// The binary: imbridge-adapter-slack, platform "slack", port 7712, 2.5 s
// request timeout, built as a SlackAdapter (for RunAdapter).
AdapterProgram<v1::SlackAdapterConfig> SlackProgram();

// Checks the config: router and http sections, at least one account, each
// with a valid unique name, a bot token, a signing secret (http mode) or an
// app token (socket mode), an http(s) api_base_url, sane numbers. Returns
// ConfigError(source, "accounts[i].field", reason) for the first problem.
absl::Status ValidateSlackConfig(absl::string_view source,
                                 const v1::SlackAdapterConfig& config);

}  // namespace imbridge::adapters::slack

#endif  // IMBRIDGE_ADAPTERS_SLACK_SLACK_ADAPTER_H_
