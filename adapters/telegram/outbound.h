#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_OUTBOUND_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_OUTBOUND_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/delivery_journal.h"
#include "adapters/common/stop_signal.h"
#include "adapters/telegram/chat_aliases.h"
#include "adapters/telegram/format.h"
#include "adapters/telegram/rate_limiter.h"
#include "adapters/telegram/telegram_api.h"
#include "nlohmann/json.hpp"

namespace imbridge::adapters::telegram {

// What a send left open by a crash becomes (docs/telegram.md,
// `open_send_policy`).
enum class OpenSendPolicy {
  // Sent again: nothing is lost; a message Telegram had received before the
  // crash shows twice.
  kAtLeastOnce,
  // Taken as sent, with a warning: nothing shows twice; a message Telegram
  // had not received before the crash is lost.
  kAtMostOnce,
};

// One bot account as the outbound side sees it.
struct OutboundAccount {
  std::string name;
  // Must outlive the Outbound.
  const BotApi* api = nullptr;
  SenderStyle sender_style = SenderStyle::kInline;
  // Files larger than this are sent as a notice with name and size.
  uint64_t max_upload_bytes = 50ull << 20;
};

// Renders the router's deliveries with Bot API calls.
//
// - Posted: sendMessage with `entities` built from the rich text, the
//   sender's name in bold before the text, split into parts of at most
//   4,096 UTF-16 code units (the name repeated in each); replies with
//   `reply_parameters` (to the replied message, else the thread root), forum
//   topics with `message_thread_id`. Files are uploaded (multipart) with
//   sendDocument/sendPhoto/sendVideo/sendAudio/sendVoice/sendAnimation/
//   sendSticker; consecutive attachments sharing a group id are sent as one
//   album (sendMediaGroup); the text becomes the first file's caption when
//   it fits in 1,024 code units, else it is sent first as its own message.
//   Files without bytes or over the upload limit become an italic notice
//   with name and size. Returns every created message id, in order.
// - Edited: editMessageText of the copy's parts with the new text's parts
//   (editMessageCaption when the copy is a file with a caption); parts the
//   new text no longer needs keep their text, and text that needs more
//   parts than the copy has is cut with "…".
// - Deleted: deleteMessage of every part; a message Telegram refuses to
//   delete (older than 48 h, or not the bot's) is a permanent error with
//   Telegram's reason; one that is already gone counts as deleted.
// - Membership: an italic notice "<name> joined/left the chat".
//
// Every call first takes a token from the RateLimiter (waiting up to its
// max_wait, else answering retryable; a wait that Stop() ends is retryable
// too, and its call is not made). Errors: 429 with the retry_after
// Telegram asked for, 5xx and timeouts are retryable; other 4xx are
// permanent with Telegram's description. A send answered with
// `migrate_to_chat_id` records the alias and is repeated on the new chat.
//
// Posts and membership notices go through the DeliveryJournal, one step per
// Bot API send: a retried or re-sent delivery continues after the messages
// already sent, also after a restart. A send left open by a crash (intent
// recorded, no answer) cannot be looked up (the Bot API cannot list a
// chat's messages), so the OpenSendPolicy decides.
//
// The methods are the TelegramAdapter's connector interfaces
// (adapters/common/connector.h) for one account each; the adapter forwards
// to them. A delivery to an account not configured is a permanent error.
//
// Thread-safe: the methods run concurrently for different targets.
class Outbound {
 public:
  // Reads a blob of the router's store into memory, refusing more than
  // `max_bytes` bytes.
  using BlobReader = std::function<absl::StatusOr<std::string>(
      const std::string& blob_id, uint64_t max_bytes)>;

  // `aliases`, `limiter` and `journal` must outlive the Outbound.
  Outbound(std::vector<OutboundAccount> accounts, ChatAliases* aliases,
           RateLimiter* limiter, BlobReader blobs, DeliveryJournal* journal,
           OpenSendPolicy policy);

  // Posted: returns every created message id, in order.
  absl::StatusOr<std::vector<std::string>> SendMessage(
      const v1::Delivery& delivery);
  // Edited.
  absl::Status EditMessage(const v1::Delivery& delivery);
  // Deleted.
  absl::Status DeleteMessage(const v1::Delivery& delivery);
  // Membership: returns the notice's message id.
  absl::StatusOr<std::vector<std::string>> SendMembership(
      const v1::Delivery& delivery);

  // Ends the rate limiter's waits in progress and makes every later call
  // that would wait fail at once: the adapter is stopping. Calls already
  // made run to their end.
  void Stop() { stopping_.Stop(); }

 private:
  struct Target;
  // The chat `delivery` goes to (its account's, under the chat's current
  // id); kFailedPrecondition for an account not configured.
  absl::StatusOr<Target> TargetOf(const v1::Delivery& delivery) const;
  // One Bot API call of a delivery; returns the ids of the messages it
  // created.
  using Step = std::function<absl::StatusOr<std::vector<std::string>>(Target&)>;

  absl::StatusOr<std::vector<std::string>> Posted(const v1::Delivery& d,
                                                  Target& target);
  absl::Status Edited(const v1::Delivery& d, Target& target);
  absl::Status Deleted(const v1::Delivery& d, Target& target);
  absl::StatusOr<std::vector<std::string>> Membership(const v1::Delivery& d,
                                                      Target& target);

  // Runs `steps` in order through the journal, skipping those an earlier
  // attempt of the same delivery completed.
  absl::StatusOr<std::vector<std::string>> RunSteps(
      const v1::Delivery& d, Target& target, const std::vector<Step>& steps);

  // Calls `method` on the target chat (chat_id and message_thread_id added
  // by `make`), after the rate limiter; repeats once on a migrated chat.
  absl::StatusOr<nlohmann::json> Call(
      Target& target, const std::string& method,
      const std::function<nlohmann::json(const std::string& chat_id)>& make,
      BotApiError* error = nullptr);
  absl::StatusOr<nlohmann::json> CallMultipart(
      Target& target, const std::string& method,
      const std::function<std::vector<MultipartPart>(const std::string&)>&
          make);
  absl::Status TakeToken(Target& target);

  const absl::flat_hash_map<std::string, OutboundAccount> accounts_;
  ChatAliases* const aliases_;
  RateLimiter* const limiter_;
  const BlobReader blobs_;
  DeliveryJournal* const journal_;
  const OpenSendPolicy policy_;
  StopSignal stopping_;
};

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_OUTBOUND_H_
