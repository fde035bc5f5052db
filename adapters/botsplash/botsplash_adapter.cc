#include "adapters/botsplash/botsplash_adapter.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/functional/bind_front.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/account_names.h"
#include "adapters/common/attachment_kind.h"
#include "adapters/common/delivery_handler.h"
#include "adapters/common/inbound_answer.h"
#include "common/config_loader.h"
#include "common/file_size.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge::adapters::botsplash {
namespace {

using json = nlohmann::json;

constexpr char kPlatform[] = "botsplash";
constexpr char kDefaultBaseUrl[] = "https://api.botsplash.com/open/v1";
constexpr char kDefaultListenerPath[] = "/listener/botsplash/{id}";
constexpr char kDefaultUploadPath[] = "/upload";
constexpr char kDefaultSecretHeader[] = "X-Botsplash-Secret";
constexpr uint64_t kDefaultCarrierLimit = 1000000;
// Largest file a link serves (read from the router into memory).
constexpr uint64_t kMaxLinkedFileBytes = 100ull << 20;

std::string WithoutSlash(absl::string_view url) {
  while (absl::ConsumeSuffix(&url, "/")) {
  }
  return std::string(url);
}

std::string ReplyPath(const v1::BotsplashAccount& a) {
  return a.replies().path().empty()
             ? absl::StrCat("/botsplash/", a.name(), "/replies")
             : a.replies().path();
}

std::string FilesPrefix(const v1::BotsplashAccount& a) {
  return absl::StrCat("/botsplash/", a.name(), "/files/");
}

std::string SecretHeader(const v1::BotsplashAccount& a) {
  return a.replies().secret_header().empty() ? kDefaultSecretHeader
                                             : a.replies().secret_header();
}

uint64_t CarrierLimit(const v1::BotsplashAccount& a) {
  return a.carrier_limit_bytes() ? a.carrier_limit_bytes()
                                 : kDefaultCarrierLimit;
}

std::string Path(const std::string& configured, const char* fallback) {
  return configured.empty() ? fallback : configured;
}

std::string VisitorState(absl::string_view account, absl::string_view id) {
  return absl::StrCat("botsplash/visitor/", account, "/", id);
}

std::string KnownKey(absl::string_view account, absl::string_view id) {
  return absl::StrCat(account, "/", id);
}

void CountUnknownVisitor(absl::string_view account) {
  metrics::Registry::Default()
      .GetCounter("imbridge_botsplash_unknown_visitor_replies_total",
                  "Customer replies of visitors the bridge does not know, "
                  "answered 200 and dropped.",
                  {{"account", std::string(account)}})
      .Increment();
}

// "📎 report.pdf (2.1 MB)" and an optional tail.
std::string FileLine(const v1::Attachment& att, absl::string_view tail) {
  return absl::StrCat("📎 ", att.name(), " (", FileSizeText(att.size()), ")",
                      tail.empty() ? "" : ": ", tail);
}

// The last path segment of a URL, for a file's name.
std::string NameOfUrl(absl::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  size_t slash = url.rfind('/');
  absl::string_view name =
      slash == absl::string_view::npos ? url : url.substr(slash + 1);
  return name.empty() ? "file" : std::string(name);
}

}  // namespace

AdapterProgram<v1::BotsplashAdapterConfig> BotsplashProgram() {
  AdapterProgram<v1::BotsplashAdapterConfig> program(kPlatform, kDefaultPort);
  program.validate = ValidateBotsplashConfig;
  program.connect =
      ConnectAfterInit<BotsplashConnector, v1::BotsplashAdapterConfig>;
  return program;
}

