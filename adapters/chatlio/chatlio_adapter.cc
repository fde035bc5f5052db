#include "adapters/chatlio/chatlio_adapter.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/chatlio/format.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/inbound_answer.h"
#include "common/config_loader.h"
#include "common/http/hmac.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace imbridge::adapters::chatlio {
namespace {

constexpr char kPlatform[] = "chatlio";
constexpr char kPathPrefix[] = "/chatlio/";
// The chat id of a conversation's own channel: "conversation:<uuid>".
constexpr char kConversationPrefix[] = "conversation:";
constexpr size_t kMinSecretLength = 16;
// Bytes handed to the blob store per write of a transcript's HTML.
constexpr size_t kChunk = 64 * 1024;

constexpr char kNameChars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
constexpr char kSecretChars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

void CountLinkError(absl::string_view account) {
  metrics::Registry::Default()
      .GetCounter("imbridge_chatlio_link_errors_total",
                  "Visitor links the router refused to create or delete, by "
                  "account.",
                  {{"account", std::string(account)}})
      .Increment();
}

std::string EndedState(absl::string_view account, absl::string_view uuid) {
  return absl::StrCat("chatlio/ended/", account, "/", uuid);
}

bool Transient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

void CountUnknown(absl::string_view account) {
  metrics::Registry::Default()
      .GetCounter("imbridge_chatlio_unknown_webhooks_total",
                  "Chatlio webhooks of no known shape, answered 200 and "
                  "not mirrored, by account.",
                  {{"account", std::string(account)}})
      .Increment();
}

}  // namespace

absl::Status ValidateChatlioConfig(absl::string_view source,
                                   const v1::ChatlioAdapterConfig& config) {
  absl::Status s = ValidateAdapterBasics(source, config.router(), config.http(),
                                         config.log_level());
  if (!s.ok()) return s;
  if (config.accounts().empty()) {
    return ConfigError(source, "accounts", "at least one account is required");
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const v1::ChatlioAccount& a = config.accounts(i);
    auto field = [i](absl::string_view f) {
      return absl::StrCat("accounts[", i, "].", f);
    };
    if (a.name().empty() || a.name().size() > 64 ||
        a.name().find_first_not_of(kNameChars) != std::string::npos) {
      return ConfigError(source, field("name"),
                         "required: 1-64 letters, digits, '-', '_' or '.'");
    }
    if (!names.insert(a.name()).second) {
      return ConfigError(source, field("name"),
                         absl::StrCat("duplicate account '", a.name(), "'"));
    }
    if (a.webhook_secret().empty()) {
      return ConfigError(source, field("webhook_secret"),
                         "required (or webhook_secret_file)");
    }
    if (a.webhook_secret().size() < kMinSecretLength ||
        a.webhook_secret().find_first_not_of(kSecretChars) !=
            std::string::npos) {
      return ConfigError(source, field("webhook_secret"),
                         "at least 16 characters of A-Z, a-z, 0-9, '-', '_' "
                         "(it is part of a URL path)");
    }
    if (a.slack_account().empty() != a.support().platform().empty()) {
      return ConfigError(
          source,
          field(a.slack_account().empty() ? "slack_account" : "support"),
          "slack_account and support go together (both or neither)");
    }
    if (!a.slack_account().empty() &&
        (a.support().account().empty() || a.support().chat_id().empty())) {
      return ConfigError(source, field("support"),
                         "needs platform, account and chat_id");
    }
    if (a.link_prefix().find_first_not_of(kNameChars) != std::string::npos) {
      return ConfigError(source, field("link_prefix"),
                         "letters, digits, '-', '_' or '.'");
    }
    const std::string& url = a.slack_workspace_url();
    if (!url.empty() && !absl::StartsWith(url, "https://") &&
        !absl::StartsWith(url, "http://")) {
      return ConfigError(source, field("slack_workspace_url"),
                         "must start with https:// (\"https://<team>.slack."
                         "com\")");
    }
  }
  return absl::OkStatus();
}

v1::Link VisitorLink(const v1::ChatlioAccount& account,
                     const ChatlioWebhook& webhook) {
  v1::Link link;
  link.set_name(absl::StrCat(
      account.link_prefix().empty() ? "chatlio-" : account.link_prefix(),
      webhook.conversation_uuid));
  v1::LinkMember* slack = link.add_members();
  slack->set_platform("slack");
  slack->set_account(account.slack_account());
  slack->set_chat_id(webhook.channel_id);
  *link.add_members() = account.support();
  v1::LinkMember* own = link.add_members();
  own->set_platform(kPlatform);
  own->set_account(account.name());
  own->set_chat_id(
      absl::StrCat(kConversationPrefix, webhook.conversation_uuid));
  own->set_direction(v1::OUT);
  return link;
}

