#include "adapters/bitrix24/bitrix24_adapter.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/bind_front.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/bitrix24/format.h"
#include "adapters/common/account_names.h"
#include "adapters/common/attachment_kind.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/inbound_answer.h"
#include "adapters/common/polled_batch.h"
#include "common/bounded_labels.h"
#include "common/config_loader.h"
#include "common/file_size.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "common/http/php_form.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge::adapters::bitrix24 {
namespace {

using json = nlohmann::json;

constexpr char kPlatform[] = "bitrix24";
constexpr uint64_t kMaxUploadBytes = 100ull << 20;

std::string WithSlash(std::string url) {
  if (!url.empty() && url.back() != '/') url.push_back('/');
  return url;
}

// A JSON id (number or string) as a string; "" when absent.
std::string IdString(const json& j, const char* name) {
  if (!j.is_object()) return "";
  auto it = j.find(name);
  if (it == j.end()) return "";
  if (it->is_number_integer()) return absl::StrCat(it->get<int64_t>());
  if (it->is_string()) return it->get<std::string>();
  return "";
}

// Fetch mode sends real JSON types, webhook mode strings ("1", "Y", "").
bool Flag(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_string()) {
    const std::string& v = it->get_ref<const std::string&>();
    return v == "1" || v == "Y" || v == "true";
  }
  return false;
}

uint64_t Count(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned() || it->is_number_integer()) {
    return it->get<uint64_t>();
  }
  uint64_t v = 0;
  if (it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) return v;
  return 0;
}

