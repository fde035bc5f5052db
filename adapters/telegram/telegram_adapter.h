#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_ADAPTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/bounded_cache.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/telegram/chat_aliases.h"
#include "adapters/telegram/inbound.h"
#include "adapters/telegram/outbound.h"
#include "adapters/telegram/poller.h"
#include "adapters/telegram/rate_limiter.h"
#include "adapters/telegram/telegram_api.h"
#include "common/http/http_client.h"
#include "imbridge/v1/telegram_config.pb.h"

namespace imbridge::adapters::telegram {

// One update as it came from Telegram (webhook or getUpdates), for the
// account `account` names: the inbound pipeline's raw input.
struct TelegramUpdate {
  std::string account;
  nlohmann::json update;
};

// The adapter's default HTTP port.
inline constexpr uint16_t kDefaultPort = 7713;

// Checks a loaded config beyond what the schema says: accounts present and
// uniquely named, tokens and (webhook mode) secret tokens set and well
// formed, webhook paths unique, URLs and limits sane. Returns
// ConfigError(source, "field.path", reason) for the first problem.
absl::Status ValidateTelegramConfig(absl::string_view source,
                                    const v1::TelegramAdapterConfig& config);

// The binary: imbridge-adapter-telegram, platform "telegram", port 7713,
// built by TelegramAdapter::Create (for RunAdapter).
AdapterProgram<v1::TelegramAdapterConfig> TelegramProgram();

// The Telegram adapter: one process serving several bot accounts.
//
// Inbound, per account, either a webhook route (secret token checked in
// constant time: 401; body over the limit: 413 by the server; malformed
// JSON: 400) or a Poller, both handing updates to the InboundPipeline (one
// lane per chat: a message waiting for its file is never overtaken by the
// next update of its chat). The adapter is the pipeline's connector: an
// update becomes events (inbound.h), or nothing (unknown types: counted;
// chat migrations: recorded in ChatAliases); its files are fetched
// (getFile, download, PutBlob) by the pipeline and remembered by
// file_unique_id so that a retried update does not download them again; the
// events are published with key "telegram:<account>:<update_id>". A webhook
// is answered 200 only after the router acknowledged them (400 for an
// update that cannot be translated, 503 when it should be retried or the
// pipeline is full, 500 when the router refused it). A poller advances its
// offset only past updates the router acknowledged, and pauses while the
// pipeline is full.
//
// Outbound: the connector interfaces (adapters/common/connector.h) it
// implements (messages, edits, deletes, threads as forum topics, files,
// membership notices; Telegram has no presence to show) render through an
// Outbound (outbound.h).
//
// Readiness: /readyz check "telegram", OK while every poller's last
// getUpdates succeeded.
//
// Threading: Create() from the main thread before the runtime starts;
// Start() and Stop() are called by the runtime. Webhook handlers run on
// HTTP threads and do not block; the rendering methods as connector.h says.
class TelegramAdapter : public MessengerConnector<TelegramUpdate>,
                        public MessageEditor,
                        public MessageDeleter,
                        public ThreadedMessages,
                        public FileMessages,
                        public MembershipRenderer {
 public:
  // Builds the adapter, loads the chat aliases and registers the webhook
  // routes and the readiness check on `runtime`. `config` must be valid
  // (ValidateTelegramConfig); `runtime` and `journal` (where deliveries,
  // polling offsets and aliases are recorded) must outlive the adapter.
  // Fails when the state_dir cannot be created or the aliases not read.
  static absl::StatusOr<std::unique_ptr<TelegramAdapter>> Create(
      const v1::TelegramAdapterConfig& config, AdapterRuntime* runtime,
      DeliveryJournal* journal);
  ~TelegramAdapter() override;

  TelegramAdapter(const TelegramAdapter&) = delete;
  TelegramAdapter& operator=(const TelegramAdapter&) = delete;

  // Connector.
  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  // Once the runtime started: calls setWebhook for accounts that ask for it
  // and deleteWebhook + starts polling for polling accounts. Fails when a
  // setWebhook/deleteWebhook call fails (the process should exit).
  absl::Status Start() override;
  // Stops the pollers and the inbound pipeline (updates in progress finish,
  // queued ones are handed back). Idempotent.
  void Stop() override;

  // The optional interfaces.
  absl::Status EditMessage(const v1::Delivery& delivery) override;
  absl::Status DeleteMessage(const v1::Delivery& delivery) override;
  absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery) override;

  // OK while every poller's last getUpdates succeeded.
  absl::Status Health() const;

 private:
  struct Account;

  TelegramAdapter(const v1::TelegramAdapterConfig& config,
                  AdapterRuntime* runtime, DeliveryJournal* journal);
  // Loads the chat aliases and registers the webhook routes.
  absl::Status Init();

  void HandleWebhook(Account& account, HttpRequest request,
                     std::shared_ptr<Responder> responder);

  // InboundConnector: the lane is the account's chat, the key the update.
  absl::StatusOr<InboundRoute> Route(const TelegramUpdate& raw) override;
  absl::StatusOr<InboundConversion> Convert(const TelegramUpdate& raw) override;

  // The download of one file: getFile, then the file itself.
  absl::Status DownloadFile(
      const Account& account, const FileToFetch& file, uint64_t max_bytes,
      const std::function<absl::Status(absl::string_view)>& write) const;

  // The poller's processor: hands the updates to the pipeline in order and
  // waits for their results; returns how many from the front were
  // acknowledged.
  size_t ProcessPolled(Account& account,
                       const std::vector<nlohmann::json>& updates);

  // Records a migration; logs failures.
  void RecordMigration(const Account& account, const ChatMigration& m);

  InboundContext ContextFor(const Account& account) const;

  const v1::TelegramAdapterConfig config_;
  AdapterRuntime* const runtime_;
  DeliveryJournal* const journal_;
  RuntimeInboundRouter inbound_router_;
  // Shared with the BotApis, which a poller's detached thread may keep
  // after the adapter is gone (poller.h).
  std::shared_ptr<HttpClient> http_;
  ChatAliases aliases_;
  std::unique_ptr<RateLimiter> limiter_;
  AccountSet<Account> accounts_;
  std::unique_ptr<Outbound> outbound_;
  std::unique_ptr<InboundPipeline> pipeline_;

  // Files already copied, by file_unique_id.
  static constexpr size_t kFileCacheSize = 1024;
  absl::Mutex cache_mu_;
  BoundedCache<std::string, v1::Attachment> file_cache_
      ABSL_GUARDED_BY(cache_mu_){kFileCacheSize};
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_TELEGRAM_ADAPTER_H_