namespace {

// The checks of one account of ValidateBotsplashConfig at `at`; `paths`
// holds the reply paths of the accounts before it.
absl::Status ValidateAccount(absl::string_view source,
                             const v1::BotsplashAccount& a,
                             const std::string& at,
                             absl::flat_hash_set<std::string>* paths) {
  if (!a.base_url().empty() && !IsHttpUrl(a.base_url())) {
    return ConfigError(source, at + ".base_url",
                       "must start with https:// or http://");
  }
  if (a.app_id().empty() ||
      a.app_id().find_first_of("/?#") != std::string::npos) {
    return ConfigError(source, at + ".app_id",
                       "required: the App Name or App ID, without /, ? or #");
  }
  bool basic = !a.basic().username().empty() || !a.basic().password().empty();
  if (a.api_key().empty() == !basic) {
    return ConfigError(source, at,
                       "exactly one of api_key and basic is required");
  }
  if (basic && (a.basic().username().empty() || a.basic().password().empty())) {
    return ConfigError(source, at + ".basic",
                       "username and password (or password_file) are "
                       "required");
  }
  const v1::BotsplashPaths& p = a.paths();
  if (p.direct_message().empty()) {
    return ConfigError(source, at + ".paths.direct_message",
                       "required: the path of \"send direct message to "
                       "visitor\" is not public; ask Botsplash for it");
  }
  if (!a.agents().empty() && p.update_visitor().empty()) {
    return ConfigError(source, at + ".paths.update_visitor",
                       "required with agents: the path of \"update visitor "
                       "by external id\" is not public; ask Botsplash for it");
  }
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string&>{"listener", p.listener()},
        {"upload", p.upload()},
        {"direct_message", p.direct_message()},
        {"update_visitor", p.update_visitor()}}) {
    if (!value.empty() && !absl::StartsWith(value, "/")) {
      return ConfigError(source, absl::StrCat(at, ".paths.", field),
                         "must start with /");
    }
  }
  if (a.requests_per_second() < 0) {
    return ConfigError(source, at + ".requests_per_second",
                       "must not be negative");
  }
  if (!a.public_url().empty() && !IsHttpUrl(a.public_url())) {
    return ConfigError(source, at + ".public_url",
                       "must start with https:// or http://");
  }
  const v1::BotsplashReplyWebhook& r = a.replies();
  if (!CheckSigningSecret(r.secret()).ok()) {
    return ConfigError(source, at + ".replies.secret",
                       "required (or secret_file): the shared secret of the "
                       "reply webhook");
  }
  if (absl::Status s =
          CheckWebhookPath(source, at + ".replies.path", ReplyPath(a), paths);
      !s.ok()) {
    return s;
  }
  const ReplyMapping m = MappingOf(r.mapping());
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string&>{"visitor_id", m.visitor_id},
        {"text", m.text},
        {"message_id", m.message_id},
        {"media_url", m.media_url},
        {"time", m.time}}) {
    absl::Status s = CheckJsonPath(value);
    if (!s.ok()) {
      return ConfigError(source, absl::StrCat(at, ".replies.mapping.", field),
                         s.message());
    }
  }
  if (!m.name.empty() && !CheckJsonPath(m.name).ok()) {
    return ConfigError(source, at + ".replies.mapping.name",
                       CheckJsonPath(m.name).message());
  }
  for (int k = 0; k < a.agents_size(); ++k) {
    const v1::BotsplashAgent& agent = a.agents(k);
    if (agent.user_id().empty() || agent.agent_client_user_id().empty()) {
      return ConfigError(source, absl::StrCat(at, ".agents[", k, "]"),
                         "user_id and agent_client_user_id are required");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateBotsplashConfig(absl::string_view source,
                                     const v1::BotsplashAdapterConfig& config) {
  absl::flat_hash_set<std::string> paths;
  return ValidateAccounts(
      source, config,
      [&](const v1::BotsplashAccount& a, const std::string& at) {
        return ValidateAccount(source, a, at, &paths);
      });
}

OpenApiClient::Options ClientOptions(const v1::BotsplashAccount& a) {
  OpenApiClient::Options o;
  o.account = a.name();
  o.base_url = absl::StrCat(
      WithoutSlash(a.base_url().empty() ? kDefaultBaseUrl : a.base_url()), "/",
      a.app_id());
  o.api_key = a.api_key();
  o.username = a.basic().username();
  o.password = a.basic().password();
  if (a.requests_per_second() > 0) {
    o.requests_per_second = a.requests_per_second();
  }
  if (a.max_attempts() > 0) o.max_attempts = static_cast<int>(a.max_attempts());
  return o;
}

BotsplashConnector::BotsplashConnector(const v1::BotsplashAdapterConfig& config,
                                       AdapterRuntime* runtime,
                                       DeliveryJournal* journal)
    : config_(config),
      runtime_(runtime),
      journal_(journal),
      http_(MessengerClientOptions(kPlatform)),
      inbound_router_(runtime),
      files_(std::make_unique<Executor>(2)) {
  InboundPipeline::Options popts;
  pipeline_ = std::make_unique<InboundPipeline>(popts, &inbound_router_);
  for (const v1::BotsplashAccount& a : config_.accounts()) {
    auto account = std::make_unique<Account>();
    account->config = a;
    account->api = std::make_unique<OpenApiClient>(ClientOptions(a), &http_);
    account->mapping = MappingOf(a.replies().mapping());
    accounts_.Add(a.name(), std::move(account));
  }
  for (auto& a : accounts_) {
    runtime_->http().Handle(
        "POST", ReplyPath(a->config),
        absl::bind_front(&BotsplashConnector::HandleReply, this, a.get()),
        JsonBodies());
    if (!a->config.public_url().empty()) {
      runtime_->http().HandlePrefix(
          "GET", FilesPrefix(a->config),
          absl::bind_front(&BotsplashConnector::HandleFile, this, a.get()));
    }
  }
}

BotsplashConnector::~BotsplashConnector() { Stop(); }

absl::Status BotsplashConnector::Init() {
  auto saved = journal_->ListState("botsplash/visitor/");
  if (!saved.ok()) return saved.status();
  absl::MutexLock lock(&mu_);
  for (const auto& [name, value] : *saved) {
    absl::string_view key = name;
    absl::ConsumePrefix(&key, "botsplash/visitor/");
    known_.insert(std::string(key));
  }
  return absl::OkStatus();
}

absl::Status BotsplashConnector::Start() {
  LogInfo(
      "Botsplash cannot edit or delete a text message: edits and deletes "
      "are not relayed to customers",
      {{"accounts", absl::StrCat(accounts_.size())}});
  return absl::OkStatus();
}

void BotsplashConnector::Stop() {
  // A call in its backoff (Botsplash unreachable) ends now, not after its
  // last attempt.
  for (auto& a : accounts_) {
    if (a->api != nullptr) a->api->Stop();
  }
  if (pipeline_ != nullptr) pipeline_->Stop();
  files_.reset();
}

// ---------------------------------------------------------------------------
// Visitors.

Visitor BotsplashConnector::LoadVisitor(const Account& account,
                                        const std::string& id) {
  Visitor v;
  absl::StatusOr<std::optional<std::string>> saved =
      journal_->GetState(VisitorState(account.config.name(), id));
  if (saved.ok() && saved->has_value()) {
    v = VisitorFromJson(json::parse(**saved, nullptr, false));
  }
  v.client_visitor_id = id;
  return v;
}

absl::Status BotsplashConnector::SaveVisitor(const Account& account,
                                             const Visitor& visitor) {
  absl::Status s = journal_->PutState(
      VisitorState(account.config.name(), visitor.client_visitor_id),
      VisitorJson(visitor).dump());
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  known_.insert(KnownKey(account.config.name(), visitor.client_visitor_id));
  return absl::OkStatus();
}

bool BotsplashConnector::IsKnown(const Account& account,
                                 const std::string& visitor_id) {
  {
    absl::MutexLock lock(&mu_);
    if (known_.contains(KnownKey(account.config.name(), visitor_id))) {
      return true;
    }
  }
  // Channels of the router's links when the adapter attached (links of
  // the router's config, and runtime links made before).
  const std::string chat = VisitorChat(visitor_id);
  const v1::Welcome welcome = runtime_->router().welcome();
  for (const v1::ChannelRef& c : welcome.channels()) {
    if (c.platform() == kPlatform && c.account() == account.config.name() &&
        c.chat_id() == chat) {
      return true;
    }
  }
  return false;
}

std::string BotsplashConnector::AgentOf(const Account& account,
                                        const v1::UserRef& user) const {
  for (const v1::BotsplashAgent& a : account.config.agents()) {
    const std::string& platform =
        a.platform().empty() ? std::string("teamspirit") : a.platform();
    if (platform == user.platform() && a.user_id() == user.id()) {
      return a.agent_client_user_id();
    }
  }
  return "";
}

absl::Status BotsplashConnector::AssignAgent(Account* account, Visitor* visitor,
                                             const std::string& agent) {
  if (agent.empty() || visitor->agent_client_user_id == agent) {
    return absl::OkStatus();
  }
  Visitor update;
  update.client_visitor_id = visitor->client_visitor_id;
  update.agent_client_user_id = agent;
  std::string path = account->config.paths().update_visitor();
  path = absl::StrReplaceAll(path, {{"{idType}", "clientVisitorId"},
                                    {"{idValue}", visitor->client_visitor_id}});
  absl::StatusOr<json> r =
      account->api->PostJson(path, UpdateVisitorBody(update));
  if (!r.ok()) return r.status();
  visitor->agent_client_user_id = agent;
  LogInfo("visitor assigned to agent", {{"account", account->config.name()},
                                        {"visitor", visitor->client_visitor_id},
                                        {"agent", agent}});
  absl::Status s = SaveVisitor(*account, *visitor);
  return s.ok() ? s : RetryableError(s.message());
}

absl::StatusOr<std::string> BotsplashConnector::StartConversation(
    absl::string_view account_name, const std::vector<std::string>& words,
    absl::string_view greeting) {
  IMB_ASSIGN_OR_RETURN(
      Account * account,
      accounts_.Get(account_name, absl::StatusCode::kNotFound));
  if (account->config.listener_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the Botsplash account '", account_name, "' has no listener_id"));
  }
  absl::StatusOr<StartRequest> start = ParseStart(words);
  if (!start.ok()) return start.status();
  Visitor visitor = LoadVisitor(*account, VisitorIdForPhone(start->phone));
  visitor.phone_number = start->phone;
  visitor.first_name = start->first_name;
  visitor.last_name = start->last_name;
  visitor.team_code = account->config.team_code();
  std::string path = absl::StrReplaceAll(
      Path(account->config.paths().listener(), kDefaultListenerPath),
      {{"{id}", account->config.listener_id()}});
  absl::StatusOr<json> r =
      account->api->PostJson(path, ListenerBody(visitor, greeting));
  if (!r.ok()) return r.status();
  if (r->is_object() && r->contains("success") && !r->value("success", false)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Botsplash did not accept the visitor: ", ErrorMessageOf(r->dump())));
  }
  absl::Status s = SaveVisitor(*account, visitor);
  if (!s.ok()) return s;
  LogInfo("visitor submitted to the listener",
          {{"account", account->config.name()},
           {"visitor", visitor.client_visitor_id}});
  return visitor.client_visitor_id;
}

std::vector<std::string> BotsplashConnector::CommandWords() const {
  return {"botsplash"};
}

v1::ChatCommandAnswer BotsplashConnector::HandleChatCommand(
    const v1::ChatCommand& command) {
  v1::ChatCommandAnswer answer;
  const std::string usage = absl::StrCat(
      "Usage: !bridge botsplash ", accounts_.size() > 1 ? "<account> " : "",
      "start <phone> <first name> [last name]");
  std::vector<std::string> words = absl::StrSplit(
      command.args(), absl::ByAnyChar(" \t\n"), absl::SkipWhitespace());
  Account* account = accounts_.front();
  if (!words.empty() && accounts_.Find(words.front()) != nullptr) {
    account = accounts_.Find(words.front());
    words.erase(words.begin());
  }
  if (words.empty() || words.front() != "start") {
    answer.set_text(usage);
    return answer;
  }
  words.erase(words.begin());
  // At least once: a command that comes again gets its first answer.
  const std::string done_name =
      absl::StrCat("botsplash/command/", command.event().key());
  absl::StatusOr<std::optional<std::string>> done =
      journal_->GetState(done_name);
  if (done.ok() && done->has_value()) {
    answer.set_text(**done);
    answer.set_in_command_thread(true);
    return answer;
  }
  absl::StatusOr<StartRequest> start = ParseStart(words);
  if (!start.ok()) {
    answer.set_text(std::string(start.status().message()));
    return answer;
  }
  absl::StatusOr<std::string> visitor =
      StartConversation(account->config.name(), words, "");
  if (!visitor.ok()) {
    answer.set_text(absl::StrCat("Botsplash did not take the customer: ",
                                 visitor.status().message()));
    return answer;
  }
  v1::Link link;
  link.set_name(
      absl::StrCat("botsplash-", account->config.name(), "-", *visitor));
  const v1::ChannelRef thread = CommandThread(command);
  v1::LinkMember* team = link.add_members();
  team->set_platform(thread.platform());
  team->set_account(thread.account());
  team->set_chat_id(thread.chat_id());
  team->set_thread_id(thread.thread_id());
  v1::LinkMember* customer = link.add_members();
  customer->set_platform(kPlatform);
  customer->set_account(account->config.name());
  customer->set_chat_id(VisitorChat(*visitor));
  absl::StatusOr<v1::Link> made = runtime_->CreateLink(link);
  if (!made.ok()) {
    answer.set_text(
        absl::IsAlreadyExists(made.status())
            ? absl::StrCat("This customer is already linked to another thread "
                           "(link ",
                           link.name(), "): continue there")
            : absl::StrCat("Could not link this thread to the customer: ",
                           made.status().message()));
    return answer;
  }
  std::string name = std::string(absl::StripAsciiWhitespace(
      absl::StrCat(start->first_name, " ", start->last_name)));
  answer.set_text(absl::StrCat(
      "Texting ", name, " (", start->phone, ", Botsplash visitor ", *visitor,
      "). Write in this thread to reach the customer; the replies come here."));
  answer.set_in_command_thread(true);
  absl::Status s = journal_->PutState(done_name, answer.text());
  if (!s.ok()) {
    LogWarn("cannot remember the answered command",
            {{"key", command.event().key()}, {"error", s.ToString()}});
  }
  LogInfo("conversation started", {{"account", account->config.name()},
                                   {"visitor", *visitor},
                                   {"link", link.name()}});
  return answer;
}

// ---------------------------------------------------------------------------
// Outbound.

std::string BotsplashConnector::FileSignature(const Account& account,
                                              absl::string_view blob_id) const {
  // Keyed by the reply webhook's secret: only the adapter makes links.
  return HmacSha256Hex(account.config.replies().secret(),
                       absl::StrCat("botsplash-file:", account.config.name(),
                                    ":", blob_id))
      .substr(0, 32);
}

std::string BotsplashConnector::FileLink(const Account& account,
                                         const v1::Attachment& att) const {
  if (account.config.public_url().empty()) return "";
  return absl::StrCat(WithoutSlash(account.config.public_url()),
                      FilesPrefix(account.config), att.blob_id(), "/",
                      FileSignature(account, att.blob_id()));
}

absl::StatusOr<std::vector<std::string>> BotsplashConnector::SendMessage(
    const v1::Delivery& delivery) {
  IMB_ASSIGN_OR_RETURN(Account * account,
                       accounts_.Get(delivery.target().account(),
                                     absl::StatusCode::kFailedPrecondition));
  const std::string visitor_id = VisitorOfChat(delivery.target().chat_id());
  if (visitor_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", delivery.target().chat_id(),
                     "' is not a Botsplash customer (visitor:<id>)"));
  }
  const v1::MessagePosted& posted = delivery.event().posted();
  Visitor visitor = LoadVisitor(*account, visitor_id);
  const std::string agent = AgentOf(*account, posted.sender());
  absl::Status assigned = AssignAgent(account, &visitor, agent);
  if (!assigned.ok()) return assigned;
  Visitor to = visitor;
  to.first_name.clear();
  to.last_name.clear();
  to.team_code.clear();
  // Only a mapped agent's message speaks for an agent.
  to.agent_client_user_id = agent;

  const std::string key = delivery.idempotency_key();
  const std::string dm_path = account->config.paths().direct_message();
  std::vector<DeliveryJournal::StepCall> steps;
  auto send = [this, account, dm_path, to, key](size_t n, std::string text,
                                                std::string media_key) {
    (void)this;
    return [account, dm_path, to, key, n, text = std::move(text),
            media_key = std::move(
                media_key)]() -> absl::StatusOr<std::vector<std::string>> {
      absl::StatusOr<json> r = account->api->PostJson(
          dm_path, DirectMessageBody(text, to, media_key));
      if (!r.ok()) return r.status();
      return std::vector<std::string>{absl::StrCat("dm:", key, ":", n)};
    };
  };
  if (!posted.text().text().empty() || posted.attachments().empty()) {
    steps.push_back(send(steps.size(), posted.text().text(), ""));
  }
  const uint64_t limit = CarrierLimit(account->config);
  for (const v1::Attachment& att : posted.attachments()) {
    if (att.blob_id().empty()) {
      steps.push_back(
          send(steps.size(), FileLine(att, att.unavailable_reason()), ""));
      continue;
    }
    if (att.size() > limit) {
      std::string link = FileLink(*account, att);
      steps.push_back(send(
          steps.size(),
          FileLine(att, link.empty() ? "too large for a text message" : link),
          ""));
      continue;
    }
    const size_t n = steps.size();
    const std::string upload_path =
        Path(account->config.paths().upload(), kDefaultUploadPath);
    steps.push_back([this, account, dm_path, upload_path, to, key, n, att,
                     limit]() -> absl::StatusOr<std::vector<std::string>> {
      absl::StatusOr<std::string> bytes =
          ReadBlobForUpload(runtime_->router(), att.blob_id(), limit);
      if (!bytes.ok()) return bytes.status();
      absl::StatusOr<json> uploaded = account->api->Upload(
          upload_path, att.name(), att.mime_type(), *std::move(bytes));
      if (!uploaded.ok()) return uploaded.status();
      std::string media_key = MediaKeyOf(*uploaded);
      if (media_key.empty()) {
        return absl::FailedPreconditionError(
            "Botsplash's upload answered no media key");
      }
      absl::StatusOr<json> r = account->api->PostJson(
          dm_path, DirectMessageBody(att.name(), to, media_key));
      if (!r.ok()) return r.status();
      return std::vector<std::string>{absl::StrCat("dm:", key, ":", n)};
    });
  }
  // Botsplash has no idempotency key nor a way to look a sent message up: a
  // step whose call was cut by a crash is made again (at least once: nothing
  // acknowledged is lost; the customer may get that one text twice;
  // docs/botsplash.md).
  absl::StatusOr<std::vector<std::string>> ids = journal_->Run(
      key, absl::StrCat(account->config.name(), "/", visitor_id), steps,
      [](size_t, const DeliveryJournal::Step&)
          -> absl::StatusOr<std::optional<std::vector<std::string>>> {
        return std::optional<std::vector<std::string>>();
      });
  if (ids.ok()) {
    bool known;
    {
      absl::MutexLock lock(&mu_);
      known = known_.contains(KnownKey(account->config.name(), visitor_id));
    }
    if (!known) {
      absl::Status s = SaveVisitor(*account, visitor);
      if (!s.ok()) {
        LogWarn("cannot remember the visitor",
                {{"visitor", visitor_id}, {"error", s.ToString()}});
      }
    }
  }
  return ids;
}

