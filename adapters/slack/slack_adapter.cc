#include "adapters/slack/slack_adapter.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/functional/bind_front.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/common/inbound_answer.h"
#include "adapters/slack/signature.h"
#include "common/config_loader.h"
#include "common/http/http_server.h"
#include "common/http/url_origin.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::slack {
namespace {

using nlohmann::json;

constexpr char kDefaultApiBase[] = "https://slack.com/api";

bool ValidAccountName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// How long the echo check waits for the service user's posts in flight.
constexpr absl::Duration kCopyWait = absl::Seconds(10);

// Whether `message` of the service user in `channel` is a copy the bridge
// posted with the user token: its ts (or one of its files) is among the
// native ids the delivery journal recorded for deliveries to that channel
// (durable: also after a restart, for as long as the journal keeps the
// delivery). When the journal does not know it, a delivery to the channel
// still in flight (Slack may report a post before answering it) is waited
// for, then the journal is asked again.
absl::StatusOr<bool> IsServiceUserCopy(const std::string& account,
                                       PostsInFlight* in_flight,
                                       DeliveryJournal* journal,
                                       absl::string_view channel,
                                       const json& message) {
  std::vector<std::string> ids;
  auto ts = message.find("ts");
  if (ts != message.end() && ts->is_string()) ids.push_back(*ts);
  auto files = message.find("files");
  if (files != message.end() && files->is_array()) {
    for (const json& f : *files) {
      if (f.is_object() && f.contains("id") && f["id"].is_string()) {
        ids.push_back(absl::StrCat(kFileIdPrefix, f["id"].get<std::string>()));
      }
    }
  }
  const std::string target = JournalTarget(account, channel);
  auto known = [&]() -> absl::StatusOr<bool> {
    for (const std::string& id : ids) {
      absl::StatusOr<bool> has = journal->HasNativeId(target, id);
      if (!has.ok()) {
        return RetryableError(absl::StrCat("cannot read the delivery journal: ",
                                           has.status().message()));
      }
      if (*has) return true;
    }
    return false;
  };
  absl::StatusOr<bool> copy = known();
  if (!copy.ok() || *copy) return copy;
  if (!in_flight->WaitIdle(std::string(channel), kCopyWait)) {
    LogWarn("a delivery to the channel is still in flight; deciding anyway",
            {{"account", account}, {"channel", channel}});
  }
  return known();
}

}  // namespace

struct SlackAdapter::Account {
  v1::SlackAccount config;
  std::unique_ptr<SlackApi> api;
  // The service user (user_token): its client, where it posts, and its
  // posts in flight. Null without a user token.
  std::unique_ptr<SlackApi> user_api;
  std::unique_ptr<UserChannels> user_channels;
  std::unique_ptr<PostsInFlight> in_flight;
  // The service user's presence following other people's; null if not
  // configured.
  std::unique_ptr<ServicePresence> service_presence;
  std::unique_ptr<UserDirectory> users;
  std::unique_ptr<EventProcessor> events;
  std::unique_ptr<SlackOutbound> outbound;
  std::unique_ptr<PresencePoller> presence;
  std::unique_ptr<SocketModeClient> socket;
  std::atomic<bool> identified{false};
};

AdapterProgram<v1::SlackAdapterConfig> SlackProgram() {
  AdapterProgram<v1::SlackAdapterConfig> program("slack", kDefaultPort);
  program.identity.default_request_timeout =
      absl::Milliseconds(kDefaultRequestTimeoutMs);
  program.validate = ValidateSlackConfig;
  program.connect = Connect<SlackAdapter, v1::SlackAdapterConfig>;
  return program;
}