ChatlioAdapter::ChatlioAdapter(const v1::ChatlioAdapterConfig& config,
                               AdapterRuntime* runtime,
                               DeliveryJournal* journal)
    : accounts_(config.accounts().begin(), config.accounts().end()),
      runtime_(runtime),
      journal_(journal),
      inbound_router_(runtime),
      pipeline_(InboundPipeline::Options(), &inbound_router_) {
  for (const v1::ChatlioAccount& a : accounts_) by_name_[a.name()] = &a;
  runtime->http().HandlePrefix(
      "POST", kPathPrefix,
      [this](HttpRequest request, std::shared_ptr<Responder> responder) {
        HandleWebhook(std::move(request), std::move(responder));
      },
      JsonBodies());
}

ChatlioAdapter::~ChatlioAdapter() { Stop(); }

std::vector<std::string> ChatlioAdapter::Accounts() const {
  std::vector<std::string> names;
  for (const v1::ChatlioAccount& a : accounts_) names.push_back(a.name());
  return names;
}

absl::StatusOr<std::vector<std::string>> ChatlioAdapter::SendMessage(
    const v1::Delivery& delivery) {
  absl::string_view uuid = delivery.target().chat_id();
  auto account = by_name_.find(delivery.target().account());
  if (account != by_name_.end() &&
      absl::ConsumePrefix(&uuid, kConversationPrefix) && !uuid.empty()) {
    // The conversation's own channel listens to its link: the Slack
    // adapter's notice that the visitor's channel was archived ends the
    // conversation; anything else needs nothing (Chatlio shows the visitor
    // the Slack channel itself).
    const v1::Event& event = delivery.event();
    if (event.channel().platform() == "slack" &&
        absl::StartsWith(event.posted().message_id(), "channel_archive:")) {
      ChatlioWebhook ended;
      ended.kind = WebhookKind::kTranscript;
      ended.conversation_uuid = std::string(uuid);
      ended.channel_id = event.channel().chat_id();
      LogInfo("Chatlio visitor's Slack channel archived",
              {{"account", account->second->name()},
               {"channel", ended.channel_id}});
      absl::Status unlinked = UpdateVisitorLink(*account->second, ended);
      if (!unlinked.ok()) return unlinked;
    }
    return std::vector<std::string>();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "Chatlio channels receive nothing (visitors are answered in Slack); "
      "make the link member {platform: chatlio, account: ",
      delivery.target().account(), ", chat_id: ", delivery.target().chat_id(),
      "} direction: in"));
}

void ChatlioAdapter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  pipeline_.Stop();
}

void ChatlioAdapter::HandleWebhook(HttpRequest request,
                                   std::shared_ptr<Responder> responder) {
  // /chatlio/<account>/<secret>[/<type>]
  absl::string_view rest = request.path;
  absl::ConsumePrefix(&rest, kPathPrefix);
  absl::ConsumeSuffix(&rest, "/");
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  auto not_found = [&](absl::string_view reason, absl::string_view account) {
    // The path holds the secret: only the account is logged.
    LogWarn("Chatlio webhook refused", {{"account", std::string(account)},
                                        {"reason", std::string(reason)}});
    runtime_->CountRejection(reason);
    responder->Respond(404, "application/json",
                       JsonErrorBody("not_found", "no such webhook"));
  };
  if (parts.size() < 2 || parts.size() > 3) {
    not_found("bad_path", "");
    return;
  }
  auto account = by_name_.find(parts[0]);
  if (account == by_name_.end()) {
    not_found("unknown_account", "");
    return;
  }
  const v1::ChatlioAccount& a = *account->second;
  if (!ConstantTimeEquals(parts[1], a.webhook_secret())) {
    not_found("bad_secret", a.name());
    return;
  }
  WebhookKind named = WebhookKind::kUnknown;
  if (parts.size() == 3) {
    named = WebhookKindFromName(parts[2]);
    if (named == WebhookKind::kUnknown) {
      not_found("unknown_type", a.name());
      return;
    }
  }

  ChatlioInput input;
  input.account = a.name();
  std::string error;
  switch (ParseChatlioWebhook(request.body, named, &input.webhook, &error)) {
    case ParseOutcome::kMalformed:
      runtime_->CountRejection("bad_json");
      responder->Respond(400, "application/json",
                         JsonErrorBody("bad_json", error));
      return;
    case ParseOutcome::kUnknown:
      LogInfo("Chatlio webhook of no known shape ignored",
              {{"account", a.name()},
               {"type", std::string(WebhookKindName(named))}});
      CountUnknown(a.name());
      responder->Respond(200, "application/json", "{}");
      return;
    case ParseOutcome::kParsed:
      break;
  }
  absl::Status submitted = pipeline_.Submit<ChatlioInput>(
      this, std::move(input), AnswerInboundWhenDone(responder));
  if (!submitted.ok()) AnswerRefusedInbound(*responder, submitted);
}

