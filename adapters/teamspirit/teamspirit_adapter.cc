#include "adapters/teamspirit/teamspirit_adapter.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/bind_front.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/teamspirit/bot_presence.h"
#include "adapters/teamspirit/inbound.h"
#include "adapters/teamspirit/outbound.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::adapters::teamspirit {
namespace {

// Learns a bot's own user id (GET /me), retrying with backoff until it
// succeeds or Stop() is called; its webhook receiver answers 503 until then.
class BotIdentity {
 public:
  BotIdentity(std::string account, TeamSpiritApi* api,
              WebhookReceiver* receiver)
      : account_(std::move(account)), api_(api), receiver_(receiver) {}
  ~BotIdentity() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  // OK once the bot's id is known; otherwise the last error.
  absl::Status Ready() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  void Loop() {
    absl::Duration backoff = absl::Seconds(1);
    while (true) {
      absl::StatusOr<TsUser> me = api_->GetMe();
      if (me.ok()) {
        receiver_->SetBotUserId(me->id);
        LogInfo("TeamSpirit bot identified", {{"account", account_},
                                              {"bot_user_id", me->id},
                                              {"bot_name", me->name}});
        absl::MutexLock lock(&mu_);
        status_ = absl::OkStatus();
        return;
      }
      LogWarn("cannot identify the TeamSpirit bot (GET /me)",
              {{"account", account_}, {"error", me.status().message()}});
      absl::MutexLock lock(&mu_);
      status_ = absl::UnavailableError(
          absl::StrCat("GET /me failed: ", me.status().message()));
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
      if (stopping_) return;
      backoff = std::min(backoff * 2, absl::Seconds(30));
    }
  }

  const std::string account_;
  TeamSpiritApi* const api_;
  WebhookReceiver* const receiver_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("GET /me not answered yet");
  std::thread thread_;
};

InboundPipeline::Options PipelineOptions(
    const std::vector<TeamSpiritSettings>& accounts) {
  InboundPipeline::Options options;
  options.max_file_bytes = 0;
  for (const TeamSpiritSettings& s : accounts) {
    options.max_file_bytes = std::max(options.max_file_bytes, s.max_file_bytes);
  }
  return options;
}

}  // namespace

// One account and everything that serves it. Members are destroyed in
// reverse order: the identity (which uses the receiver and the API) first.
struct TeamSpiritAdapter::Account {
  explicit Account(TeamSpiritSettings s)
      : settings(std::move(s)),
        limiter(settings.requests_per_second, settings.requests_per_second) {}

  const TeamSpiritSettings settings;
  RateLimiter limiter;
  // Bot mode.
  std::unique_ptr<TeamSpiritApi> api;
  std::optional<BotPresence> presence;
  std::unique_ptr<WebhookReceiver> receiver;
  // Send-only mode.
  std::unique_ptr<TsIncomingWebhook> incoming;
  // TeamSpiritDeliverer or SendOnlyDeliverer.
  std::unique_ptr<DeliveryHandler> renderer;
  std::unique_ptr<BotIdentity> identity;
};

TeamSpiritAdapter::TeamSpiritAdapter(std::vector<TeamSpiritSettings> accounts,
                                     AdapterRuntime* runtime,
                                     DeliveryJournal* journal)
    : http_(MessengerClientOptions("teamspirit")),
      inbound_router_(runtime),
      pipeline_(std::make_unique<InboundPipeline>(PipelineOptions(accounts),
                                                  &inbound_router_)),
      accounts_("TeamSpirit") {
  for (TeamSpiritSettings& settings : accounts) {
    std::string name = settings.account;
    Account* a = accounts_.Add(std::move(name),
                               std::make_unique<Account>(std::move(settings)));
    const TeamSpiritSettings& s = a->settings;
    if (s.send_only) {
      a->incoming = std::make_unique<TsIncomingWebhook>(
          s.incoming_webhook_url, &http_, &a->limiter, s.api_timeout);
      a->renderer = std::make_unique<SendOnlyDeliverer>(a->incoming.get(),
                                                        journal, nullptr);
      LogInfo(
          "send-only account: posting to its incoming webhook; nothing is "
          "read from TeamSpirit",
          {{"account", s.account}});
      continue;
    }
    TeamSpiritApi::Options api;
    api.base_url = s.api_base_url;
    api.api_key = s.api_key;
    api.paths = s.api_paths;
    api.timeout = s.api_timeout;
    a->api = std::make_unique<TeamSpiritApi>(api, &http_, &a->limiter);
    if (s.bot_presence_enabled) {
      a->presence.emplace(s.bot_presence, a->api.get(),
                          [runtime] { return runtime->router().attached(); });
    }
    TeamSpiritDeliverer::Options out;
    out.external_user_prefix = s.external_user_prefix;
    out.post_as_bot = s.post_as_bot;
    out.membership_notices = s.membership_notices;
    out.max_file_bytes = s.max_file_bytes;
    a->renderer = std::make_unique<TeamSpiritDeliverer>(
        out, a->api.get(),
        [runtime](absl::string_view blob_id,
                  const std::function<absl::Status(absl::string_view)>& write) {
          return runtime->router().GetBlob(blob_id, write);
        },
        journal,
        [a](const absl::Status& outcome) {
          if (a->presence.has_value()) a->presence->RecordDelivery(outcome);
        });
    WebhookReceiver::Options in;
    in.webhook_secret = s.webhook_secret;
    in.account = s.account;
    in.external_user_prefix = s.external_user_prefix;
    in.max_file_bytes = s.max_file_bytes;
    a->receiver = std::make_unique<WebhookReceiver>(
        in, a->api.get(), pipeline_.get(),
        [runtime](absl::string_view reason) {
          runtime->CountRejection(reason);
        },
        this);
    runtime->http().Handle(
        "POST", s.webhook_path,
        absl::bind_front(&WebhookReceiver::Handle, a->receiver.get()),
        JsonBodies());
    a->identity = std::make_unique<BotIdentity>(s.account, a->api.get(),
                                                a->receiver.get());
    runtime->AddReadinessCheck(absl::StrCat("teamspirit/", s.account),
                               [a] { return a->identity->Ready(); });
  }
}

