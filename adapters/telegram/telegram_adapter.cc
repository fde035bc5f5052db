#include "adapters/telegram/telegram_adapter.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/bind_front.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/common/account_names.h"
#include "adapters/common/inbound_answer.h"
#include "adapters/common/polled_batch.h"
#include "common/config_loader.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::adapters::telegram {

using nlohmann::json;

namespace {

constexpr char kDefaultApiBase[] = "https://api.telegram.org";
constexpr char kSecretHeader[] = "X-Telegram-Bot-Api-Secret-Token";
constexpr uint64_t kDefaultMaxDownload = 20ull << 20;
constexpr uint64_t kDefaultMaxUpload = 50ull << 20;

const std::vector<std::string>& DefaultAllowedUpdates() {
  static const auto* kUpdates = new std::vector<std::string>{
      "message", "edited_message", "channel_post", "edited_channel_post"};
  return *kUpdates;
}

std::string WebhookPath(const v1::TelegramAccount& a) {
  return a.webhook_path().empty() ? absl::StrCat("/telegram/", a.name())
                                  : a.webhook_path();
}

std::string ApiBase(const v1::TelegramAccount& a) {
  std::string base =
      a.api_base_url().empty() ? kDefaultApiBase : a.api_base_url();
  while (absl::EndsWith(base, "/")) base.pop_back();
  return base;
}

bool IsSecretToken(absl::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

bool IsBotToken(absl::string_view token) {
  size_t colon = token.find(':');
  if (colon == 0 || colon == absl::string_view::npos ||
      colon + 1 >= token.size()) {
    return false;
  }
  int64_t id = 0;
  return absl::SimpleAtoi(token.substr(0, colon), &id) && id > 0;
}

// The checks of one account of ValidateTelegramConfig at `at`; `paths`
// holds the webhook paths of the accounts before it.
absl::Status ValidateAccount(absl::string_view source,
                             const v1::TelegramAccount& a,
                             const std::string& at,
                             absl::flat_hash_set<std::string>* paths) {
  if (a.token().empty()) {
    return ConfigError(source, at + ".token", "required (or token_file)");
  }
  if (!IsBotToken(a.token())) {
    return ConfigError(source, at + ".token",
                       "not a bot token (expected '<bot id>:<secret>')");
  }
  if (!a.api_base_url().empty() && !IsHttpUrl(a.api_base_url())) {
    return ConfigError(source, at + ".api_base_url",
                       "must start with https:// or http://");
  }
  if (a.mode() == v1::TelegramAccount::WEBHOOK) {
    if (a.secret_token().empty()) {
      return ConfigError(source, at + ".secret_token",
                         "required in webhook mode (or secret_token_file)");
    }
    if (!IsSecretToken(a.secret_token())) {
      return ConfigError(source, at + ".secret_token",
                         "1-256 characters of A-Z, a-z, 0-9, _ and -");
    }
    std::string path = WebhookPath(a);
    if (!absl::StartsWith(path, "/") || path == "/healthz" ||
        path == "/readyz" || path == "/metrics") {
      return ConfigError(source, at + ".webhook_path",
                         absl::StrCat("'", path,
                                      "' must start with '/' and not be "
                                      "/healthz, /readyz or /metrics"));
    }
    if (!paths->insert(path).second) {
      return ConfigError(source, at + ".webhook_path",
                         absl::StrCat("'", path, "' is used twice"));
    }
    if (a.has_set_webhook()) {
      if (!IsHttpUrl(a.set_webhook().url())) {
        return ConfigError(source, at + ".set_webhook.url",
                           "required: the public https:// URL of the webhook");
      }
      if (a.set_webhook().max_connections() > 100) {
        return ConfigError(source, at + ".set_webhook.max_connections",
                           "must be at most 100");
      }
    }
  } else if (a.has_set_webhook()) {
    return ConfigError(source, at + ".set_webhook", "only for webhook mode");
  }
  if (a.polling().limit() > 100) {
    return ConfigError(source, at + ".polling.limit", "must be 1-100");
  }
  if (a.polling().timeout_seconds() > 600) {
    return ConfigError(source, at + ".polling.timeout_seconds",
                       "must be at most 600");
  }
  if (!a.sender_style().empty() && a.sender_style() != "inline" &&
      a.sender_style() != "own_line") {
    return ConfigError(source, at + ".sender_style",
                       "expected inline or own_line");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTelegramConfig(absl::string_view source,
                                    const v1::TelegramAdapterConfig& config) {
  absl::flat_hash_set<std::string> paths;
  absl::Status status = ValidateAccounts(
      source, config, [&](const v1::TelegramAccount& a, const std::string& at) {
        return ValidateAccount(source, a, at, &paths);
      });
  if (!status.ok()) return status;
  const v1::TelegramRateLimits& r = config.rate_limits();
  if (r.per_chat_per_second() < 0 || r.per_group_per_minute() < 0 ||
      r.per_bot_per_second() < 0) {
    return ConfigError(source, "rate_limits", "rates must not be negative");
  }
  if (config.download_threads() > 64) {
    return ConfigError(source, "download_threads", "must be at most 64");
  }
  if (!config.open_send_policy().empty() &&
      config.open_send_policy() != "at_least_once" &&
      config.open_send_policy() != "at_most_once") {
    return ConfigError(source, "open_send_policy",
                       "expected at_least_once or at_most_once");
  }
  return absl::OkStatus();
}

AdapterProgram<v1::TelegramAdapterConfig> TelegramProgram() {
  AdapterProgram<v1::TelegramAdapterConfig> program("telegram", kDefaultPort);
  program.validate = ValidateTelegramConfig;
  program.connect = [](const v1::TelegramAdapterConfig& config,
                       AdapterRuntime* runtime, DeliveryJournal* journal)
      -> absl::StatusOr<std::unique_ptr<Connector>> {
    absl::StatusOr<std::unique_ptr<TelegramAdapter>> adapter =
        TelegramAdapter::Create(config, runtime, journal);
    if (!adapter.ok()) return adapter.status();
    return std::unique_ptr<Connector>(std::move(*adapter));
  };
  return program;
}

struct TelegramAdapter::Account {
  v1::TelegramAccount config;
  std::string path;
  std::shared_ptr<BotApi> api;
  uint64_t max_download = kDefaultMaxDownload;
  std::unique_ptr<Poller> poller;
};

TelegramAdapter::TelegramAdapter(const v1::TelegramAdapterConfig& config,
                                 AdapterRuntime* runtime,
                                 DeliveryJournal* journal)
    : config_(config),
      runtime_(runtime),
      journal_(journal),
      inbound_router_(runtime),
      http_(std::make_shared<HttpClient>(MessengerClientOptions("telegram"))),
      aliases_(journal, config.state_dir().empty()
                            ? std::string()
                            : (std::filesystem::path(config.state_dir()) /
                               "chat_aliases.json")
                                  .string()),
      accounts_("Telegram") {
  const v1::TelegramRateLimits& r = config.rate_limits();
  RateLimiter::Options rate;
  if (r.per_chat_per_second() > 0)
    rate.per_chat_per_second = r.per_chat_per_second();
  if (r.per_chat_burst() > 0) rate.per_chat_burst = r.per_chat_burst();
  if (r.per_group_per_minute() > 0) {
    rate.per_group_per_minute = r.per_group_per_minute();
  }
  if (r.per_bot_per_second() > 0)
    rate.per_bot_per_second = r.per_bot_per_second();
  if (r.max_wait_ms() > 0) rate.max_wait = absl::Milliseconds(r.max_wait_ms());
  limiter_ = std::make_unique<RateLimiter>(rate);

  std::vector<OutboundAccount> outbound;
  for (const v1::TelegramAccount& c : config.accounts()) {
    auto a = std::make_unique<Account>();
    a->config = c;
    a->path = WebhookPath(c);
    BotApi::Options api;
    api.base_url = ApiBase(c);
    api.token = c.token();
    a->api = std::make_shared<BotApi>(api, http_);
    if (c.max_download_bytes() > 0) a->max_download = c.max_download_bytes();
    OutboundAccount o;
    o.name = c.name();
    o.api = a->api.get();
    o.sender_style = c.sender_style() == "own_line" ? SenderStyle::kOwnLine
                                                    : SenderStyle::kInline;
    o.max_upload_bytes =
        c.max_upload_bytes() > 0 ? c.max_upload_bytes() : kDefaultMaxUpload;
    outbound.push_back(o);
    accounts_.Add(c.name(), std::move(a));
  }
  RouterClient* router = &runtime_->router();
  outbound_ = std::make_unique<Outbound>(
      std::move(outbound), &aliases_, limiter_.get(),
      [router](const std::string& blob_id, uint64_t max_bytes) {
        return router->GetBlob(blob_id, max_bytes);
      },
      journal,
      config.open_send_policy() == "at_most_once"
          ? OpenSendPolicy::kAtMostOnce
          : OpenSendPolicy::kAtLeastOnce);
  InboundPipeline::Options pipeline;
  if (config.download_threads() > 0) {
    pipeline.download_slots = static_cast<int>(config.download_threads());
  }
  // Each account checks its own max_download_bytes; this only bounds them.
  pipeline.max_file_bytes = 0;
  for (const auto& a : accounts_) {
    pipeline.max_file_bytes =
        std::max(pipeline.max_file_bytes, a->max_download);
  }
  pipeline_ = std::make_unique<InboundPipeline>(pipeline, &inbound_router_);
}

absl::StatusOr<std::unique_ptr<TelegramAdapter>> TelegramAdapter::Create(
    const v1::TelegramAdapterConfig& config, AdapterRuntime* runtime,
    DeliveryJournal* journal) {
  std::unique_ptr<TelegramAdapter> adapter(
      new TelegramAdapter(config, runtime, journal));
  absl::Status status = adapter->Init();
  if (!status.ok()) return status;
  TelegramAdapter* a = adapter.get();
  runtime->AddReadinessCheck("telegram", [a] { return a->Health(); });
  return adapter;
}

TelegramAdapter::~TelegramAdapter() { Stop(); }

absl::StatusOr<std::vector<std::string>> TelegramAdapter::SendMessage(
    const v1::Delivery& delivery) {
  return outbound_->SendMessage(delivery);
}

absl::Status TelegramAdapter::EditMessage(const v1::Delivery& delivery) {
  return outbound_->EditMessage(delivery);
}

absl::Status TelegramAdapter::DeleteMessage(const v1::Delivery& delivery) {
  return outbound_->DeleteMessage(delivery);
}

absl::StatusOr<std::vector<std::string>> TelegramAdapter::SendMembership(
    const v1::Delivery& delivery) {
  return outbound_->SendMembership(delivery);
}

absl::Status TelegramAdapter::Init() {
  if (!config_.state_dir().empty()) {
    std::error_code ec;
    std::filesystem::create_directories(config_.state_dir(), ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create state_dir ", config_.state_dir(), ": ", ec.message()));
    }
  }
  absl::Status status = aliases_.Load();
  if (!status.ok()) return status;
  for (auto& a : accounts_) {
    if (a->config.mode() != v1::TelegramAccount::WEBHOOK) continue;
    runtime_->http().Handle(
        "POST", a->path,
        absl::bind_front(&TelegramAdapter::HandleWebhook, this, std::ref(*a)),
        JsonBodies());
  }
  return absl::OkStatus();
}

absl::Status TelegramAdapter::Start() {
  for (auto& a : accounts_) {
    const v1::TelegramAccount& c = a->config;
    if (c.mode() == v1::TelegramAccount::WEBHOOK) {
      if (!c.has_set_webhook()) continue;
      const v1::TelegramSetWebhook& s = c.set_webhook();
      json params = {{"url", s.url()}, {"secret_token", c.secret_token()}};
      params["allowed_updates"] =
          s.allowed_updates().empty()
              ? DefaultAllowedUpdates()
              : std::vector<std::string>(s.allowed_updates().begin(),
                                         s.allowed_updates().end());
      if (s.drop_pending_updates()) params["drop_pending_updates"] = true;
      if (s.max_connections() > 0)
        params["max_connections"] = s.max_connections();
      absl::StatusOr<json> r = a->api->Call("setWebhook", params);
      if (!r.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "setWebhook for account ", c.name(), ": ", r.status().message()));
      }
      LogInfo("webhook set", {{"account", c.name()}});
      continue;
    }
    // Polling: getUpdates does not work while a webhook is set.
    absl::StatusOr<json> r =
        a->api->Call("deleteWebhook", json{{"drop_pending_updates", false}});
    if (!r.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "deleteWebhook for account ", c.name(), ": ", r.status().message()));
    }
    Poller::Options options;
    options.account = c.name();
    if (c.polling().timeout_seconds() > 0) {
      options.long_poll = absl::Seconds(c.polling().timeout_seconds());
    }
    if (c.polling().limit() > 0) options.limit = c.polling().limit();
    options.allowed_updates =
        c.polling().allowed_updates().empty()
            ? DefaultAllowedUpdates()
            : std::vector<std::string>(c.polling().allowed_updates().begin(),
                                       c.polling().allowed_updates().end());
    if (c.polling().retry_delay_ms() > 0) {
      options.retry_delay = absl::Milliseconds(c.polling().retry_delay_ms());
    }
    // Resume after the updates the router already has.
    const std::string offset_name =
        absl::StrCat("telegram/polling_offset/", c.name());
    absl::StatusOr<std::optional<std::string>> saved =
        journal_->GetState(offset_name);
    if (!saved.ok()) return saved.status();
    if (saved->has_value() &&
        !absl::SimpleAtoi(**saved, &options.initial_offset)) {
      LogWarn("ignoring an unreadable saved polling offset",
              {{"account", c.name()}});
    }
    DeliveryJournal* journal = journal_;
    options.save_offset = [journal, offset_name](int64_t offset) {
      absl::Status s = journal->PutState(offset_name, absl::StrCat(offset));
      if (!s.ok()) {
        LogWarn("cannot save the polling offset", {{"error", s.ToString()}});
      }
    };
    Account* account = a.get();
    a->poller = std::make_unique<Poller>(
        options, a->api, [this, account](const std::vector<json>& updates) {
          return ProcessPolled(*account, updates);
        });
    a->poller->Start();
    LogInfo("polling started", {{"account", c.name()}});
  }
  return absl::OkStatus();
}