absl::Status ValidateSlackConfig(absl::string_view source,
                                 const v1::SlackAdapterConfig& config) {
  absl::Status s = ValidateAdapterConfigBasics(source, config);
  if (!s.ok()) return s;
  absl::flat_hash_map<std::string, int> names;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const v1::SlackAccount& a = config.accounts(i);
    std::string path = absl::StrCat("accounts[", i, "]");
    auto field = [&](absl::string_view f) {
      return absl::StrCat(path, ".", f);
    };
    if (!ValidAccountName(a.name())) {
      return ConfigError(source, field("name"),
                         "required: letters, digits, '-', '_' or '.'");
    }
    if (!names.emplace(a.name(), i).second) {
      return ConfigError(source, field("name"),
                         absl::StrCat("duplicate account '", a.name(), "'"));
    }
    if (absl::StripAsciiWhitespace(a.bot_token()).empty()) {
      return ConfigError(source, field("bot_token"),
                         "required (or bot_token_file)");
    }
    const bool has_user_token =
        !absl::StripAsciiWhitespace(a.user_token()).empty();
    const v1::SlackUserChannels& as_user = a.post_as_user();
    if (!has_user_token &&
        (as_user.channels_size() > 0 || as_user.created_by_size() > 0 ||
         as_user.name_prefixes_size() > 0)) {
      return ConfigError(source, field("post_as_user"),
                         "requires user_token (or user_token_file)");
    }
    for (int j = 0; j < as_user.name_prefixes_size(); ++j) {
      if (as_user.name_prefixes(j).empty()) {
        return ConfigError(
            source, absl::StrCat(path, ".post_as_user.name_prefixes[", j, "]"),
            "must not be empty (it would select every channel)");
      }
    }
    const v1::SlackServicePresence& presence = a.service_presence();
    if (!has_user_token &&
        (presence.links_size() > 0 || presence.people_size() > 0)) {
      return ConfigError(source, field("service_presence"),
                         "requires user_token (or user_token_file)");
    }
    if (presence.people_size() > 0 && presence.links_size() == 0) {
      return ConfigError(source, field("service_presence.links"),
                         "at least one link is required");
    }
    for (int j = 0; j < presence.links_size(); ++j) {
      if (presence.links(j).empty() || presence.links(j) == "*") {
        return ConfigError(
            source, absl::StrCat(path, ".service_presence.links[", j, "]"),
            "a link name (or a prefix ending in '*') is required");
      }
    }
    for (int j = 0; j < presence.people_size(); ++j) {
      std::vector<std::string> parts =
          absl::StrSplit(presence.people(j), absl::MaxSplits('/', 1));
      if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
        return ConfigError(
            source, absl::StrCat(path, ".service_presence.people[", j, "]"),
            "expected \"platform/user_id\"");
      }
    }
    if (a.mode() == v1::SlackAccount::HTTP &&
        absl::StripAsciiWhitespace(a.signing_secret()).empty()) {
      return ConfigError(source, field("signing_secret"),
                         "required in mode http (or signing_secret_file)");
    }
    if (a.mode() == v1::SlackAccount::SOCKET &&
        absl::StripAsciiWhitespace(a.app_token()).empty()) {
      return ConfigError(source, field("app_token"),
                         "required in mode socket (or app_token_file)");
    }
    if (!a.api_base_url().empty()) {
      auto origin = ParseUrlOrigin(a.api_base_url());
      if (!origin.ok() || origin->has_user_info ||
          (origin->scheme != "https" && origin->scheme != "http")) {
        return ConfigError(source, field("api_base_url"),
                           "expected an http:// or https:// URL");
      }
    }
    if (a.messages_per_second() < 0) {
      return ConfigError(source, field("messages_per_second"),
                         "must not be negative");
    }
    if (a.presence_calls_per_minute() > 1000) {
      return ConfigError(source, field("presence_calls_per_minute"),
                         "at most 1000");
    }
  }
  return absl::OkStatus();
}

