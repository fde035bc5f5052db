#include "adapters/chatlio/chatlio_adapter.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/bind_front.h"
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
#include "common/status_macros.h"

namespace imbridge::adapters::chatlio {
namespace {

constexpr char kPlatform[] = "chatlio";
constexpr char kPathPrefix[] = "/chatlio/";
// The chat id of a conversation's own channel: "conversation:<uuid>".
constexpr char kConversationPrefix[] = "conversation:";
constexpr size_t kMinSecretLength = 16;
// Bytes handed to the blob store per write of a transcript's HTML.
constexpr size_t kChunk = 64 * 1024;
// The linker's attempts of a pending visitor link: at once when its notice
// is stored (the router creates the link then, parking the thread's
// deliveries until the notice's copy exists), and again while the router
// cannot be reached or does not know the notice yet, with a backoff from
// 0.2 s doubling up to 10 s.
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(200);
constexpr absl::Duration kMaxBackoff = absl::Seconds(10);
// How long a notice the router does not know may stay unknown before its
// visitor is linked with the whole support chat.
constexpr absl::Duration kUnknownNoticeGiveUp = absl::Minutes(10);
// How long the linker waits for the router's answer to one link request.
constexpr absl::Duration kLinkTimeout = absl::Seconds(5);
constexpr char kPendingPrefix[] = "chatlio/pending/";

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

void CountWholeChatLink(absl::string_view account) {
  metrics::Registry::Default()
      .GetCounter("imbridge_chatlio_whole_chat_links_total",
                  "Visitor links made with the whole support chat instead of "
                  "a thread (the notice's copy could not be made), by account.",
                  {{"account", std::string(account)}})
      .Increment();
}

std::string EndedState(absl::string_view account, absl::string_view uuid) {
  return absl::StrCat("chatlio/ended/", account, "/", uuid);
}

// "<account>/<uuid>": a pending link's key, and its state name after
// kPendingPrefix.
std::string PendingKey(absl::string_view account, absl::string_view uuid) {
  return absl::StrCat(account, "/", uuid);
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
  absl::Status s = ValidateAdapterConfigBasics(source, config);
  if (!s.ok()) return s;
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

std::optional<v1::MemberThreadRoot> VisitorThreadRoot(
    const v1::ChatlioAccount& account, absl::string_view conversation_uuid) {
  if (!account.support().thread_id().empty()) return std::nullopt;
  ChatlioWebhook notice;
  notice.kind = WebhookKind::kNewConversation;
  notice.conversation_uuid = std::string(conversation_uuid);
  v1::MemberThreadRoot root;
  root.set_member(1);
  root.mutable_origin()->set_platform(kPlatform);
  root.mutable_origin()->set_account(account.name());
  root.mutable_origin()->set_chat_id(kNoticesChat);
  root.set_message_id(NoticeMessageId(account.name(), notice));
  return root;
}

ChatlioAdapter::ChatlioAdapter(const v1::ChatlioAdapterConfig& config,
                               AdapterRuntime* runtime,
                               DeliveryJournal* journal)
    : runtime_(runtime),
      journal_(journal),
      inbound_router_(runtime),
      pipeline_(InboundPipeline::Options(), &inbound_router_) {
  for (const v1::ChatlioAccount& a : config.accounts()) {
    accounts_.Add(a.name(), std::make_unique<v1::ChatlioAccount>(a));
  }
  LoadPendingLinks();
  linker_ = std::thread([this] { LinkerLoop(); });
  runtime->http().HandlePrefix(
      "POST", kPathPrefix,
      absl::bind_front(&ChatlioAdapter::HandleWebhook, this), JsonBodies());
}

ChatlioAdapter::~ChatlioAdapter() { Stop(); }

absl::StatusOr<std::vector<std::string>> ChatlioAdapter::SendMessage(
    const v1::Delivery& delivery) {
  absl::string_view uuid = delivery.target().chat_id();
  const v1::ChatlioAccount* account =
      accounts_.Find(delivery.target().account());
  if (account != nullptr && absl::ConsumePrefix(&uuid, kConversationPrefix) &&
      !uuid.empty()) {
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
              {{"account", account->name()}, {"channel", ended.channel_id}});
      absl::Status unlinked = UpdateVisitorLink(*account, ended);
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
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (linker_.joinable()) linker_.join();
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
  const v1::ChatlioAccount* account = accounts_.Find(parts[0]);
  if (account == nullptr) {
    not_found("unknown_account", "");
    return;
  }
  const v1::ChatlioAccount& a = *account;
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
  // Once the notice is stored, its copy in the support chat follows soon:
  // the linker asks for the visitor's thread at once.
  InboundPipeline::DoneCallback answer = AnswerInboundWhenDone(responder);
  const bool starts = input.webhook.kind == WebhookKind::kNewConversation;
  absl::Status submitted = pipeline_.Submit<ChatlioInput>(
      this, std::move(input),
      [this, answer, starts](const InboundResult& result) {
        answer(result);
        if (starts) KickLinker();
      });
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
  IMB_ASSIGN_OR_RETURN(
      const v1::ChatlioAccount* account,
      accounts_.Get(raw.account, absl::StatusCode::kInvalidArgument));
  absl::Status linked = UpdateVisitorLink(*account, raw.webhook);
  if (!linked.ok()) return linked;
  InboundConversion conversion;
  conversion.events.push_back(WebhookEvent(
      raw.account, raw.webhook, account->slack_workspace_url(), absl::Now()));
  if (raw.webhook.kind == WebhookKind::kNewConversation &&
      !account->slack_account().empty() && !raw.webhook.channel_id.empty() &&
      VisitorThreadRoot(*account, raw.webhook.conversation_uuid).has_value()) {
    conversion.events.back()
        .mutable_posted()
        ->mutable_text()
        ->mutable_text()
        ->append(kAnswerInThreadLine);
  }
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
  if (starts) {
    if (webhook.channel_id.empty()) return absl::OkStatus();
    if (journal_ != nullptr) {
      absl::StatusOr<std::optional<std::string>> done =
          journal_->GetState(ended);
      if (!done.ok()) return RetryableError(done.status().message());
      if (done->has_value()) {
        LogInfo("Chatlio conversation already ended; not linked again",
                {{"account", account.name()},
                 {"link", VisitorLink(account, webhook).name()}});
        return absl::OkStatus();
      }
    }
    return AddPendingLink(account, webhook);
  }
  // The end: no creation of this link is in progress while it is deleted,
  // and none is made after.
  absl::MutexLock link_lock(&link_mu_);
  absl::Status dropped =
      DropPendingLink(PendingKey(account.name(), webhook.conversation_uuid));
  if (!dropped.ok()) return RetryableError(dropped.message());
  const v1::Link link = VisitorLink(account, webhook);
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

absl::Status ChatlioAdapter::AddPendingLink(const v1::ChatlioAccount& account,
                                            const ChatlioWebhook& webhook) {
  const std::string key = PendingKey(account.name(), webhook.conversation_uuid);
  if (journal_ != nullptr) {
    absl::Status put = journal_->PutState(absl::StrCat(kPendingPrefix, key),
                                          webhook.channel_id);
    if (!put.ok()) return RetryableError(put.message());
  }
  absl::MutexLock lock(&mu_);
  if (pending_.contains(key)) return absl::OkStatus();
  PendingLink& p = pending_[key];
  p.account = &account;
  p.uuid = webhook.conversation_uuid;
  p.channel_id = webhook.channel_id;
  p.since = absl::Now();
  p.next_attempt = p.since;
  p.backoff = kFirstBackoff;
  return absl::OkStatus();
}

absl::Status ChatlioAdapter::DropPendingLink(const std::string& key) {
  {
    absl::MutexLock lock(&mu_);
    pending_.erase(key);
  }
  // An empty value is no pending link (the journal keeps names).
  if (journal_ == nullptr) return absl::OkStatus();
  return journal_->PutState(absl::StrCat(kPendingPrefix, key), "");
}

void ChatlioAdapter::LoadPendingLinks() {
  if (journal_ == nullptr) return;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> saved =
      journal_->ListState(kPendingPrefix);
  if (!saved.ok()) {
    LogError("cannot read the pending Chatlio visitor links",
             {{"error", saved.status().ToString()}});
    return;
  }
  for (const auto& [name, channel] : *saved) {
    if (channel.empty()) continue;
    absl::string_view key = name;
    absl::ConsumePrefix(&key, kPendingPrefix);
    std::pair<std::string, std::string> parts =
        absl::StrSplit(key, absl::MaxSplits('/', 1));
    const v1::ChatlioAccount* account = accounts_.Find(parts.first);
    if (account == nullptr || parts.second.empty()) continue;
    ChatlioWebhook webhook;
    webhook.kind = WebhookKind::kNewConversation;
    webhook.conversation_uuid = parts.second;
    webhook.channel_id = channel;
    AddPendingLink(*account, webhook).IgnoreError();
    LogInfo("Chatlio visitor link still to be made",
            {{"account", parts.first}, {"conversation", parts.second}});
  }
}

void ChatlioAdapter::KickLinker() {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

void ChatlioAdapter::LinkerLoop() {
  while (true) {
    std::vector<std::string> due;
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake = absl::Now() + kMaxBackoff;
      for (const auto& [key, p] : pending_)
        wake = std::min(wake, p.next_attempt);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || kicked_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      for (auto& [key, p] : pending_) {
        if (kicked_) p.next_attempt = now;
        if (p.next_attempt <= now) due.push_back(key);
      }
      kicked_ = false;
    }
    for (const std::string& key : due) {
      absl::MutexLock link_lock(&link_mu_);
      if (TryLink(key)) continue;
      absl::MutexLock lock(&mu_);
      auto p = pending_.find(key);
      if (p == pending_.end()) continue;
      const absl::Time now = absl::Now();
      p->second.next_attempt = now + p->second.backoff;
      p->second.backoff = std::min(p->second.backoff * 2, kMaxBackoff);
    }
  }
}

bool ChatlioAdapter::TryLink(const std::string& key) {
  PendingLink p;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(key);
    if (it == pending_.end() || stopping_) return true;
    p = it->second;
  }
  const v1::ChatlioAccount& account = *p.account;
  ChatlioWebhook webhook;
  webhook.kind = WebhookKind::kNewConversation;
  webhook.conversation_uuid = p.uuid;
  webhook.channel_id = p.channel_id;
  const v1::Link link = VisitorLink(account, webhook);
  std::vector<v1::MemberThreadRoot> roots;
  if (std::optional<v1::MemberThreadRoot> root =
          VisitorThreadRoot(account, p.uuid)) {
    roots.push_back(*root);
  }
  absl::StatusOr<v1::Link> created =
      runtime_->CreateLink(link, roots, kLinkTimeout);
  const absl::Status& s = created.status();
  const bool not_made_yet =
      Transient(s) ||
      (absl::IsNotFound(s) && absl::Now() - p.since < kUnknownNoticeGiveUp);
  if (not_made_yet) {
    LogDebug("Chatlio visitor link waits for the router",
             {{"link", link.name()}, {"reason", s.ToString()}});
    return false;
  }
  if (!roots.empty() && (absl::IsFailedPrecondition(s) || absl::IsNotFound(s) ||
                         absl::IsUnimplemented(s))) {
    // No thread to narrow to: the visitor gets the whole support chat.
    LogWarn(
        "Chatlio visitor linked with the whole support chat (no copy of "
        "the notice to thread under)",
        {{"account", account.name()},
         {"link", link.name()},
         {"reason", s.ToString()}});
    CountWholeChatLink(account.name());
    created = runtime_->CreateLink(link, {}, kLinkTimeout);
    if (Transient(created.status())) return false;
  }
  if (!created.ok()) {
    LogError("the router refused a Chatlio visitor link",
             {{"account", account.name()},
              {"link", link.name()},
              {"error", created.status().ToString()}});
    CountLinkError(account.name());
  } else {
    const std::string thread =
        created->members_size() > 1 ? created->members(1).thread_id() : "";
    LogInfo("Chatlio visitor linked", {{"account", account.name()},
                                       {"link", link.name()},
                                       {"channel", p.channel_id},
                                       {"support_thread", thread}});
  }
  absl::Status dropped = DropPendingLink(key);
  if (!dropped.ok()) {
    // Asked again later: creating the same link again is harmless.
    LogWarn("cannot record a Chatlio visitor link as made",
            {{"link", link.name()}, {"error", dropped.ToString()}});
    absl::MutexLock lock(&mu_);
    pending_[key] = p;
    return false;
  }
  return true;
}

AdapterProgram<v1::ChatlioAdapterConfig> ChatlioProgram() {
  AdapterProgram<v1::ChatlioAdapterConfig> program(kPlatform, kDefaultPort);
  program.validate = ValidateChatlioConfig;
  program.connect = Connect<ChatlioAdapter, v1::ChatlioAdapterConfig>;
  return program;
}

}  // namespace imbridge::adapters::chatlio
