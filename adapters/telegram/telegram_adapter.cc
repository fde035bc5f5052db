#include "adapters/telegram/telegram_adapter.h"

#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/common/signature.h"
#include "common/config_loader.h"
#include "common/logging.h"

namespace imbridge::adapters::telegram {

using nlohmann::json;

namespace {

constexpr char kDefaultApiBase[] = "https://api.telegram.org";
constexpr char kSecretHeader[] = "X-Telegram-Bot-Api-Secret-Token";
constexpr uint64_t kDefaultMaxDownload = 20ull << 20;
constexpr uint64_t kDefaultMaxUpload = 50ull << 20;
constexpr size_t kFileCacheSize = 1024;

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

bool IsAccountName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
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

bool IsHttpUrl(absl::string_view url) {
  return absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://");
}

std::string JsonError(absl::string_view code, absl::string_view message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

}  // namespace

absl::Status ValidateTelegramConfig(absl::string_view source,
                                    const v1::TelegramAdapterConfig& config) {
  absl::Status status = ValidateAdapterBasics(
      source, config.router(), config.http(), config.log_level());
  if (!status.ok()) return status;
  if (config.accounts().empty()) {
    return ConfigError(source, "accounts", "at least one account is required");
  }
  absl::flat_hash_map<std::string, int> names, paths;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const v1::TelegramAccount& a = config.accounts(i);
    const std::string at = absl::StrCat("accounts[", i, "]");
    if (!IsAccountName(a.name())) {
      return ConfigError(source, at + ".name",
                         "required: 1-64 characters of a-z, 0-9, _ and -");
    }
    if (!names.emplace(a.name(), i).second) {
      return ConfigError(source, at + ".name",
                         absl::StrCat("'", a.name(), "' is used twice"));
    }
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
      if (!paths.emplace(path, i).second) {
        return ConfigError(source, at + ".webhook_path",
                           absl::StrCat("'", path, "' is used twice"));
      }
      if (a.has_set_webhook()) {
        if (!IsHttpUrl(a.set_webhook().url())) {
          return ConfigError(
              source, at + ".set_webhook.url",
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
  }
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

AdapterIdentity TelegramIdentity(const v1::TelegramAdapterConfig& config) {
  AdapterIdentity id;
  id.platform = "telegram";
  for (const v1::TelegramAccount& a : config.accounts()) {
    id.accounts.push_back(a.name());
  }
  id.capabilities = {"edits", "deletes", "files", "threads", "membership"};
  id.default_port = kDefaultPort;
  return id;
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
      http_(MessengerClientOptions("telegram")),
      aliases_(config.state_dir().empty()
                   ? std::string()
                   : (std::filesystem::path(config.state_dir()) /
                      "chat_aliases.json")
                         .string()) {
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
    a->api = std::make_shared<BotApi>(api, &http_);
    if (c.max_download_bytes() > 0) a->max_download = c.max_download_bytes();
    OutboundAccount o;
    o.name = c.name();
    o.api = a->api.get();
    o.sender_style = c.sender_style() == "own_line" ? SenderStyle::kOwnLine
                                                    : SenderStyle::kInline;
    o.max_upload_bytes =
        c.max_upload_bytes() > 0 ? c.max_upload_bytes() : kDefaultMaxUpload;
    outbound.push_back(o);
    accounts_.push_back(std::move(a));
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
  downloads_ = std::make_unique<Executor>(
      config.download_threads() > 0
          ? static_cast<int>(config.download_threads())
          : 4);
}

TelegramAdapter::~TelegramAdapter() { Stop(); }

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
    Account* account = a.get();
    runtime_->http().Handle(
        "POST", a->path,
        [this, account](HttpRequest request, std::shared_ptr<Responder> r) {
          HandleWebhook(*account, std::move(request), std::move(r));
        });
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
  for (auto& a : accounts_) {
    if (a->poller != nullptr) a->poller->Stop();
  }
  downloads_.reset();  // Runs the downloads already posted, then joins.
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
        JsonError("unauthorized", "wrong or missing secret token"));
    return;
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) {
    runtime_->CountRejection("bad_json");
    responder->Respond(400, "application/json",
                       JsonError("bad_json", "the body is not JSON"));
    return;
  }
  absl::StatusOr<InboundUpdate> update =
      TranslateUpdate(body, ContextFor(account));
  if (!update.ok()) {
    runtime_->CountRejection("bad_update");
    responder->Respond(400, "application/json",
                       JsonError("bad_update", update.status().message()));
    return;
  }
  switch (update->kind) {
    case InboundUpdate::Kind::kUnknown:
      runtime_->CountRejection("unknown_type");
      LogDebug("update ignored",
               {{"account", account.config.name()}, {"type", update->reason}});
      responder->Respond(200, "application/json", "{}");
      return;
    case InboundUpdate::Kind::kIgnored:
      responder->Respond(200, "application/json", "{}");
      return;
    case InboundUpdate::Kind::kMigration:
      // Writes a small file; rare enough to do here.
      RecordMigration(account, update->migration);
      responder->Respond(200, "application/json", "{}");
      return;
    case InboundUpdate::Kind::kEvents:
      break;
  }
  auto publish = [this, responder](std::vector<v1::Event> events) {
    if (events.size() == 1) {
      runtime_->PublishAndRespond(std::move(events.front()), responder);
      return;
    }
    PublishAll(std::move(events), [responder](bool ok, std::string detail) {
      if (ok) {
        responder->Respond(200, "application/json", "{}");
      } else {
        responder->Respond(500, "application/json",
                           JsonError("not_stored", detail));
      }
    });
  };
  if (update->files.empty()) {
    publish(std::move(update->events));
    return;
  }
  auto shared = std::make_shared<InboundUpdate>(std::move(*update));
  Account* a = &account;
  downloads_->Post([this, a, shared, responder, publish]() {
    absl::Status status = FetchFiles(*a, *shared);
    if (!status.ok()) {
      LogWarn("file not copied; Telegram will retry the update",
              {{"account", a->config.name()}, {"error", status.message()}});
      responder->Respond(503, "application/json",
                         JsonError("file_unavailable", status.message()));
      return;
    }
    publish(std::move(shared->events));
  });
}

absl::Status TelegramAdapter::FetchFiles(Account& account,
                                         InboundUpdate& update) {
  if (update.events.empty()) return absl::OkStatus();
  v1::MessagePosted* posted = update.events.front().mutable_posted();
  for (const FileToFetch& f : update.files) {
    if (f.attachment_index >= posted->attachments_size()) continue;
    v1::Attachment* a = posted->mutable_attachments(f.attachment_index);
    if (!f.file_unique_id.empty()) {
      absl::MutexLock lock(&cache_mu_);
      auto it = file_cache_.find(f.file_unique_id);
      if (it != file_cache_.end()) {
        a->set_blob_id(it->second.blob_id());
        a->set_size(it->second.size());
        continue;
      }
    }
    BotApiError error;
    absl::StatusOr<json> file =
        account.api->Call("getFile", json{{"file_id", f.file_id}}, &error);
    if (!file.ok()) {
      if (IsRetryable(file.status())) return file.status();
      a->set_unavailable_reason(
          absl::StrContains(error.description, "file is too big")
              ? absl::StrCat("larger than the ",
                             FormatSize(account.max_download),
                             " a Telegram bot may download")
              : absl::StrCat("Telegram refused the file: ", error.description));
      continue;
    }
    std::string path;
    if (auto p = file->find("file_path"); p != file->end() && p->is_string()) {
      path = p->get<std::string>();
    }
    if (auto s = file->find("file_size");
        s != file->end() && s->is_number_unsigned()) {
      a->set_size(s->get<uint64_t>());
    }
    if (a->size() > account.max_download) {
      a->set_unavailable_reason(absl::StrCat("larger than the ",
                                             FormatSize(account.max_download),
                                             " a Telegram bot may download"));
      continue;
    }
    if (path.empty()) {
      a->set_unavailable_reason("Telegram gave no download path");
      continue;
    }
    absl::StatusOr<std::string> bytes =
        account.api->DownloadFile(path, account.max_download);
    if (!bytes.ok()) {
      if (absl::IsOutOfRange(bytes.status())) {
        a->set_unavailable_reason(absl::StrCat("larger than the ",
                                               FormatSize(account.max_download),
                                               " a Telegram bot may download"));
        continue;
      }
      return bytes.status();
    }
    v1::BlobMeta meta;
    meta.set_name(a->name());
    meta.set_mime_type(a->mime_type());
    meta.set_size(bytes->size());
    absl::StatusOr<v1::BlobRef> ref = runtime_->router().PutBlob(meta, *bytes);
    if (!ref.ok()) return ref.status();
    a->set_blob_id(ref->blob_id());
    a->set_size(ref->size());
    if (!f.file_unique_id.empty()) {
      absl::MutexLock lock(&cache_mu_);
      if (file_cache_order_.size() >= kFileCacheSize) {
        file_cache_.erase(file_cache_order_.front());
        file_cache_order_.pop_front();
      }
      if (file_cache_.emplace(f.file_unique_id, *a).second) {
        file_cache_order_.push_back(f.file_unique_id);
      }
    }
  }
  return absl::OkStatus();
}

void TelegramAdapter::PublishAll(
    std::vector<v1::Event> events,
    std::function<void(bool ok, std::string detail)> done) {
  struct State {
    absl::Mutex mu;
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
    bool ok ABSL_GUARDED_BY(mu) = true;
    std::string detail ABSL_GUARDED_BY(mu);
    std::function<void(bool, std::string)> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  {
    absl::MutexLock lock(&state->mu);
    state->remaining = events.size();
  }
  auto finish_one = [state](bool ok, absl::string_view detail) {
    bool last = false;
    bool all_ok = false;
    std::string why;
    {
      absl::MutexLock lock(&state->mu);
      if (!ok && state->ok) {
        state->ok = false;
        state->detail = std::string(detail);
      }
      last = --state->remaining == 0;
      all_ok = state->ok;
      why = state->detail;
    }
    if (last) state->done(all_ok, why);
  };
  if (events.empty()) {
    state->done(true, "");
    return;
  }
  for (v1::Event& e : events) {
    absl::Status s = runtime_->Publish(
        std::move(e), [finish_one](const v1::PublishAck& ack) {
          bool ok = ack.outcome() == v1::PublishAck::ACCEPTED ||
                    ack.outcome() == v1::PublishAck::DUPLICATE ||
                    ack.outcome() == v1::PublishAck::DROPPED;
          finish_one(ok, ack.detail());
        });
    if (!s.ok()) finish_one(false, s.message());
  }
}

size_t TelegramAdapter::ProcessPolled(Account& account,
                                      const std::vector<json>& updates) {
  // 0 pending, 1 acknowledged, 2 failed; one entry per update handled.
  struct Results {
    absl::Mutex mu;
    std::vector<int> state ABSL_GUARDED_BY(mu);
  };
  auto results = std::make_shared<Results>();
  const InboundContext ctx = ContextFor(account);
  for (const json& u : updates) {
    if (account.poller->stopping()) break;
    size_t index = 0;
    {
      absl::MutexLock lock(&results->mu);
      index = results->state.size();
      results->state.push_back(0);
    }
    auto set = [results, index](int value) {
      absl::MutexLock lock(&results->mu);
      results->state[index] = value;
    };
    absl::StatusOr<InboundUpdate> update = TranslateUpdate(u, ctx);
    if (!update.ok()) {
      LogWarn("malformed update skipped",
              {{"account", account.config.name()},
               {"error", update.status().message()}});
      set(1);
      continue;
    }
    if (update->kind == InboundUpdate::Kind::kUnknown) {
      runtime_->CountRejection("unknown_type");
      set(1);
      continue;
    }
    if (update->kind == InboundUpdate::Kind::kMigration) {
      RecordMigration(account, update->migration);
    }
    if (update->kind != InboundUpdate::Kind::kEvents) {
      set(1);
      continue;
    }
    absl::Status fetched = FetchFiles(account, *update);
    if (!fetched.ok()) {
      LogWarn(
          "file not copied; the update will be fetched again",
          {{"account", account.config.name()}, {"error", fetched.message()}});
      set(2);
      break;  // Later updates wait, to keep the order.
    }
    PublishAll(std::move(update->events),
               [set](bool ok, const std::string&) { set(ok ? 1 : 2); });
  }
  // Wait for the router's acknowledgements (or the stop).
  absl::MutexLock lock(&results->mu);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(results->mu) {
    for (int s : results->state) {
      if (s == 0) return false;
    }
    return true;
  };
  while (!settled()) {
    results->mu.AwaitWithTimeout(
        absl::Condition(
            +[](Results* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu) {
              for (int s : r->state) {
                if (s == 0) return false;
              }
              return true;
            },
            results.get()),
        absl::Milliseconds(200));
    if (account.poller->stopping()) break;
  }
  size_t done = 0;
  while (done < results->state.size() && results->state[done] == 1) ++done;
  return done;
}

}  // namespace imbridge::adapters::telegram