SlackAdapter::SlackAdapter(const v1::SlackAdapterConfig& config,
                           AdapterRuntime* runtime, DeliveryJournal* journal)
    : runtime_(runtime),
      inbound_router_(runtime),
      http_(MessengerClientOptions("slack")),
      accounts_("Slack") {
  InboundPipeline::Options pipeline;
  if (config.inbound_threads() > 0) {
    pipeline.convert_threads = static_cast<int>(config.inbound_threads());
    pipeline.download_slots = static_cast<int>(config.inbound_threads());
  } else {
    pipeline.convert_threads = 4;
  }
  // Each account checks its own max_file_bytes; this only bounds them.
  pipeline.max_file_bytes = 0;
  for (const v1::SlackAccount& c : config.accounts()) {
    pipeline.max_file_bytes = std::max<uint64_t>(
        pipeline.max_file_bytes,
        c.max_file_bytes() > 0 ? c.max_file_bytes() : (uint64_t{100} << 20));
  }
  pipeline_ = std::make_unique<InboundPipeline>(pipeline, &inbound_router_);
  RouterClient* router = &runtime_->router();
  for (const v1::SlackAccount& c : config.accounts()) {
    auto account = std::make_unique<Account>();
    Account* a = account.get();
    a->config = c;
    SlackApi::Options api;
    api.base_url =
        c.api_base_url().empty() ? kDefaultApiBase : c.api_base_url();
    api.bot_token = c.bot_token();
    if (c.file_hosts_size() > 0) {
      api.file_hosts.assign(c.file_hosts().begin(), c.file_hosts().end());
    }
    a->api = std::make_unique<SlackApi>(api, &http_);
    a->users = std::make_unique<UserDirectory>(a->api.get(), absl::Seconds(2));
    SlackOutbound::ServiceUser service_user;
    if (!c.user_token().empty()) {
      SlackApi::Options user_api = api;
      user_api.bot_token = c.user_token();
      a->user_api = std::make_unique<SlackApi>(user_api, &http_);
      a->user_channels =
          std::make_unique<UserChannels>(c.post_as_user(), a->api.get());
      a->in_flight = std::make_unique<PostsInFlight>();
      service_user.api = a->user_api.get();
      service_user.channels = a->user_channels.get();
      service_user.in_flight = a->in_flight.get();
      if (c.service_presence().links_size() > 0) {
        a->service_presence = std::make_unique<ServicePresence>(
            c.name(), c.service_presence(), a->user_api.get(), journal);
      }
    }
    uint64_t max_file =
        c.max_file_bytes() > 0 ? c.max_file_bytes() : (uint64_t{100} << 20);

    EventProcessor::Options events;
    events.account = c.name();
    events.max_file_bytes = max_file;
    events.on_posted = [this, a](const v1::Event& e) { OnPosted(a, e); };
    if (a->user_channels != nullptr) {
      // The bot joins a new channel the service user posts in, so that its
      // messages (a visitor's, for Chatlio) reach the bridge.
      events.on_channel_created = [a](const SlackChannel& channel) {
        if (!a->user_channels->Learn(channel)) return absl::OkStatus();
        LogInfo("joining a new channel the service user posts in",
                {{"account", a->config.name()},
                 {"channel", channel.id},
                 {"name", channel.name}});
        absl::Status joined = a->api->JoinChannel(channel.id);
        if (!joined.ok() && !IsRetryable(joined)) {
          LogWarn("could not join the new channel",
                  {{"account", a->config.name()},
                   {"channel", channel.id},
                   {"error", joined.message()}});
          return absl::OkStatus();
        }
        return joined;
      };
    }
    if (a->user_api != nullptr) {
      events.is_copy = [a, journal](absl::string_view channel,
                                    const json& message) {
        return IsServiceUserCopy(a->config.name(), a->in_flight.get(), journal,
                                 channel, message);
      };
    }
    a->events =
        std::make_unique<EventProcessor>(events, a->api.get(), a->users.get());

    SlackOutbound::Options out;
    out.account = c.name();
    if (c.messages_per_second() > 0)
      out.messages_per_second = c.messages_per_second();
    if (c.message_burst() > 0) out.burst = c.message_burst();
    a->outbound = std::make_unique<SlackOutbound>(
        out, a->api.get(),
        [router](const std::string& blob_id, uint64_t max) {
          return router->GetBlob(blob_id, max);
        },
        journal, service_user);

    if (!c.disable_presence()) {
      PresencePoller::Options p;
      p.account = c.name();
      if (c.presence_poll_interval_seconds() > 0) {
        p.interval = absl::Seconds(c.presence_poll_interval_seconds());
      }
      if (c.presence_calls_per_minute() > 0) {
        p.calls_per_minute = static_cast<int>(c.presence_calls_per_minute());
      }
      if (c.presence_max_users() > 0) p.max_users = c.presence_max_users();
      a->presence = std::make_unique<PresencePoller>(
          p, a->api.get(), [this](v1::Event e) {
            return runtime_->Publish(std::move(e), nullptr);
          });
    }

    if (c.mode() == v1::SlackAccount::SOCKET) {
      SocketModeClient::Options s;
      s.account = c.name();
      s.app_token = c.app_token();
      a->socket = std::make_unique<SocketModeClient>(
          s, a->api.get(), [this, a](json payload, std::function<void()> ack) {
            // Acknowledged once the router has the event (or it cannot be
            // converted at all); otherwise Slack sends it again.
            HandleCallback(a, std::move(payload),
                           [ack = std::move(ack)](int status) {
                             if (status == 200 || status == 400) ack();
                           });
          });
    } else {
      runtime_->http().Handle(
          "POST", absl::StrCat("/slack/", c.name(), "/events"),
          absl::bind_front(&SlackAdapter::HandleEvents, this, a), JsonBodies());
    }
    runtime_->AddReadinessCheck(
        absl::StrCat("slack:", c.name()), [a]() -> absl::Status {
          if (!a->identified.load()) {
            return absl::UnavailableError("auth.test has not succeeded yet");
          }
          if (a->socket && !a->socket->connected()) {
            return absl::UnavailableError("Socket Mode is not connected");
          }
          return absl::OkStatus();
        });
    accounts_.Add(c.name(), std::move(account));
  }
}