std::string Text(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

json Object(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_object() ? *it : json::object();
}

json Array(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_array() ? *it : json::array();
}

std::string WebhookPath(const v1::Bitrix24Account& a) {
  return a.webhook_path().empty() ? absl::StrCat("/bitrix24/", a.name())
                                  : a.webhook_path();
}

std::string DialogOf(const json& data) {
  const json chat = data.value("chat", json::object());
  std::string dialog = IdString(chat, "dialogId");
  if (dialog.empty()) {
    std::string id = IdString(chat, "id");
    if (id.empty())
      id = IdString(data.value("message", json::object()), "chatId");
    if (!id.empty()) dialog = absl::StrCat("chat", id);
  }
  return dialog;
}

v1::UserRef UserOf(const json& user, const std::string& fallback_id) {
  v1::UserRef ref;
  ref.set_platform(kPlatform);
  std::string id = IdString(user, "id");
  ref.set_id(id.empty() ? fallback_id : id);
  std::string name = user.is_object() ? Text(user, "name") : "";
  if (name.empty() && user.is_object()) {
    name = absl::StrCat(Text(user, "firstName"), " ", Text(user, "lastName"));
    name = std::string(absl::StripAsciiWhitespace(name));
  }
  ref.set_display_name(name.empty() ? ref.id() : name);
  ref.set_is_bot(user.is_object() && Flag(user, "isBot"));
  return ref;
}

int64_t ToInt(absl::string_view s) {
  int64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}

// The state value that keeps how many text messages the copy whose first
// message is `first_id` has, kept for copies of more than one part.
std::string PartsName(absl::string_view account, absl::string_view dialog,
                      absl::string_view first_id) {
  return absl::StrCat("bitrix24/parts/", account, "/", dialog, "/", first_id);
}

// The event's type names the series, so that an operator sees what is not
// mirrored; at most 16 distinct types (any type a verified request names,
// Bitrix24 adding new ones over time) and "other" beyond them.
void CountIgnored(absl::string_view type) {
  static metrics::BoundedLabelValues* const types =
      new metrics::BoundedLabelValues(16);
  metrics::Registry::Default()
      .GetCounter("imbridge_bitrix24_ignored_events_total",
                  "Bitrix24 events the adapter does not mirror, by type "
                  "(16 types at most, then \"other\").",
                  {{"type", types->Of(type)}})
      .Increment();
}

// The checks of one account of ValidateBitrix24Config at `at`; `paths`
// holds the webhook paths of the accounts before it.
absl::Status ValidateAccount(absl::string_view source,
                             const v1::Bitrix24Account& a,
                             const std::string& at, bool registering,
                             absl::flat_hash_set<std::string>* paths) {
  bool oauth = a.has_oauth();
  if (a.webhook_url().empty() == !oauth) {
    return ConfigError(source, at,
                       "exactly one of webhook_url and oauth is required");
  }
  if (!oauth && !IsHttpUrl(a.webhook_url())) {
    return ConfigError(source, at + ".webhook_url",
                       "must start with https:// or http://");
  }
  if (oauth) {
    const v1::Bitrix24OAuth& o = a.oauth();
    if (!IsHttpUrl(o.rest_url())) {
      return ConfigError(source, at + ".oauth.rest_url",
                         "required: https://<portal>/rest/");
    }
    if (!o.token_url().empty() && !IsHttpUrl(o.token_url())) {
      return ConfigError(source, at + ".oauth.token_url",
                         "must start with https:// or http://");
    }
    if (o.client_id().empty() || o.client_secret().empty()) {
      return ConfigError(source, at + ".oauth",
                         "client_id and client_secret are required");
    }
    if (o.refresh_token().empty()) {
      return ConfigError(source, at + ".oauth.refresh_token",
                         "required (or refresh_token_file)");
    }
  }
  if (!registering && a.bot_id() <= 0) {
    return ConfigError(source, at + ".bot_id",
                       "required: run with --register to get it");
  }
  if (a.bot_token().size() > 40) {
    return ConfigError(source, at + ".bot_token", "at most 40 characters");
  }
  if (a.mode() == v1::Bitrix24Account::WEBHOOK) {
    if (a.application_token().empty()) {
      return ConfigError(source, at + ".application_token",
                         "required in webhook mode (or "
                         "application_token_file)");
    }
    if (absl::Status s = CheckWebhookPath(source, at + ".webhook_path",
                                          WebhookPath(a), paths);
        !s.ok()) {
      return s;
    }
  }
  if (a.requests_per_second() < 0) {
    return ConfigError(source, at + ".requests_per_second",
                       "must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateBitrix24Config(absl::string_view source,
                                    const v1::Bitrix24AdapterConfig& config,
                                    bool registering) {
  absl::flat_hash_set<std::string> paths;
  return ValidateAccounts(
      source, config, [&](const v1::Bitrix24Account& a, const std::string& at) {
        return ValidateAccount(source, a, at, registering, &paths);
      });
}

RestClient::Options ClientOptions(const v1::Bitrix24Account& a) {
  RestClient::Options o;
  o.account = a.name();
  if (a.has_oauth()) {
    o.rest_url = WithSlash(a.oauth().rest_url());
    if (!a.oauth().token_url().empty()) o.token_url = a.oauth().token_url();
    o.client_id = a.oauth().client_id();
    o.client_secret = a.oauth().client_secret();
    o.access_token = a.oauth().access_token();
    o.refresh_token = a.oauth().refresh_token();
  } else {
    o.webhook_url = WithSlash(a.webhook_url());
  }
  if (a.requests_per_second() > 0) {
    o.requests_per_second = a.requests_per_second();
  }
  return o;
}

int RegisterBots(const v1::Bitrix24AdapterConfig& config) {
  HttpClient http(MessengerClientOptions(kPlatform));
  absl::StatusOr<std::unique_ptr<DeliveryJournal>> journal =
      DeliveryJournal::OpenInStateDir(config.state_dir());
  if (!journal.ok()) {
    std::fprintf(stderr, "cannot open the state: %s\n",
                 std::string(journal.status().message()).c_str());
    return 1;
  }
  for (const v1::Bitrix24Account& a : config.accounts()) {
    RestClient api(ClientOptions(a), &http, journal->get());
    absl::Status s = api.Init();
    std::string code = a.bot_code().empty() ? "imbridge" : a.bot_code();
    absl::StatusOr<json> list;
    if (s.ok()) list = api.Call("imbot.v2.Bot.list", json::object());
    if (s.ok() && !list.ok()) s = list.status();
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", a.name().c_str(),
                   std::string(s.message()).c_str());
      return 1;
    }
    std::string id;
    for (const json& bot : list->value("bots", json::array())) {
      if (bot.value("code", "") == code) id = IdString(bot, "id");
    }
    if (id.empty()) {
      json fields = {
          {"code", code},
          {"type", "supervisor"},
          {"eventMode", "fetch"},
          {"properties",
           {{"name", a.bot_name().empty() ? "Bridge" : a.bot_name()}}}};
      if (!a.bot_token().empty()) fields["botToken"] = a.bot_token();
      absl::StatusOr<json> r =
          api.Call("imbot.v2.Bot.register", {{"fields", fields}});
      if (!r.ok()) {
        std::fprintf(stderr, "%s: %s\n", a.name().c_str(),
                     std::string(r.status().message()).c_str());
        return 1;
      }
      id = IdString(r->value("bot", json::object()), "id");
    }
    std::printf("%s: bot_id %s\n", a.name().c_str(), id.c_str());
  }
  return 0;
}

AdapterProgram<v1::Bitrix24AdapterConfig> Bitrix24Program() {
  AdapterProgram<v1::Bitrix24AdapterConfig> program(kPlatform, kDefaultPort);
  program.validate = [](absl::string_view source,
                        const v1::Bitrix24AdapterConfig& config) {
    return ValidateBitrix24Config(source, config);
  };
  program.connect =
      ConnectAfterInit<Bitrix24Connector, v1::Bitrix24AdapterConfig>;
  AdapterProgram<v1::Bitrix24AdapterConfig>::Command register_bots;
  register_bots.flag = "--register";
  register_bots.help = "register each account's bot, print its id and exit";
  register_bots.validate = [](absl::string_view source,
                              const v1::Bitrix24AdapterConfig& config) {
    return ValidateBitrix24Config(source, config, /*registering=*/true);
  };
  register_bots.run = RegisterBots;
  program.commands.push_back(std::move(register_bots));
  return program;
}

Bitrix24Connector::Bitrix24Connector(const v1::Bitrix24AdapterConfig& config,
                                     AdapterRuntime* runtime,
                                     DeliveryJournal* journal)
    : config_(config),
      runtime_(runtime),
      journal_(journal),
      http_(MessengerClientOptions(kPlatform)),
      inbound_router_(runtime) {
  InboundPipeline::Options popts;
  popts.max_file_bytes = 0;
  for (const v1::Bitrix24Account& a : config_.accounts()) {
    auto account = std::make_unique<Account>();
    account->config = a;
    account->api =
        std::make_unique<RestClient>(ClientOptions(a), &http_, journal_);
    popts.max_file_bytes = std::max<uint64_t>(
        popts.max_file_bytes,
        a.max_file_bytes() ? a.max_file_bytes() : kMaxUploadBytes);
    accounts_.Add(a.name(), std::move(account));
  }
  pipeline_ = std::make_unique<InboundPipeline>(popts, &inbound_router_);
  for (auto& a : accounts_) {
    if (a->config.mode() != v1::Bitrix24Account::WEBHOOK) continue;
    runtime_->http().Handle(
        "POST", WebhookPath(a->config),
        absl::bind_front(&Bitrix24Connector::HandleWebhook, this, a.get()),
        FormBodies());
  }
}

void Bitrix24Connector::HandleWebhook(Account* account, HttpRequest request,
                                      std::shared_ptr<Responder> responder) {
  auto refuse = [&](int status, const char* reason, absl::string_view what) {
    runtime_->CountRejection(reason);
    responder->Respond(status, "application/json", JsonErrorBody(reason, what));
  };
  // Another Content-Type than a form's was answered 415 by the server.
  absl::StatusOr<json> form = ParsePhpForm(request.body);
  if (!form.ok()) {
    refuse(400, "bad_form", form.status().message());
    return;
  }
  // The top-level auth[application_token], compared in constant time.
  std::string token = Text(Object(*form, "auth"), "application_token");
  if (token.empty() ||
      !ConstantTimeEquals(token, account->config.application_token())) {
    refuse(401, "bad_token", "wrong or missing application token");
    return;
  }
  std::string event = Text(*form, "event");
  if (event.empty() || !(*form)["data"].is_object()) {
    refuse(400, "bad_event", "no event or data");
    return;
  }
  // Webhook events carry no eventId: the key is the event, the message (or
  // user) it is about and the time, so a repeated POST is one event.
  const json& data = (*form)["data"];
  std::string subject = IdString(Object(data, "message"), "id");
  if (subject.empty()) subject = IdString(data, "messageId");
  if (subject.empty()) subject = IdString(Object(data, "user"), "id");
  Bitrix24Event raw;
  raw.account = account->config.name();
  raw.event = {{"eventId", absl::StrCat("wh-", event, "-", subject, "-",
                                        Text(*form, "ts"))},
               {"type", event},
               {"data", data}};
  // 200 only once the router stored the events.
  absl::Status submitted = pipeline_->Submit<Bitrix24Event>(
      this, std::move(raw), AnswerInboundWhenDone(responder));
  if (!submitted.ok()) AnswerRefusedInbound(*responder, submitted);
}

Bitrix24Connector::~Bitrix24Connector() { Stop(); }

absl::Status Bitrix24Connector::Init() {
  for (auto& a : accounts_) {
    absl::Status s = a->api->Init();
    if (!s.ok()) return s;
  }
  runtime_->AddReadinessCheck("bitrix24", [this] { return Health(); });
  return absl::OkStatus();
}

absl::Status Bitrix24Connector::Health() const {
  for (const auto& a : accounts_) {
    absl::Status s = a->api->health();
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat(a->config.name(), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

json Bitrix24Connector::BotParams(const Account& account, json params) const {
  params["botId"] = account.config.bot_id();
  if (!account.config.bot_token().empty() &&
      !account.config.webhook_url().empty()) {
    params["botToken"] = account.config.bot_token();
  }
  return params;
}

// ---------------------------------------------------------------------------
// Inbound.

absl::Status Bitrix24Connector::Start() {
  for (auto& a : accounts_) {
    if (a->config.mode() != v1::Bitrix24Account::FETCH) continue;
    Account* account = a.get();
    account->poller = std::thread([this, account] { PollLoop(account); });
  }
  return absl::OkStatus();
}

void Bitrix24Connector::Stop() {
  stopping_.Stop();
  // A call in its backoff (the portal unreachable) ends now, not after
  // its last attempt.
  for (auto& a : accounts_) {
    if (a->api != nullptr) a->api->Stop();
  }
  for (auto& a : accounts_) {
    if (a->poller.joinable()) a->poller.join();
  }
  if (pipeline_ != nullptr) pipeline_->Stop();
}

void Bitrix24Connector::PollLoop(Account* account) {
  const std::string& name = account->config.name();
  const std::string offset_name = absl::StrCat("bitrix24/offset/", name);
  int64_t offset = 0;
  absl::StatusOr<std::optional<std::string>> saved =
      journal_->GetState(offset_name);
  if (saved.ok() && saved->has_value()) offset = ToInt(**saved);
  const absl::Duration active = absl::Milliseconds(
      account->config.poll_active_ms() ? account->config.poll_active_ms()
                                       : 1000);
  const absl::Duration idle = absl::Milliseconds(
      account->config.poll_idle_ms() ? account->config.poll_idle_ms() : 10000);
  absl::Duration interval = active;
  while (!stopping_.stopped()) {
    absl::StatusOr<json> r = account->api->Call(
        "imbot.v2.Event.get",
        BotParams(*account, {{"offset", offset}, {"limit", 100}}));
    if (!r.ok()) {
      LogWarn(
          "Event.get failed",
          {{"account", name}, {"error", std::string(r.status().message())}});
      stopping_.WaitFor(idle);
      continue;
    }
    json events = r->value("events", json::array());
    if (!events.is_array() || events.empty()) {
      stopping_.WaitFor(interval);
      interval = std::min(interval * 2, idle);
      continue;
    }
    interval = active;
    size_t done = ProcessBatch(account, events);
    if (done > 0) {
      int64_t last = ToInt(IdString(events[done - 1], "eventId"));
      if (last > offset) {
        offset = last;
        absl::Status s = journal_->PutState(offset_name, absl::StrCat(offset));
        if (!s.ok()) {
          LogWarn("cannot save the Event.get offset",
                  {{"account", name}, {"error", s.ToString()}});
        }
      }
    }
    if (done < events.size() || !r->value("hasMore", false)) {
      stopping_.WaitFor(active);
    }
  }
}

size_t Bitrix24Connector::ProcessBatch(Account* account, const json& events) {
  auto batch = std::make_shared<PolledBatch>(
      account->config.name(), "malformed Bitrix24 event skipped");
  for (size_t i = 0; i < events.size(); ++i) {
    const size_t index = batch->Add();
    InboundPipeline::DoneCallback done = batch->Done(index);
    Bitrix24Event raw{account->config.name(), events[i]};
    absl::Status submitted;
    while (true) {
      submitted = pipeline_->Submit<Bitrix24Event>(this, raw, done);
      if (submitted.code() != absl::StatusCode::kResourceExhausted ||
          stopping_.stopped()) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    if (absl::IsInvalidArgument(submitted)) {
      batch->Skip(index);
      continue;
    }
    if (!submitted.ok()) {
      batch->FetchAgain(index);
      break;
    }
  }
  return batch->AwaitDone([this] { return stopping_.stopped(); });
}

absl::StatusOr<InboundRoute> Bitrix24Connector::Route(
    const Bitrix24Event& raw) {
  std::string id = IdString(raw.event, "eventId");
  if (id.empty()) return absl::InvalidArgumentError("event without eventId");
  return AccountInboundRoute(raw.account, DialogOf(Object(raw.event, "data")),
                             id);
}

absl::StatusOr<InboundConversion> Bitrix24Connector::Convert(
    const Bitrix24Event& raw) {
  InboundConversion out;
  IMB_ASSIGN_OR_RETURN(
      Account * account,
      accounts_.Get(raw.account, absl::StatusCode::kInvalidArgument));
  const std::string type = Text(raw.event, "type");
  const json data = Object(raw.event, "data");
  const std::string dialog = DialogOf(data);
  const std::string bot_id = absl::StrCat(account->config.bot_id());

  v1::Event event;
  event.set_key(absl::StrCat("bitrix24:", raw.account, ":",
                             IdString(raw.event, "eventId")));
  v1::ChannelRef* channel = event.mutable_channel();
  channel->set_platform(kPlatform);
  channel->set_account(raw.account);
  channel->set_chat_id(dialog);
  event.set_occurred_at_ms(absl::ToUnixMillis(absl::Now()));

  if (type == "ONIMBOTV2MESSAGEADD" || type == "ONIMBOTV2MESSAGEUPDATE") {
    const json message = Object(data, "message");
    const std::string author = IdString(message, "authorId");
    // The bot's own messages are the bridge's copies: never mirrored back.
    if (author == bot_id || Flag(message, "isSystem")) return out;
    if (dialog.empty()) return absl::InvalidArgumentError("event without chat");
    v1::UserRef user = UserOf(Object(data, "user"), author);
    v1::RichText text = BbCodeToRichText(Text(message, "text"));
    const std::string message_id = IdString(message, "id");
    if (type == "ONIMBOTV2MESSAGEUPDATE") {
      v1::MessageEdited* edited = event.mutable_edited();
      edited->set_message_id(message_id);
      *edited->mutable_editor() = user;
      *edited->mutable_text() = std::move(text);
      out.events.push_back(std::move(event));
      return out;
    }
    v1::MessagePosted* posted = event.mutable_posted();
    posted->set_message_id(message_id);
    *posted->mutable_sender() = user;
    *posted->mutable_text() = std::move(text);
    const json params = Object(message, "params");
    posted->set_reply_to_message_id(IdString(params, "replyId"));
    for (const json& f : Array(params, "files")) {
      if (!f.is_object()) continue;
      v1::Attachment* att = posted->add_attachments();
      std::string name = Text(f, "name");
      std::string mime = Text(f, "mimeType");
      att->set_name(name.empty() ? "file" : name);
      att->set_mime_type(mime.empty() ? "application/octet-stream" : mime);
      att->set_size(Count(f, "size"));
      att->set_kind(AttachmentKindForMime(att->mime_type()));
      InboundFile file;
      file.event_index = 0;
      file.attachment_index = posted->attachments_size() - 1;
      std::string file_id = IdString(f, "id");
      file.download =
          [this, account, file_id](
              uint64_t max_bytes,
              const std::function<absl::Status(absl::string_view)>& write)
          -> absl::Status {
        absl::StatusOr<json> link = account->api->Call(
            "imbot.v2.File.download",
            BotParams(*account, {{"fileId", ToInt(file_id)}}));
        if (!link.ok()) {
          if (IsRetryable(link.status())) return link.status();
          return absl::NotFoundError(absl::StrCat(
              "Bitrix24 did not provide the file: ", link.status().message()));
        }
        return account->api->Download(Text(*link, "downloadUrl"), max_bytes,
                                      write);
      };
      out.files.push_back(std::move(file));
    }
    out.events.push_back(std::move(event));
    return out;
  }
  if (type == "ONIMBOTV2MESSAGEDELETE") {
    std::string id = IdString(data, "messageId");
    if (id.empty()) id = IdString(Object(data, "message"), "id");
    // A copy the bridge made (deleted by the bridge or by a user) is never
    // mirrored back: the delivery journal knows the copies' ids durably.
    absl::StatusOr<bool> copy =
        journal_->HasNativeId(absl::StrCat(raw.account, "/", dialog), id);
    if (!copy.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot read the delivery journal: ", copy.status().message()));
    }
    if (*copy) return out;
    event.mutable_deleted()->set_message_id(id);
    out.events.push_back(std::move(event));
    return out;
  }
  if (type == "ONIMBOTV2CHATUSERADD" || type == "ONIMBOTV2CHATUSERDELETE") {
    const json user = Object(data, "user");
    if (IdString(user, "id") == bot_id) return out;
    v1::MembershipChanged* m = event.mutable_membership();
    *m->mutable_user() = UserOf(user, "");
    m->set_joined(type == "ONIMBOTV2CHATUSERADD");
    out.events.push_back(std::move(event));
    return out;
  }
  CountIgnored(type);
  return out;
}

// ---------------------------------------------------------------------------
// Outbound.

absl::StatusOr<std::vector<std::string>> Bitrix24Connector::SendMessage(
    const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * account,
                       accounts_.Get(delivery.target().account(),
                                     absl::StatusCode::kFailedPrecondition));
  const std::string dialog = delivery.target().chat_id();
  const v1::MessagePosted& posted = delivery.event().posted();
  const v1::ChannelRef& origin = delivery.event().channel();
  BbCodeOptions options;
  options.native_mentions = origin.platform() == kPlatform &&
                            origin.account() == delivery.target().account();
  const std::string prefix = SenderPrefix(delivery.sender_name());
  std::vector<std::string> texts;
  if (!posted.text().text().empty() || posted.attachments().empty()) {
    texts = RenderMessages(prefix, posted.text(), options);
  }
  const int64_t reply_id = ToInt(delivery.reply_to_target_id());
  auto uploadable = [](const v1::Attachment& att) {
    return !att.blob_id().empty() && att.size() <= kMaxUploadBytes;
  };
  // A text of one part with a file: the file's upload carries the text
  // (File.upload's fields.message), one request and one message for both.
  // Not for a reply (File.upload takes no replyId).
  std::string caption;
  if (texts.size() == 1 && !posted.text().text().empty() && reply_id == 0 &&
      !posted.attachments().empty() && uploadable(posted.attachments(0))) {
    caption = std::move(texts[0]);
    texts.clear();
  }

  // Consecutive text messages (the parts of a long text, the notices of
  // unavailable files) go as one batch: one step of the journal and one
  // request of the leaky bucket. A file is a step of its own (its content
  // is too big for a batch command).
  std::vector<DeliveryJournal::StepCall> steps;
  std::vector<RestClient::Command> pending;
  auto flush_texts = [&] {
    for (std::vector<RestClient::Command>& group : InBatches(pending)) {
      steps.push_back([this, account, group = std::move(group)] {
        return SendTexts(account, group);
      });
    }
    pending.clear();
  };
  auto add_text = [&](std::string text, int64_t reply) {
    json fields = {{"message", std::move(text)}};
    if (reply > 0) fields["replyId"] = reply;
    pending.push_back(
        {"imbot.v2.Chat.Message.send",
         BotParams(*account, {{"dialogId", dialog}, {"fields", fields}})});
  };
  for (size_t i = 0; i < texts.size(); ++i) {
    add_text(texts[i], i == 0 ? reply_id : 0);
  }
  for (const v1::Attachment& att : posted.attachments()) {
    if (!uploadable(att)) {
      std::string reason = att.unavailable_reason();
      if (reason.empty() && att.size() > kMaxUploadBytes) {
        reason = "over Bitrix24's 100 MB upload limit";
      }
      add_text(absl::StrCat(prefix, "[i]📎 ", att.name(), " (",
                            FileSizeText(att.size()), ")",
                            reason.empty() ? "" : ": ", reason, "[/i]"),
               0);
      continue;
    }
    flush_texts();
    steps.push_back([this, account, dialog, att,
                     caption = std::exchange(caption, std::string())]()
                        -> absl::StatusOr<std::vector<std::string>> {
      absl::StatusOr<std::string> bytes =
          ReadBlobForUpload(runtime_->router(), att.blob_id(), kMaxUploadBytes);
      if (!bytes.ok()) return bytes.status();
      json fields = {{"name", att.name()},
                     {"content", absl::Base64Escape(*bytes)}};
      if (!caption.empty()) fields["message"] = caption;
      absl::StatusOr<json> r = account->api->Call(
          "imbot.v2.File.upload",
          BotParams(*account, {{"dialogId", dialog}, {"fields", fields}}));
      if (!r.ok()) return r.status();
      return std::vector<std::string>{IdString(*r, "messageId")};
    });
  }
  flush_texts();
  // A send left open by a crash is made again: Bitrix24 has no idempotency
  // key to look it up by (at least once, docs/bitrix24.md).
  absl::StatusOr<std::vector<std::string>> ids = journal_->Run(
      delivery.idempotency_key(),
      absl::StrCat(delivery.target().account(), "/", dialog), steps,
      [](size_t, const DeliveryJournal::Step&)
          -> absl::StatusOr<std::optional<std::vector<std::string>>> {
        return std::optional<std::vector<std::string>>();
      });
  // An edit updates every text part: remember how many there are (the
  // router's ids of the copy also hold the files' messages).
  if (ids.ok() && texts.size() > 1 && !ids->empty()) {
    absl::Status s = journal_->PutDeliveryState(
        delivery.idempotency_key(),
        PartsName(delivery.target().account(), dialog, ids->front()),
        absl::StrCat(texts.size()));
    if (!s.ok()) return RetryableError(s.message());
  }
  return ids;
}

absl::StatusOr<std::vector<std::string>> Bitrix24Connector::SendTexts(
    Account* account, const std::vector<RestClient::Command>& sends) {
  auto id_of = [](const json& r) {
    return r.is_object()           ? IdString(r, "id")
           : r.is_number_integer() ? absl::StrCat(r.get<int64_t>())
                                   : std::string();
  };
  if (sends.size() == 1) {
    absl::StatusOr<json> r =
        account->api->Call(sends[0].method, sends[0].params);
    if (!r.ok()) return r.status();
    return std::vector<std::string>{id_of(*r)};
  }
  // halt: a failing part stops the rest, so the order holds.
  auto answers = account->api->CallBatch(sends, /*halt=*/true);
  if (!answers.ok()) return answers.status();
  std::vector<std::string> ids;
  for (const absl::StatusOr<json>& answer : *answers) {
    if (answer.ok()) {
      ids.push_back(id_of(*answer));
      continue;
    }
    // The step is made again whole: remove the parts made so that the
    // retry does not show them twice.
    std::vector<RestClient::Command> deletes;
    for (const std::string& id : ids) {
      deletes.push_back({"imbot.v2.Chat.Message.delete",
                         BotParams(*account, {{"messageId", ToInt(id)}})});
    }
    absl::Status undone = RunAll(account, deletes);
    if (!undone.ok()) {
      LogWarn(
          "cannot remove the parts of a message that failed part-way",
          {{"account", account->config.name()}, {"error", undone.ToString()}});
    }
    return answer.status();
  }
  return ids;
}

absl::Status Bitrix24Connector::RunAll(
    Account* account, const std::vector<RestClient::Command>& commands) {
  // MESSAGE_NOT_FOUND: the message is gone already (deleted by a person or
  // by an earlier, shorter edit).
  auto check = [](const absl::Status& s) {
    return s.ok() || ErrorCode(s) == "MESSAGE_NOT_FOUND" ? absl::OkStatus() : s;
  };
  if (commands.size() == 1) {
    return check(
        account->api->Call(commands[0].method, commands[0].params).status());
  }
  for (const std::vector<RestClient::Command>& group : InBatches(commands)) {
    auto answers = account->api->CallBatch(group, /*halt=*/false);
    if (!answers.ok()) return answers.status();
    for (const absl::StatusOr<json>& answer : *answers) {
      absl::Status s = check(answer.status());
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Bitrix24Connector::EditMessage(const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * account,
                       accounts_.Get(delivery.target().account(),
                                     absl::StatusCode::kFailedPrecondition));
  const v1::ChannelRef& origin = delivery.event().channel();
  BbCodeOptions options;
  options.native_mentions = origin.platform() == kPlatform &&
                            origin.account() == delivery.target().account();
  std::vector<std::string> texts =
      RenderMessages(SenderPrefix(delivery.sender_name()),
                     delivery.event().edited().text(), options);
  // Each text part of the copy gets its part of the new text; parts the new
  // text no longer needs are deleted. Bitrix24 cannot insert a message
  // between others, so text beyond the copy's parts is cut (logged).
  const auto& ids = delivery.target_message_ids();
  const std::string dialog = delivery.target().chat_id();
  absl::StatusOr<std::optional<std::string>> saved =
      journal_->GetState(PartsName(account->config.name(), dialog, ids.at(0)));
  if (!saved.ok()) return RetryableError(saved.status().message());
  size_t parts = 1;
  if (saved->has_value()) {
    parts = std::clamp<size_t>(ToInt(**saved), 1, ids.size());
  }
  if (texts.size() > parts) {
    LogWarn("edited text cut to the copy's parts",
            {{"account", account->config.name()},
             {"message", ids[0]},
             {"parts", absl::StrCat(parts)},
             {"needed", absl::StrCat(texts.size())}});
  }
  // Every part's update (or delete) in one batch; a retry makes them all
  // again, which changes nothing where one was made.
  std::vector<RestClient::Command> commands;
  for (size_t i = 0; i < parts; ++i) {
    if (i < texts.size()) {
      commands.push_back(
          {"imbot.v2.Chat.Message.update",
           BotParams(*account, {{"messageId", ToInt(ids[i])},
                                {"fields", {{"message", texts[i]}}}})});
    } else {
      commands.push_back({"imbot.v2.Chat.Message.delete",
                          BotParams(*account, {{"messageId", ToInt(ids[i])}})});
    }
  }
  return RunAll(account, commands);
}

absl::Status Bitrix24Connector::DeleteMessage(const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * account,
                       accounts_.Get(delivery.target().account(),
                                     absl::StatusCode::kFailedPrecondition));
  std::vector<RestClient::Command> deletes;
  for (const std::string& id : delivery.target_message_ids()) {
    deletes.push_back({"imbot.v2.Chat.Message.delete",
                       BotParams(*account, {{"messageId", ToInt(id)}})});
  }
  if (deletes.empty()) return absl::OkStatus();
  return RunAll(account, deletes);
}

}  // namespace imbridge::adapters::bitrix24