absl::StatusOr<InboundRoute> ChatlioAdapter::Route(const ChatlioInput& raw) {
  InboundRoute route;
  // One lane per conversation: its new-conversation notice is published
  // before its transcript.
  route.chat = absl::StrCat(raw.account, "/",
                            raw.webhook.conversation_uuid.empty()
                                ? raw.webhook.visitor.uuid
                                : raw.webhook.conversation_uuid);
  route.key = WebhookEventKey(raw.account, raw.webhook);
  return route;
}

absl::StatusOr<InboundConversion> ChatlioAdapter::Convert(
    const ChatlioInput& raw) {
  auto account = by_name_.find(raw.account);
  if (account == by_name_.end()) {
    return absl::InvalidArgumentError("unknown account");
  }
  absl::Status linked = UpdateVisitorLink(*account->second, raw.webhook);
  if (!linked.ok()) return linked;
  InboundConversion conversion;
  conversion.events.push_back(
      WebhookEvent(raw.account, raw.webhook,
                   account->second->slack_workspace_url(), absl::Now()));
  const v1::Event& event = conversion.events.back();
  if (event.posted().attachments_size() > 0) {
    InboundFile file;
    file.event_index = 0;
    file.attachment_index = 0;
    auto html = std::make_shared<std::string>(raw.webhook.html_body);
    file.download =
        [html](uint64_t max_bytes,
               const std::function<absl::Status(absl::string_view)>& write)
        -> absl::Status {
      if (html->size() > max_bytes) {
        return absl::OutOfRangeError("the transcript is over the file limit");
      }
      for (size_t at = 0; at < html->size(); at += kChunk) {
        absl::Status s = write(absl::string_view(*html).substr(at, kChunk));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    };
    conversion.files.push_back(std::move(file));
  }
  return conversion;
}

absl::Status ChatlioAdapter::UpdateVisitorLink(
    const v1::ChatlioAccount& account, const ChatlioWebhook& webhook) {
  const bool starts = webhook.kind == WebhookKind::kNewConversation;
  const bool ends = webhook.kind == WebhookKind::kTranscript;
  if (account.slack_account().empty() || webhook.conversation_uuid.empty() ||
      (!starts && !ends)) {
    return absl::OkStatus();
  }
  const std::string ended =
      EndedState(account.name(), webhook.conversation_uuid);
  const v1::Link link = VisitorLink(account, webhook);
  if (starts) {
    if (webhook.channel_id.empty()) return absl::OkStatus();
    if (journal_ != nullptr) {
      absl::StatusOr<std::optional<std::string>> done =
          journal_->GetState(ended);
      if (!done.ok()) return RetryableError(done.status().message());
      if (done->has_value()) {
        LogInfo("Chatlio conversation already ended; not linked again",
                {{"account", account.name()}, {"link", link.name()}});
        return absl::OkStatus();
      }
    }
    absl::StatusOr<v1::Link> created = runtime_->CreateLink(link);
    if (Transient(created.status())) {
      return RetryableError(absl::StrCat("cannot create the visitor link: ",
                                         created.status().message()));
    }
    if (!created.ok()) {
      LogError("the router refused a Chatlio visitor link",
               {{"account", account.name()},
                {"link", link.name()},
                {"error", created.status().ToString()}});
      CountLinkError(account.name());
      return absl::OkStatus();
    }
    LogInfo("Chatlio visitor linked", {{"account", account.name()},
                                       {"link", link.name()},
                                       {"channel", webhook.channel_id}});
    return absl::OkStatus();
  }
  absl::Status deleted = runtime_->DeleteLink(link.name());
  if (Transient(deleted)) {
    return RetryableError(
        absl::StrCat("cannot delete the visitor link: ", deleted.message()));
  }
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {
    LogError("the router refused to delete a Chatlio visitor link",
             {{"account", account.name()},
              {"link", link.name()},
              {"error", deleted.ToString()}});
    CountLinkError(account.name());
  } else if (deleted.ok()) {
    LogInfo("Chatlio visitor unlinked",
            {{"account", account.name()}, {"link", link.name()}});
  }
  if (journal_ != nullptr) {
    absl::Status put = journal_->PutState(ended, "1");
    if (!put.ok()) return RetryableError(put.message());
  }
  return absl::OkStatus();
}

AdapterProgram<v1::ChatlioAdapterConfig> ChatlioProgram() {
  AdapterProgram<v1::ChatlioAdapterConfig> program;
  program.binary = "imbridge-adapter-chatlio";
  program.identity.platform = kPlatform;
  program.identity.default_port = kDefaultPort;
  program.validate = ValidateChatlioConfig;
  program.connect = [](const v1::ChatlioAdapterConfig& config,
                       AdapterRuntime* runtime, DeliveryJournal* journal)
      -> absl::StatusOr<std::unique_ptr<Connector>> {
    return std::make_unique<ChatlioAdapter>(config, runtime, journal);
  };
  return program;
}

}  // namespace imbridge::adapters::chatlio
