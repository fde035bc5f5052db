#ifndef IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_ADAPTER_H_
#define IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/bitrix24/bitrix24_api.h"
#include "adapters/common/account_set.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/connector.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/inbound_pipeline.h"
#include "adapters/common/stop_signal.h"
#include "common/http/http_client.h"
#include "imbridge/v1/bitrix24_config.pb.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::bitrix24 {

inline constexpr uint16_t kDefaultPort = 7715;

// One event fetched with imbot.v2.Event.get for one account.
struct Bitrix24Event {
  std::string account;
  nlohmann::json event;  // {eventId, type, date, data}
};

// Checks a loaded config. With `registering`, accounts need no bot_id.
absl::Status ValidateBitrix24Config(absl::string_view source,
                                    const v1::Bitrix24AdapterConfig& config,
                                    bool registering = false);

// The binary: imbridge-adapter-bitrix24, platform "bitrix24", port 7715,
// the Bitrix24Connector, and the `--register` command (RegisterBots) for
// RunAdapter.
AdapterProgram<v1::Bitrix24AdapterConfig> Bitrix24Program();

// The REST client options of `account` (credentials, pacing).
RestClient::Options ClientOptions(const v1::Bitrix24Account& account);

// `--register`: registers each account's bot as type supervisor in fetch
// mode, or finds the one already registered with its code; prints
// "<account>: bot_id <id>" per account to stdout. Returns the exit code.
int RegisterBots(const v1::Bitrix24AdapterConfig& config);

// The Bitrix24 connector (docs/bitrix24.md): Chatbots 2.0 bots in portal
// chats, mirrored both ways.
//
// Inbound (fetch mode): one thread per account calls imbot.v2.Event.get,
// hands the events to the InboundPipeline and advances the offset (saved in
// the delivery journal as "bitrix24/offset/<account>") only past events the
// router acknowledged, so that a crash re-fetches, never skips (the router
// drops the repeats by their key "bitrix24:<account>:<eventId>"). Polls
// every poll_active_ms while events come, doubling up to poll_idle_ms when
// idle. ONIMBOTV2MESSAGEADD / UPDATE / DELETE become posted / edited /
// deleted (BB-code to rich text, replyId as the reply, files copied via
// imbot.v2.File.download); ONIMBOTV2CHATUSERADD / DELETE become membership
// events. Messages written by the account's bot (its own and the bridge's
// copies) are dropped, and so are deletes of the bridge's copies (their ids
// looked up in the delivery journal, so this holds across restarts); other
// event types are ignored and counted.
//
// Outbound: imbot.v2.Chat.Message.send with the sender's name and the text
// as BB-code, split at 20,000 characters, the reply as replyId (the parts
// and the notices of unavailable files as one `batch` request); files by
// imbot.v2.File.upload (base64, up to 100 MB, else a notice; a one-part
// text that is no reply rides on the first upload); edits update
// every text part of the copy (their number kept in the journal's state for
// copies of several parts, pruned with the delivery's record), deletes
// remove every message (each in one `batch` request). Each delivery's
// steps go through the DeliveryJournal; a send left open by a crash is made
// again (at least once).
//
// Threading: see connector.h; the pollers run on their own threads.
class Bitrix24Connector : public MessengerConnector<Bitrix24Event>,
                          public MessageEditor,
                          public MessageDeleter,
                          public FileMessages {
 public:
  Bitrix24Connector(const v1::Bitrix24AdapterConfig& config,
                    AdapterRuntime* runtime, DeliveryJournal* journal);
  ~Bitrix24Connector() override;

  // Loads saved tokens; registers the readiness check.
  absl::Status Init();

  std::vector<std::string> Accounts() const override {
    return accounts_.names();
  }
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery) override;
  absl::Status EditMessage(const v1::Delivery& delivery) override;
  absl::Status DeleteMessage(const v1::Delivery& delivery) override;
  absl::Status Start() override;
  void Stop() override;

  absl::StatusOr<InboundRoute> Route(const Bitrix24Event& raw) override;
  absl::StatusOr<InboundConversion> Convert(const Bitrix24Event& raw) override;

 private:
  struct Account {
    v1::Bitrix24Account config;
    std::unique_ptr<RestClient> api;
    std::thread poller;
  };

  // Adds botId (and botToken) to `params`.
  nlohmann::json BotParams(const Account& account, nlohmann::json params) const;
  void PollLoop(Account* account);
  // Webhook mode: one POST of Bitrix24 for `account`.
  void HandleWebhook(Account* account, HttpRequest request,
                     std::shared_ptr<Responder> responder);
  // Hands `events` to the pipeline; returns how many from the front the
  // router acknowledged (or that are invalid and skipped).
  size_t ProcessBatch(Account* account, const nlohmann::json& events);
  // Sends text messages (Chat.Message.send commands, at most a batch's
  // worth) in one request: a batch that stops at the first failure, whose
  // parts already made are then deleted (the journal makes the step again
  // whole). Returns the messages' ids in order.
  absl::StatusOr<std::vector<std::string>> SendTexts(
      Account* account, const std::vector<RestClient::Command>& sends);
  // Makes `commands` (updates and deletes) in batches, every one even when
  // another fails; OK when each worked or found its message gone
  // (MESSAGE_NOT_FOUND), else the first other error.
  absl::Status RunAll(Account* account,
                      const std::vector<RestClient::Command>& commands);
  absl::Status Health() const;

  const v1::Bitrix24AdapterConfig config_;
  AdapterRuntime* const runtime_;
  DeliveryJournal* const journal_;
  HttpClient http_;
  RuntimeInboundRouter inbound_router_;
  std::unique_ptr<InboundPipeline> pipeline_;
  AccountSet<Account> accounts_{"Bitrix24"};
  StopSignal stopping_;
};

}  // namespace imbridge::adapters::bitrix24

#endif  // IMBRIDGE_ADAPTERS_BITRIX24_BITRIX24_ADAPTER_H_