void BotsplashConnector::HandleFile(Account* account, HttpRequest request,
                                    std::shared_ptr<Responder> responder) {
  absl::string_view rest = request.path;
  absl::ConsumePrefix(&rest, FilesPrefix(account->config));
  std::vector<std::string> parts = absl::StrSplit(rest, '/');
  if (parts.size() != 2 || parts[0].empty() ||
      !ConstantTimeEquals(parts[1], FileSignature(*account, parts[0]))) {
    runtime_->CountRejection("bad_file_link");
    responder->Respond(404, "application/json",
                       JsonErrorBody("not_found", "no such file"));
    return;
  }
  files_->Post([this, blob = parts[0], responder] {
    std::string bytes;
    absl::StatusOr<v1::BlobMeta> meta =
        runtime_->router().GetBlob(blob, [&bytes](absl::string_view chunk) {
          if (bytes.size() + chunk.size() > kMaxLinkedFileBytes) {
            return absl::OutOfRangeError("file over the limit");
          }
          bytes.append(chunk.data(), chunk.size());
          return absl::OkStatus();
        });
    if (!meta.ok()) {
      responder->Respond(absl::IsNotFound(meta.status()) ? 404 : 503,
                         "application/json",
                         JsonErrorBody("unavailable", meta.status().message()));
      return;
    }
    std::string name = meta->name();
    name.erase(std::remove_if(name.begin(), name.end(),
                              [](char c) {
                                return c == '"' || c == '\\' ||
                                       static_cast<unsigned char>(c) < 0x20;
                              }),
               name.end());
    responder->Respond(200,
                       meta->mime_type().empty() ? "application/octet-stream"
                                                 : meta->mime_type(),
                       std::move(bytes),
                       {{"Content-Disposition",
                         absl::StrCat("attachment; filename=\"", name, "\"")}});
  });
}