void TelegramAdapter::Stop() {
  // Deliveries waiting for the rate limiter give up (the router sends them
  // again) rather than hold the shutdown.
  if (outbound_ != nullptr) outbound_->Stop();
  for (auto& a : accounts_) {
    if (a->poller != nullptr) a->poller->Stop();
  }
  pipeline_->Stop();
}

absl::Status TelegramAdapter::Health() const {
  for (const auto& a : accounts_) {
    if (a->poller == nullptr) continue;
    absl::Status s = a->poller->health();
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("account ", a->config.name(), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

InboundContext TelegramAdapter::ContextFor(const Account& account) const {
  InboundContext ctx;
  ctx.account = account.config.name();
  ctx.bot_id = account.api->bot_id();
  ctx.max_download_bytes = account.max_download;
  const ChatAliases* aliases = &aliases_;
  std::string name = account.config.name();
  ctx.original_chat_id = [aliases, name](const std::string& chat_id) {
    return aliases->Original(name, chat_id);
  };
  return ctx;
}

void TelegramAdapter::RecordMigration(const Account& account,
                                      const ChatMigration& m) {
  absl::Status s =
      aliases_.Record(account.config.name(), m.old_chat_id, m.new_chat_id);
  LogInfo("telegram group migrated to a supergroup",
          {{"account", account.config.name()},
           {"old_chat", m.old_chat_id},
           {"new_chat", m.new_chat_id}});
  if (!s.ok()) LogWarn("chat alias not saved", {{"reason", s.message()}});
}

void TelegramAdapter::HandleWebhook(Account& account, HttpRequest request,
                                    std::shared_ptr<Responder> responder) {
  if (!VerifySecretToken(account.config.secret_token(),
                         request.Header(kSecretHeader))
           .ok()) {
    runtime_->CountRejection("bad_secret");
    responder->Respond(
        401, "application/json",
        JsonErrorBody("unauthorized", "wrong or missing secret token"));
    return;
  }
  TelegramUpdate raw;
  raw.account = account.config.name();
  raw.update = json::parse(request.body, nullptr, false);
  if (raw.update.is_discarded()) {
    runtime_->CountRejection("bad_json");
    responder->Respond(400, "application/json",
                       JsonErrorBody("bad_json", "the body is not JSON"));
    return;
  }
  absl::Status submitted = pipeline_->Submit<TelegramUpdate>(
      this, std::move(raw), AnswerInboundWhenDone(responder));
  if (!submitted.ok()) AnswerRefusedInbound(*responder, submitted);
}

absl::StatusOr<InboundRoute> TelegramAdapter::Route(const TelegramUpdate& raw) {
  InboundRoute route;
  std::string chat;
  if (raw.update.is_object()) {
    for (const char* kind :
         {"message", "edited_message", "channel_post", "edited_channel_post"}) {
      auto m = raw.update.find(kind);
      if (m == raw.update.end() || !m->is_object()) continue;
      auto c = m->find("chat");
      if (c == m->end() || !c->is_object()) continue;
      auto id = c->find("id");
      if (id != c->end() && id->is_number_integer()) {
        chat = absl::StrCat(id->get<int64_t>());
      }
      break;
    }
    auto id = raw.update.find("update_id");
    if (id != raw.update.end() && id->is_number_integer()) {
      route.key =
          absl::StrCat("telegram:", raw.account, ":", id->get<int64_t>());
    }
  }
  route.chat = absl::StrCat(raw.account, "/", chat);
  return route;
}

absl::StatusOr<InboundConversion> TelegramAdapter::Convert(
    const TelegramUpdate& raw) {
  IMB_ASSIGN_OR_RETURN(
      Account * account,
      accounts_.Get(raw.account, absl::StatusCode::kInvalidArgument));
  absl::StatusOr<InboundUpdate> update =
      TranslateUpdate(raw.update, ContextFor(*account));
  if (!update.ok()) {
    runtime_->CountRejection("bad_update");
    return update.status();
  }
  InboundConversion conversion;
  switch (update->kind) {
    case InboundUpdate::Kind::kUnknown:
      runtime_->CountRejection("unknown_type");
      LogDebug("update ignored",
               {{"account", raw.account}, {"type", update->reason}});
      return conversion;
    case InboundUpdate::Kind::kIgnored:
      return conversion;
    case InboundUpdate::Kind::kMigration:
      RecordMigration(*account, update->migration);
      return conversion;
    case InboundUpdate::Kind::kEvents:
      break;
  }
  conversion.events = std::move(update->events);
  for (const FileToFetch& f : update->files) {
    if (conversion.events.empty() ||
        f.attachment_index >=
            conversion.events[0].posted().attachments_size()) {
      continue;
    }
    if (!f.file_unique_id.empty()) {
      absl::MutexLock lock(&cache_mu_);
      if (const v1::Attachment* copied = file_cache_.Find(f.file_unique_id)) {
        v1::Attachment* a =
            conversion.events[0].mutable_posted()->mutable_attachments(
                f.attachment_index);
        a->set_blob_id(copied->blob_id());
        a->set_size(copied->size());
        continue;
      }
    }
    InboundFile file;
    file.attachment_index = f.attachment_index;
    file.download =
        [this, account, f](
            uint64_t max_bytes,
            const std::function<absl::Status(absl::string_view)>& write) {
          return DownloadFile(*account, f, max_bytes, write);
        };
    if (!f.file_unique_id.empty()) {
      file.stored = [this, id = f.file_unique_id](const v1::Attachment& a) {
        absl::MutexLock lock(&cache_mu_);
        file_cache_.Put(id, a);
      };
    }
    conversion.files.push_back(std::move(file));
  }
  return conversion;
}

absl::Status TelegramAdapter::DownloadFile(
    const Account& account, const FileToFetch& f, uint64_t max_bytes,
    const std::function<absl::Status(absl::string_view)>& write) const {
  const uint64_t limit = std::min(max_bytes, account.max_download);
  const std::string too_big =
      absl::StrCat("larger than the ", FormatSize(account.max_download),
                   " a Telegram bot may download");
  BotApiError error;
  absl::StatusOr<json> file =
      account.api->Call("getFile", json{{"file_id", f.file_id}}, &error);
  if (!file.ok()) {
    if (IsRetryable(file.status())) return file.status();
    return absl::FailedPreconditionError(
        absl::StrContains(error.description, "file is too big")
            ? too_big
            : absl::StrCat("Telegram refused the file: ", error.description));
  }
  std::string path;
  if (auto p = file->find("file_path"); p != file->end() && p->is_string()) {
    path = p->get<std::string>();
  }
  if (auto s = file->find("file_size"); s != file->end() &&
                                        s->is_number_unsigned() &&
                                        s->get<uint64_t>() > limit) {
    return absl::FailedPreconditionError(too_big);
  }
  if (path.empty()) {
    return absl::FailedPreconditionError("Telegram gave no download path");
  }
  absl::StatusOr<std::string> bytes = account.api->DownloadFile(path, limit);
  if (!bytes.ok()) {
    if (absl::IsOutOfRange(bytes.status())) {
      return absl::FailedPreconditionError(too_big);
    }
    return bytes.status();
  }
  return write(*bytes);
}

size_t TelegramAdapter::ProcessPolled(Account& account,
                                      const std::vector<json>& updates) {
  auto batch = std::make_shared<PolledBatch>(account.config.name(),
                                             "malformed update skipped");
  for (const json& u : updates) {
    if (account.poller->stopping()) break;
    const size_t index = batch->Add();
    TelegramUpdate raw;
    raw.account = account.config.name();
    raw.update = u;
    absl::StatusOr<InboundRoute> route = Route(raw);
    auto shared = std::make_shared<TelegramUpdate>(std::move(raw));
    InboundPipeline::DoneCallback done = batch->Done(index);
    // A full pipeline pauses polling until there is room.
    absl::Status submitted;
    while (true) {
      submitted = pipeline_->Submit(
          *route, [this, shared] { return Convert(*shared); }, done);
      if (submitted.code() != absl::StatusCode::kResourceExhausted ||
          account.poller->stopping()) {
        break;
      }
      pipeline_->WaitForRoom(route->chat, absl::Milliseconds(200));
    }
    if (!submitted.ok()) {
      batch->FetchAgain(index);
      break;
    }
  }
  // Wait for the router's acknowledgements (or the stop).
  return batch->AwaitDone([&account] { return account.poller->stopping(); });
}

}  // namespace imbridge::adapters::telegram