TeamSpiritAdapter::~TeamSpiritAdapter() { Stop(); }

bool TeamSpiritAdapter::Offers(Capability capability) const {
  for (const auto& a : accounts_) {
    if (a->settings.send_only) continue;
    if (capability != Capability::kMembership ||
        a->settings.membership_notices) {
      return true;
    }
  }
  return false;
}

absl::Status TeamSpiritAdapter::Start() {
  for (const auto& a : accounts_) {
    if (a->identity != nullptr) a->identity->Start();
    if (a->presence.has_value()) a->presence->Start();
  }
  return absl::OkStatus();
}

void TeamSpiritAdapter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (const auto& a : accounts_) {
    // Calls that must wait for their turn (up to a 429's Retry-After) give
    // up: a delivery goes back to the router, an inbound file download is
    // answered 503 and TeamSpirit sends the event again. Calls that need no
    // wait, such as the bot's farewell presence below, still go.
    a->limiter.Stop();
    if (a->identity != nullptr) a->identity->Stop();
  }
  // Answers what is queued, finishes what is in progress, before the router
  // client stops.
  pipeline_->Stop();
  for (const auto& a : accounts_) {
    if (a->presence.has_value()) a->presence->Stop();
  }
}

absl::StatusOr<WebhookReceiver*> TeamSpiritAdapter::ReceiverOf(
    const std::string& account) {
  Account* a = accounts_.Find(account);
  if (a == nullptr || a->receiver == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no TeamSpirit bot account '", account, "'"));
  }
  return a->receiver.get();
}

absl::StatusOr<InboundRoute> TeamSpiritAdapter::Route(
    const TsInboundEvent& raw) {
  IMB_ASSIGN_OR_RETURN(WebhookReceiver * receiver,
                       ReceiverOf(raw.context.account));
  return receiver->Route(raw);
}

absl::StatusOr<InboundConversion> TeamSpiritAdapter::Convert(
    const TsInboundEvent& raw) {
  IMB_ASSIGN_OR_RETURN(WebhookReceiver * receiver,
                       ReceiverOf(raw.context.account));
  return receiver->Convert(raw);
}

absl::StatusOr<std::vector<std::string>> TeamSpiritAdapter::Render(
    const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * a,
                       accounts_.Get(delivery.target().account(),
                                     absl::StatusCode::kFailedPrecondition));
  return a->renderer->Deliver(delivery);
}

absl::StatusOr<std::vector<std::string>> TeamSpiritAdapter::SendMessage(
    const v1::Delivery& delivery) {
  return Render(delivery);
}

absl::Status TeamSpiritAdapter::EditMessage(const v1::Delivery& delivery) {
  return Render(delivery).status();
}

absl::Status TeamSpiritAdapter::DeleteMessage(const v1::Delivery& delivery) {
  return Render(delivery).status();
}

absl::Status TeamSpiritAdapter::SendPresence(const v1::Delivery& delivery) {
  return Render(delivery).status();
}

absl::StatusOr<std::vector<std::string>> TeamSpiritAdapter::SendMembership(
    const v1::Delivery& delivery) {
  return Render(delivery);
}

AdapterProgram<v1::TeamSpiritAdapterConfig> TeamSpiritProgram() {
  AdapterProgram<v1::TeamSpiritAdapterConfig> program(kPlatform, kDefaultPort);
  program.identity.default_request_timeout = absl::Milliseconds(4500);
  program.validate = ValidateTeamSpiritConfig;
  program.connect = [](const v1::TeamSpiritAdapterConfig& config,
                       AdapterRuntime* runtime, DeliveryJournal* journal)
      -> absl::StatusOr<std::unique_ptr<Connector>> {
    absl::StatusOr<std::vector<TeamSpiritSettings>> accounts =
        AccountsFromConfig("config", config);
    if (!accounts.ok()) return accounts.status();
    return std::make_unique<TeamSpiritAdapter>(*std::move(accounts), runtime,
                                               journal);
  };
  return program;
}

}  // namespace imbridge::adapters::teamspirit