// ---------------------------------------------------------------------------
// Inbound.

void BotsplashConnector::HandleReply(Account* account, HttpRequest request,
                                     std::shared_ptr<Responder> responder) {
  auto refuse = [&](int status, const char* reason, absl::string_view what) {
    runtime_->CountRejection(reason);
    responder->Respond(status, "application/json", JsonErrorBody(reason, what));
  };
  if (!VerifySecretToken(account->config.replies().secret(),
                         request.Header(SecretHeader(account->config)))
           .ok()) {
    refuse(401, "bad_secret", "wrong or missing shared secret");
    return;
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    refuse(400, "bad_json", "the body is not a JSON object");
    return;
  }
  absl::StatusOr<Reply> reply = MapReply(body, account->mapping);
  if (!reply.ok()) {
    refuse(400, "missing_field", reply.status().message());
    return;
  }
  if (!IsKnown(*account, reply->visitor_id)) {
    if (!runtime_->router().attached()) {
      // The router's links are not known yet: the visitor may be linked
      // there. Botsplash sends the reply again; a 200 would lose it.
      refuse(503, "not_attached",
             "not attached to the router yet; send the reply again");
      return;
    }
    CountUnknownVisitor(account->config.name());
    LogInfo(
        "reply of an unknown visitor ignored",
        {{"account", account->config.name()}, {"visitor", reply->visitor_id}});
    responder->Respond(200, "application/json",
                       R"({"ignored":"unknown visitor"})");
    return;
  }
  BotsplashReply raw{account->config.name(), *std::move(reply)};
  // 200 only once the router stored the reply.
  absl::Status submitted = pipeline_->Submit<BotsplashReply>(
      this, std::move(raw), AnswerInboundWhenDone(responder));
  if (!submitted.ok()) AnswerRefusedInbound(*responder, submitted);
}

