// imbridge-adapter-teamspirit: mirrors TeamSpirit chats through the router.
// See docs/teamspirit.md.

#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/http_client.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/teamspirit/bot_presence.h"
#include "adapters/teamspirit/inbound.h"
#include "adapters/teamspirit/outbound.h"
#include "adapters/teamspirit/rate_limiter.h"
#include "adapters/teamspirit/settings.h"
#include "adapters/teamspirit/teamspirit_api.h"
#include "common/logging.h"
#include "imbridge/v1/teamspirit_config.pb.h"

namespace imbridge::adapters::teamspirit {
namespace {

// Learns the bot's own user id (GET /me), retrying with backoff until it
// succeeds or Stop() is called; the webhook receiver answers 503 until then.
class BotIdentity {
 public:
  BotIdentity(TeamSpiritApi* api, WebhookReceiver* receiver)
      : api_(api), receiver_(receiver) {}
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
        LogInfo("TeamSpirit bot identified",
                {{"bot_user_id", me->id}, {"bot_name", me->name}});
        absl::MutexLock lock(&mu_);
        status_ = absl::OkStatus();
        return;
      }
      LogWarn("cannot identify the TeamSpirit bot (GET /me)",
              {{"error", me.status().message()}});
      absl::MutexLock lock(&mu_);
      status_ = absl::UnavailableError(
          absl::StrCat("GET /me failed: ", me.status().message()));
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
      if (stopping_) return;
      backoff = std::min(backoff * 2, absl::Seconds(30));
    }
  }

  TeamSpiritApi* const api_;
  WebhookReceiver* const receiver_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("GET /me not answered yet");
  std::thread thread_;
};

int RunSendOnly(const TeamSpiritSettings& s, AdapterRuntime& runtime,
                DeliveryJournal* journal) {
  HttpClient http(MessengerClientOptions("teamspirit"));
  RateLimiter limiter(s.requests_per_second, s.requests_per_second);
  TsIncomingWebhook webhook(s.incoming_webhook_url, &http, &limiter,
                            s.api_timeout);
  SendOnlyDeliverer deliverer(&webhook, journal, nullptr);
  runtime.SetDeliveryHandler(&deliverer);
  LogInfo(
      "send-only mode: posting to the incoming webhook; nothing is read "
      "from TeamSpirit");
  return runtime.Run();
}

int RunBot(const TeamSpiritSettings& s, AdapterRuntime& runtime,
           DeliveryJournal* journal) {
  HttpClient http(MessengerClientOptions("teamspirit"));
  RateLimiter limiter(s.requests_per_second, s.requests_per_second);
  TeamSpiritApi::Options api_options;
  api_options.base_url = s.api_base_url;
  api_options.api_key = s.api_key;
  api_options.paths = s.api_paths;
  api_options.timeout = s.api_timeout;
  TeamSpiritApi api(api_options, &http, &limiter);

  std::optional<BotPresence> presence;
  if (s.bot_presence_enabled) {
    presence.emplace(s.bot_presence, &api,
                     [&runtime] { return runtime.router().attached(); });
  }
  TeamSpiritDeliverer::Options out_options;
  out_options.external_user_prefix = s.external_user_prefix;
  out_options.post_as_bot = s.post_as_bot;
  out_options.membership_notices = s.membership_notices;
  out_options.max_file_bytes = s.max_file_bytes;
  TeamSpiritDeliverer deliverer(
      out_options, &api,
      [&runtime](absl::string_view blob_id,
                 const std::function<absl::Status(absl::string_view)>& write) {
        return runtime.router().GetBlob(blob_id, write);
      },
      journal,
      [&presence](const absl::Status& outcome) {
        if (presence.has_value()) presence->RecordDelivery(outcome);
      });
  runtime.SetDeliveryHandler(&deliverer);

  RuntimeInboundRouter inbound_router(&runtime);
  InboundPipeline::Options pipeline_options;
  pipeline_options.max_file_bytes = s.max_file_bytes;
  InboundPipeline pipeline(pipeline_options, &inbound_router);
  WebhookReceiver::Options in_options;
  in_options.webhook_secret = s.webhook_secret;
  in_options.account = s.account;
  in_options.external_user_prefix = s.external_user_prefix;
  WebhookReceiver receiver(
      in_options, &api, &pipeline,
      [&runtime](absl::string_view reason) { runtime.CountRejection(reason); });
  runtime.http().Handle(
      "POST", s.webhook_path,
      [&receiver](HttpRequest request, std::shared_ptr<Responder> responder) {
        receiver.Handle(std::move(request), std::move(responder));
      });

  BotIdentity identity(&api, &receiver);
  runtime.AddReadinessCheck("teamspirit",
                            [&identity] { return identity.Ready(); });
  runtime.OnStop([&] {
    identity.Stop();
    // Answers what is queued, finishes what is in progress, before the
    // router client stops.
    pipeline.Stop();
    if (presence.has_value()) presence->Stop();
  });
  identity.Start();
  if (presence.has_value()) presence->Start();
  return runtime.Run();
}

}  // namespace
}  // namespace imbridge::adapters::teamspirit

int main(int argc, char** argv) {
  using namespace imbridge::adapters;
  using namespace imbridge::adapters::teamspirit;
  imbridge::v1::TeamSpiritAdapterConfig config;
  absl::StatusOr<TeamSpiritSettings> settings;
  int exit_code = 0;
  auto validate = [&](absl::string_view source) -> absl::Status {
    absl::Status s = ValidateRouterConnection(source, config.router());
    if (!s.ok()) return s;
    s = ValidateHttpServerOptions(source, config.http());
    if (!s.ok()) return s;
    settings = SettingsFromConfig(source, config);
    return settings.status();
  };
  if (!ParseAdapterCommandLine(argc, argv, "imbridge-adapter-teamspirit",
                               &config, validate, &exit_code)) {
    return exit_code;
  }
  imbridge::InitLogging("adapter-teamspirit", kPlatform, settings->log_level);

  AdapterIdentity identity;
  identity.platform = kPlatform;
  identity.accounts = {settings->account};
  identity.capabilities = settings->Capabilities();
  identity.default_port = kDefaultPort;
  // TeamSpirit waits 5 s; answering 503 before that makes it retry sooner.
  identity.default_request_timeout = absl::Milliseconds(4500);
  AdapterRuntime runtime(config.router(), config.http(), identity);
  auto journal = runtime.OpenDeliveryJournal(config.state_dir());
  if (!journal.ok()) return 1;
  return settings->send_only ? RunSendOnly(*settings, runtime, *journal)
                             : RunBot(*settings, runtime, *journal);
}