SlackAdapter::~SlackAdapter() { Stop(); }

absl::Status SlackAdapter::Start() {
  for (auto& account : accounts_) {
    Account* a = account.get();
    identify_threads_.emplace_back([this, a] { Identify(a); });
  }
  return absl::OkStatus();
}

void SlackAdapter::Identify(Account* a) {
  absl::Duration backoff = absl::Seconds(1);
  while (true) {
    auto id = a->api->Identify();
    if (id.ok() && a->user_api != nullptr) {
      // The service user: auth.test with the user token names the person.
      auto person = a->user_api->Identify();
      if (person.ok() && person->user_id.empty()) {
        person = absl::FailedPreconditionError(
            "auth.test with the user token named no user");
      }
      if (person.ok()) {
        id->service_user_id = person->user_id;
      } else {
        id = absl::Status(
            person.status().code(),
            absl::StrCat("user token: ", person.status().message()));
      }
    }
    if (id.ok()) {
      LogInfo("slack account identified",
              {{"account", a->config.name()},
               {"team", id->team_id},
               {"bot_user", id->user_id},
               {"bot_id", id->bot_id},
               {"app_id", id->app_id},
               {"service_user", id->service_user_id}});
      a->events->SetIdentity(*id);
      if (a->service_presence != nullptr) {
        // Errors are logged; the next presence delivery tries again.
        a->service_presence->Start().IgnoreError();
      }
      a->identified = true;
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      if (a->socket) a->socket->Start();
      if (a->presence) a->presence->Start();
      return;
    }
    LogError("auth.test failed; retrying",
             {{"account", a->config.name()}, {"error", id.status().message()}});
    absl::MutexLock lock(&mu_);
    auto stopping = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff)) return;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void SlackAdapter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  // Deliveries waiting for their turn give up (the router sends them again)
  // rather than hold the shutdown for as long as the pacing asks.
  for (auto& a : accounts_) {
    if (a->outbound) a->outbound->Stop();
  }
  for (auto& t : identify_threads_) {
    if (t.joinable()) t.join();
  }
  for (auto& a : accounts_) {
    if (a->socket) a->socket->Stop();
    if (a->presence) a->presence->Stop();
  }
  // Finishes the inbound work in progress (the router client still runs)
  // and hands back what is queued.
  pipeline_->Stop();
}

void SlackAdapter::OnPosted(Account* a, const v1::Event& e) {
  if (!a->presence) return;
  const v1::Welcome welcome = runtime_->router().welcome();
  for (const v1::ChannelRef& c : welcome.channels()) {
    if (c.platform() == "slack" && c.account() == a->config.name() &&
        c.chat_id() == e.channel().chat_id()) {
      a->presence->Track(e.posted().sender());
      return;
    }
  }
}