absl::StatusOr<InboundRoute> BotsplashConnector::Route(
    const BotsplashReply& raw) {
  return AccountInboundRoute(raw.account, raw.reply.visitor_id,
                             raw.reply.message_id);
}

absl::StatusOr<InboundConversion> BotsplashConnector::Convert(
    const BotsplashReply& raw) {
  IMB_ASSIGN_OR_RETURN(
      Account * account,
      accounts_.Get(raw.account, absl::StatusCode::kInvalidArgument));
  const Reply& reply = raw.reply;
  Visitor visitor = LoadVisitor(*account, reply.visitor_id);
  v1::Event event;
  event.set_key(absl::StrCat("botsplash:", raw.account, ":", reply.message_id));
  v1::ChannelRef* channel = event.mutable_channel();
  channel->set_platform(kPlatform);
  channel->set_account(raw.account);
  channel->set_chat_id(VisitorChat(reply.visitor_id));
  event.set_occurred_at_ms(reply.time_ms > 0 ? reply.time_ms
                                             : absl::ToUnixMillis(absl::Now()));
  v1::MessagePosted* posted = event.mutable_posted();
  posted->set_message_id(reply.message_id);
  v1::UserRef* sender = posted->mutable_sender();
  sender->set_platform(kPlatform);
  sender->set_id(reply.visitor_id);
  std::string name = reply.name;
  if (name.empty()) {
    name = std::string(absl::StripAsciiWhitespace(
        absl::StrCat(visitor.first_name, " ", visitor.last_name)));
  }
  if (name.empty()) name = visitor.phone_number;
  sender->set_display_name(name.empty() ? reply.visitor_id : name);
  posted->mutable_text()->set_text(reply.text);
  InboundConversion out;
  if (!reply.media_url.empty()) {
    v1::Attachment* att = posted->add_attachments();
    att->set_name(NameOfUrl(reply.media_url));
    att->set_mime_type("application/octet-stream");
    att->set_kind(v1::Attachment::FILE);
    InboundFile file;
    file.event_index = 0;
    file.attachment_index = 0;
    file.download =
        [this, url = reply.media_url](
            uint64_t max_bytes,
            const std::function<absl::Status(absl::string_view)>& write)
        -> absl::Status {
      HttpClientRequest req;
      req.url = url;
      absl::StatusOr<HttpResponse> r =
          SendWithBodyLimit(http_, std::move(req), max_bytes, write);
      if (absl::IsOutOfRange(r.status())) return r.status();
      if (!r.ok()) {
        if (IsRetryable(r.status())) {
          return RetryableError(
              absl::StrCat("the customer's file: ", r.status().message()));
        }
        return absl::NotFoundError(
            absl::StrCat("the customer's file could not be fetched: ",
                         r.status().message()));
      }
      if (r->status == 429 || r->status >= 500) {
        return RetryableError(
            absl::StrCat("the customer's file: HTTP ", r->status));
      }
      if (r->status != 200) {
        return absl::NotFoundError(absl::StrCat(
            "the customer's file could not be fetched (HTTP ", r->status, ")"));
      }
      return absl::OkStatus();
    };
    out.files.push_back(std::move(file));
  }
  out.events.push_back(std::move(event));
  return out;
}

}  // namespace imbridge::adapters::botsplash
