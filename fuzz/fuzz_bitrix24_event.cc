// Fuzzes the Bitrix24 adapter's event conversion: one event as
// imbot.v2.Event.get returns it ({eventId, type, date, data}, the body of a
// webhook POST becomes the same shape), routed (Bitrix24Connector::Route)
// and converted (Bitrix24Connector::Convert: messages added, updated and
// deleted, chat members added and removed, BB-code text, replies, files) by
// a real connector with one account (bot 7) and an in-memory delivery
// journal that knows the bridge's copy "777" in dialog "chat5". Nothing is
// sent: the connector is not started, and the files' downloads are not
// called.
//
// Properties: an event is routed with the key "<account>:<eventId>" or
// refused as invalid (and then not converted, as in the pipeline); every
// event converted has the key "bitrix24:<account>:<eventId>", the account's
// channel, every field UTF-8 and its spans in range; each file names an
// attachment of its event, one file per attachment; the bot's own messages
// and deletes of the bridge's copies are never mirrored.
#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/bitrix24/bitrix24_adapter.h"
#include "adapters/common/adapter_runtime.h"
#include "adapters/common/delivery_journal.h"
#include "common/utf8.h"
#include "fuzz/fuzz_support.h"
#include "imbridge/v1/bitrix24_config.pb.h"
#include "nlohmann/json.hpp"

namespace {

namespace bitrix24 = imbridge::adapters::bitrix24;
using imbridge::adapters::DeliveryJournal;
using imbridge::fuzz::Check;
using nlohmann::json;

constexpr char kAccount[] = "portal";
constexpr int64_t kBotId = 7;

struct Adapter {
  std::unique_ptr<imbridge::adapters::AdapterRuntime> runtime;
  std::unique_ptr<DeliveryJournal> journal;
  std::unique_ptr<bitrix24::Bitrix24Connector> connector;
};

Adapter* TheAdapter() {
  static Adapter* adapter = [] {
    auto* a = new Adapter;
    imbridge::v1::Bitrix24AdapterConfig config;
    imbridge::v1::Bitrix24Account* account = config.add_accounts();
    account->set_name(kAccount);
    account->set_webhook_url("http://127.0.0.1:9/rest/1/token/");
    account->set_bot_id(kBotId);
    a->runtime = std::make_unique<imbridge::adapters::AdapterRuntime>(
        config.router(), config.http(), bitrix24::Bitrix24Program().identity);
    // The runtime blocks SIGINT and SIGTERM for its own Run(), which is not
    // called here: let libFuzzer have them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    absl::StatusOr<std::unique_ptr<DeliveryJournal>> journal =
        DeliveryJournal::Open(DeliveryJournal::Options{});
    Check(journal.ok(), "the in-memory journal opens");
    a->journal = std::move(*journal);
    // A copy the bridge made: message 777 in dialog chat5.
    const std::string target = absl::StrCat(kAccount, "/chat5");
    Check(a->journal->RecordIntent("copy", target, 0).ok() &&
              a->journal->RecordResult("copy", 0, {"777"}).ok(),
          "the journal records the copy");
    a->connector = std::make_unique<bitrix24::Bitrix24Connector>(
        config, a->runtime.get(), a->journal.get());
    return a;
  }();
  return adapter;
}

// Whether `j` has the id `id` (as a number or a string) as `name`.
bool HasId(const json& j, const char* name, int64_t id) {
  if (!j.is_object()) return false;
  auto it = j.find(name);
  if (it == j.end()) return false;
  return (it->is_number_integer() && it->get<int64_t>() == id) ||
         (it->is_string() && it->get<std::string>() == absl::StrCat(id));
}

const json* Member(const json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json event = json::parse(data, data + size, nullptr,
                           /*allow_exceptions=*/false);
  if (event.is_discarded()) return 0;
  Adapter* adapter = TheAdapter();
  const bitrix24::Bitrix24Event raw{kAccount, event};

  absl::StatusOr<imbridge::adapters::InboundRoute> route =
      adapter->connector->Route(raw);
  if (route.ok()) {
    Check(absl::StartsWith(route->key, absl::StrCat(kAccount, ":")) &&
              route->key.size() > sizeof(kAccount),
          "the route's key is <account>:<eventId>, the id not empty");
  } else {
    // The pipeline converts only what it could route.
    Check(absl::IsInvalidArgument(route.status()),
          "an event without an eventId is refused");
    return 0;
  }

  absl::StatusOr<imbridge::adapters::InboundConversion> conversion =
      adapter->connector->Convert(raw);
  if (!conversion.ok()) {
    Check(absl::IsInvalidArgument(conversion.status()),
          "a refused event is kInvalidArgument");
    return 0;
  }
  Check(conversion->events.size() <= 1, "one event at most");
  for (const imbridge::v1::Event& e : conversion->events) {
    Check(e.key() == absl::StrCat("bitrix24:", route->key),
          "the key is bitrix24:<account>:<eventId>");
    Check(e.channel().platform() == "bitrix24" &&
              e.channel().account() == kAccount,
          "the event is in the account's channel");
    Check(imbridge::FindInvalidUtf8Field(e).empty(),
          "every field of the event is UTF-8");
    if (e.has_posted()) {
      imbridge::fuzz::CheckSpansInRange(e.posted().text(), "Convert");
    }
    if (e.has_edited()) {
      imbridge::fuzz::CheckSpansInRange(e.edited().text(), "Convert");
    }
  }
  size_t attachments = 0;
  if (!conversion->events.empty() && conversion->events[0].has_posted()) {
    attachments = conversion->events[0].posted().attachments_size();
  }
  Check(conversion->files.size() == attachments, "one file per attachment");
  for (size_t i = 0; i < conversion->files.size(); ++i) {
    const imbridge::adapters::InboundFile& file = conversion->files[i];
    Check(file.event_index == 0 && file.attachment_index == static_cast<int>(i),
          "each file names its attachment");
    Check(static_cast<bool>(file.download), "each file can be downloaded");
  }

  // What must never be mirrored.
  const json* type = Member(event, "type");
  const json* body = Member(event, "data");
  if (type == nullptr || !type->is_string() || body == nullptr) return 0;
  const json* message = Member(*body, "message");
  if ((*type == "ONIMBOTV2MESSAGEADD" || *type == "ONIMBOTV2MESSAGEUPDATE") &&
      message != nullptr && HasId(*message, "authorId", kBotId)) {
    Check(conversion->events.empty(), "the bot's own messages are dropped");
  }
  const json* chat = Member(*body, "chat");
  if (*type == "ONIMBOTV2MESSAGEDELETE" && HasId(*body, "messageId", 777) &&
      chat != nullptr && Member(*chat, "dialogId") != nullptr &&
      *Member(*chat, "dialogId") == "chat5") {
    Check(conversion->events.empty(), "a delete of a copy is dropped");
  }
  return 0;
}