void SlackAdapter::HandleEvents(Account* a, HttpRequest request,
                                std::shared_ptr<Responder> responder) {
  absl::string_view signature = request.Header("X-Slack-Signature");
  absl::string_view timestamp = request.Header("X-Slack-Request-Timestamp");
  if (signature.empty() || timestamp.empty()) {
    runtime_->CountRejection("missing_headers");
    responder->Respond(
        401, "application/json",
        JsonErrorBody(
            "unauthenticated",
            "X-Slack-Signature and X-Slack-Request-Timestamp required"));
    return;
  }
  absl::Status verified = VerifyTimestampedSignature(
      kSlackSignature, a->config.signing_secret(), timestamp, signature,
      request.body, absl::Now());
  if (!verified.ok()) {
    runtime_->CountRejection(
        absl::StrContains(verified.message(), "window") ||
                absl::StrContains(verified.message(), "stale")
            ? "stale_timestamp"
            : "bad_signature");
    LogWarn("Slack request refused", {{"account", a->config.name()},
                                      {"reason", verified.message()},
                                      {"peer", request.remote_address}});
    responder->Respond(401, "application/json",
                       JsonErrorBody("unauthenticated", verified.message()));
    return;
  }
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  absl::StatusOr<std::string> read_type = EventsRequestType(body);
  if (!read_type.ok()) {
    runtime_->CountRejection("bad_json");
    responder->Respond(400, "application/json",
                       JsonErrorBody("bad_json", read_type.status().message()));
    return;
  }
  const std::string& type = *read_type;
  if (type == "url_verification") {
    auto challenge = body.find("challenge");
    if (challenge == body.end() || !challenge->is_string()) {
      runtime_->CountRejection("bad_json");
      responder->Respond(400, "application/json",
                         JsonErrorBody("bad_json", "challenge missing"));
      return;
    }
    responder->Respond(200, "application/json",
                       json{{"challenge", *challenge}}.dump());
    return;
  }
  if (type == "event_callback") {
    absl::string_view retry = request.Header("X-Slack-Retry-Num");
    if (!retry.empty()) {
      LogInfo("Slack retry received",
              {{"account", a->config.name()},
               {"retry", retry},
               {"reason", request.Header("X-Slack-Retry-Reason")}});
    }
    HandleCallback(a, std::move(body), [responder](int status) {
      AnswerInbound(*responder, status,
                    status == 400 ? "the event cannot be converted"
                                  : "the event was not stored; retry");
    });
    return;
  }
  if (type == "app_rate_limited") {
    LogWarn("Slack reports the app's events are rate limited",
            {{"account", a->config.name()}});
  } else {
    runtime_->CountRejection("unknown_type");
  }
  responder->Respond(200, "application/json", "{}");
}

void SlackAdapter::HandleCallback(Account* a, json callback, Done done) {
  auto it = callback.find("event_id");
  if (it == callback.end() || !it->is_string() ||
      it->get<std::string>().empty()) {
    LogWarn("event callback without event_id ignored",
            {{"account", a->config.name()}});
    done(200);
    return;
  }
  if (!a->events->identity().has_value()) {
    // Without the bot's identity its own posts cannot be recognised.
    done(503);
    return;
  }
  auto shared = std::make_shared<Done>(std::move(done));
  absl::Status submitted = pipeline_->Submit<SlackEventCallback>(
      this, SlackEventCallback{a->config.name(), std::move(callback)},
      [shared](const InboundResult& result) {
        (*shared)(result.HttpStatus());
      });
  if (!submitted.ok()) {
    LogWarn("event not taken; Slack will send it again",
            {{"account", a->config.name()}, {"error", submitted.message()}});
    (*shared)(submitted.code() == absl::StatusCode::kInvalidArgument ? 400
                                                                     : 503);
  }
}

absl::StatusOr<EventProcessor*> SlackAdapter::EventsOf(
    const SlackEventCallback& raw) const {
  IMB_ASSIGN_OR_RETURN(
      Account * a,
      accounts_.Get(raw.account, absl::StatusCode::kInvalidArgument));
  return a->events.get();
}

absl::StatusOr<InboundRoute> SlackAdapter::Route(
    const SlackEventCallback& raw) {
  IMB_ASSIGN_OR_RETURN(EventProcessor * events, EventsOf(raw));
  return events->Route(raw.callback);
}

absl::StatusOr<adapters::InboundConversion> SlackAdapter::Convert(
    const SlackEventCallback& raw) {
  IMB_ASSIGN_OR_RETURN(EventProcessor * events, EventsOf(raw));
  return events->Convert(raw.callback);
}

absl::StatusOr<SlackAdapter::Account*> SlackAdapter::AccountFor(
    const v1::Delivery& delivery) const {
  return accounts_.Get(delivery.target().account(),
                       absl::StatusCode::kFailedPrecondition);
}

absl::StatusOr<std::vector<std::string>> SlackAdapter::SendMessage(
    const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * a, AccountFor(delivery));
  return a->outbound->SendMessage(delivery);
}

absl::Status SlackAdapter::EditMessage(const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * a, AccountFor(delivery));
  return a->outbound->EditMessage(delivery);
}

absl::Status SlackAdapter::DeleteMessage(const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * a, AccountFor(delivery));
  return a->outbound->DeleteMessage(delivery);
}

absl::Status SlackAdapter::SendPresence(const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * a, AccountFor(delivery));
  if (a->service_presence == nullptr ||
      !a->service_presence->Follows(delivery.link())) {
    return absl::OkStatus();
  }
  return a->service_presence->Apply(delivery);
}

bool SlackAdapter::Offers(Capability capability) const {
  if (capability != Capability::kPresence) return true;
  for (const auto& a : accounts_) {
    if (a->service_presence != nullptr) return true;
  }
  return false;
}

}  // namespace imbridge::adapters::slack
