#include "bridge/link_catalog.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bridge/link_table.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "imbridge/v1/router_state.pb.h"

namespace imbridge::bridge {
namespace {

constexpr char kLinkRecord[] = "link";
constexpr char kWebhookRecord[] = "webhook";

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    // The system's entropy source failing is not survivable for key
    // generation; never hand out a predictable key.
    LogError("RAND_bytes failed; cannot generate webhook keys");
    std::abort();
  }
  return out;
}

std::string SaltedHash(absl::string_view salt, absl::string_view key) {
  std::string input = absl::StrCat(salt, key);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  OPENSSL_cleanse(input.data(), input.size());
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

v1::LinkMember WebhookMember(const v1::WebhookInfo& w) {
  v1::LinkMember m;
  m.set_platform(std::string(kWebhookPlatform));
  m.set_account(w.account());
  m.set_chat_id(w.id());
  m.set_direction(w.direction() == v1::INCOMING ? v1::IN : v1::OUT);
  return m;
}

// Whether `a` and `b` define the same link, the thread of the members
// numbered in `rooted` aside.
bool SameDefinition(const v1::Link& a, const v1::Link& b,
                    const std::vector<uint32_t>& rooted) {
  if (rooted.empty()) {
    return google::protobuf::util::MessageDifferencer::Equals(a, b);
  }
  v1::Link x = a;
  v1::Link y = b;
  for (uint32_t i : rooted) {
    for (v1::Link* l : {&x, &y}) {
      if (i >= static_cast<uint32_t>(l->members_size())) continue;
      l->mutable_members(i)->clear_thread_id();
      l->mutable_members(i)->clear_pending_thread_root();
    }
  }
  return google::protobuf::util::MessageDifferencer::Equals(x, y);
}

// Narrows `member`, waiting on a thread root, as the root's `state` says.
// Returns whether it changed.
bool ApplyRootState(const ThreadRootState& state, const std::string& link,
                    v1::LinkMember* member) {
  switch (state.kind) {
    case ThreadRootState::kPending:
      return false;
    case ThreadRootState::kThread:
      member->set_thread_id(state.thread_id);
      break;
    case ThreadRootState::kWholeChat:
      LogWarn(
          "link member's thread root has no copy; the member is the whole "
          "chat",
          {{"link", link},
           {"chat", ChannelKey(MemberChannel(*member), false)},
           {"root_event", std::to_string(member->pending_thread_root())}});
      break;
  }
  member->clear_pending_thread_root();
  return true;
}

absl::Status RefusePendingRoots(const v1::Link& link) {
  for (int i = 0; i < link.members_size(); ++i) {
    if (link.members(i).pending_thread_root() != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "link.members[", i,
          "].pending_thread_root: set by the router only (an adapter's "
          "member_thread_roots)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

LinkCatalog::~LinkCatalog() { StopRewrites(); }

void LinkCatalog::StopRewrites() {
  std::unique_ptr<Executor> rewrites;
  {
    absl::MutexLock lock(&rewrites_mu_);
    rewrites = std::move(rewrites_);
  }
  rewrites.reset();  // runs the rewrites posted so far
}

void LinkCatalog::OnThreadRootsResolved(
    std::vector<ResolvedThreadRoot> resolved) {
  absl::MutexLock lock(&rewrites_mu_);
  if (rewrites_ == nullptr) return;  // done by the next Load
  rewrites_->Post(
      [this, resolved = std::move(resolved)] { RewriteResolved(resolved); });
}

absl::StatusOr<bool> LinkCatalog::ResolvePendingMembers(Store& store,
                                                        v1::Link* link) const {
  bool changed = false;
  for (v1::LinkMember& m : *link->mutable_members()) {
    if (m.pending_thread_root() == 0) continue;
    IMB_ASSIGN_OR_RETURN(ThreadRootState state,
                         committer_->WatchThreadRoot(
                             store, m.pending_thread_root(), MemberChannel(m)));
    changed = ApplyRootState(state, link->name(), &m) || changed;
  }
  return changed;
}

void LinkCatalog::RewriteResolved(
    const std::vector<ResolvedThreadRoot>& resolved) {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    runtime = runtime_;
    webhooks = webhooks_;
  }
  std::vector<std::pair<std::string, std::string>> records;
  for (auto& [name, info] : runtime) {
    bool changed = false;
    for (v1::LinkMember& m : *info.mutable_link()->mutable_members()) {
      if (m.pending_thread_root() == 0) continue;
      const std::string chat_key =
          ChannelKey(MemberChannel(m), /*with_thread=*/false);
      for (const ResolvedThreadRoot& r : resolved) {
        if (r.root_event == m.pending_thread_root() && r.chat_key == chat_key) {
          changed = ApplyRootState(r.state, name, &m) || changed;
          break;
        }
      }
    }
    if (changed) records.emplace_back(name, info.SerializeAsString());
  }
  if (records.empty()) return;
  absl::StatusOr<std::shared_ptr<const LinkTable>> table =
      BuildTable(runtime, webhooks, "link");
  absl::Status written = table.status();
  if (written.ok()) {
    written = Write([&records](Store& store) {
      for (const auto& [name, payload] : records) {
        IMB_RETURN_IF_ERROR(store.PutRecord(kLinkRecord, name, payload));
      }
      return absl::OkStatus();
    });
  }
  if (!written.ok()) {
    // Publishes still reach the thread (the committer redirects them); the
    // next Load rewrites the links.
    LogError("cannot narrow links to their resolved threads",
             {{"links", std::to_string(records.size())},
              {"error", written.message()}});
    return;
  }
  registry_->Set(*std::move(table));
  for (const auto& [name, payload] : records) {
    LogInfo("link member's thread resolved", {{"link", name}});
  }
  absl::MutexLock lock(&mu_);
  runtime_ = std::move(runtime);
}

LinkCatalog::LinkCatalog(Store* store, Committer* committer,
                         LinkRegistry* registry,
                         std::vector<v1::Link> config_links)
    : store_(store),
      committer_(committer),
      registry_(registry),
      config_links_(std::move(config_links)) {}

const v1::Link* LinkCatalog::ConfigLink(absl::string_view name) const {
  for (const v1::Link& l : config_links_) {
    if (l.name() == name) return &l;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const LinkTable>> LinkCatalog::BuildTable(
    const std::map<std::string, v1::LinkInfo>& runtime,
    const std::map<std::string, Webhook>& webhooks,
    absl::string_view source) const {
  google::protobuf::RepeatedPtrField<v1::Link> all;
  for (const v1::Link& l : config_links_) *all.Add() = l;
  for (const auto& [name, info] : runtime) *all.Add() = info.link();
  for (const auto& [id, w] : webhooks) {
    if (w.info.revoked_at_ms() != 0) continue;
    for (v1::Link& l : all) {
      if (l.name() == w.info.link()) {
        *l.add_members() = WebhookMember(w.info);
        break;
      }
    }
  }
  // A link needs two members; a runtime link of one member plus a webhook is
  // fine, and so is a link of one member waiting for its webhook: such links
  // are left out of the table until they can carry anything.
  google::protobuf::RepeatedPtrField<v1::Link> usable;
  for (const v1::Link& l : all) {
    if (l.members_size() >= 2) *usable.Add() = l;
  }
  return LinkTable::Build(usable, source);
}

absl::Status LinkCatalog::Load() { return ReadRecords(/*at_start=*/true); }

void LinkCatalog::OnRecordsChanged() {
  if (reading_queued_.exchange(true)) return;
  absl::MutexLock lock(&rewrites_mu_);
  if (rewrites_ == nullptr) return;  // done by the next Load
  rewrites_->Post([this] {
    // Changes that arrive from here on queue another reading.
    reading_queued_.store(false);
    if (absl::Status s = ReadRecords(/*at_start=*/false); !s.ok()) {
      LogError("runtime links and webhooks not read again; the table stays",
               {{"error", s.message()}});
    }
  });
}

absl::StatusOr<LinkCatalog::Webhook> LinkCatalog::ParseWebhook(
    absl::string_view id, absl::string_view payload) {
  v1::StoredWebhook stored;
  if (!stored.ParseFromArray(payload.data(),
                             static_cast<int>(payload.size()))) {
    return absl::DataLossError(
        absl::StrCat("stored webhook '", id, "' cannot be read"));
  }
  Webhook w;
  w.info = stored.info();
  w.key_salt = stored.key_salt();
  w.key_hash = stored.key_hash();
  w.secret = stored.secret();
  return w;
}

absl::Status LinkCatalog::ReadRecords(bool at_start) {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  IMB_ASSIGN_OR_RETURN(auto links, store_->ListRecords(kLinkRecord));
  for (const auto& [name, payload] : links) {
    v1::LinkInfo info;
    if (!info.ParseFromString(payload)) {
      return absl::DataLossError(
          absl::StrCat("stored link '", name, "' cannot be read"));
    }
    if (ConfigLink(name) != nullptr) {
      const std::string clash = absl::StrCat(
          "link '", name,
          "' is defined both in the config file and at runtime (imbridgectl); "
          "rename one: remove it from the file, or delete the runtime link "
          "with `imbridgectl link delete ",
          name, "` after starting without the file's");
      if (at_start) return absl::FailedPreconditionError(clash);
      // Made through another router whose config file lacks the link.
      LogError("runtime link left out: its name is a config link's",
               {{"link", name}, {"error", clash}});
      continue;
    }
    runtime.emplace(name, std::move(info));
  }
  for (const v1::Link& l : config_links_) {
    IMB_RETURN_IF_ERROR(RefusePendingRoots(l));
  }
  // Roots resolved just before a crash narrow their members now; the
  // pending ones are watched by the committer from here on.
  bool waiting = false;
  for (const auto& [name, info] : runtime) {
    for (const v1::LinkMember& m : info.link().members()) {
      waiting = waiting || m.pending_thread_root() != 0;
    }
  }
  if (waiting)
    IMB_RETURN_IF_ERROR(Write([this, &runtime](Store& store) {
      for (auto& [name, info] : runtime) {
        IMB_ASSIGN_OR_RETURN(bool changed,
                             ResolvePendingMembers(store, info.mutable_link()));
        if (!changed) continue;
        IMB_RETURN_IF_ERROR(
            store.PutRecord(kLinkRecord, name, info.SerializeAsString()));
      }
      return absl::OkStatus();
    }));
  IMB_ASSIGN_OR_RETURN(auto hooks, store_->ListRecords(kWebhookRecord));
  for (const auto& [id, payload] : hooks) {
    IMB_ASSIGN_OR_RETURN(Webhook w, ParseWebhook(id, payload));
    webhooks.emplace(id, std::move(w));
  }
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "links"));
  registry_->Set(std::move(table));
  absl::MutexLock lock(&mu_);
  runtime_ = std::move(runtime);
  webhooks_ = std::move(webhooks);
  return absl::OkStatus();
}

absl::Status LinkCatalog::Write(Committer::StoreTask task) {
  absl::Notification done;
  absl::Status result;
  committer_->Execute(std::move(task), [&](absl::Status s) {
    result = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

v1::LinkInfo LinkCatalog::InfoFor(const v1::LinkInfo& base) const {
  v1::LinkInfo info = base;
  info.clear_webhook_ids();
  for (const auto& [id, w] : webhooks_) {
    if (w.info.link() == base.link().name() && w.info.revoked_at_ms() == 0) {
      info.add_webhook_ids(id);
    }
  }
  return info;
}

std::vector<v1::LinkInfo> LinkCatalog::ListLinks() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, v1::LinkInfo> sorted;
  for (const v1::Link& l : config_links_) {
    v1::LinkInfo info;
    *info.mutable_link() = l;
    info.set_source(v1::CONFIG);
    sorted.emplace(l.name(), InfoFor(info));
  }
  for (const auto& [name, info] : runtime_) sorted.emplace(name, InfoFor(info));
  std::vector<v1::LinkInfo> out;
  for (auto& [name, info] : sorted) out.push_back(std::move(info));
  return out;
}

size_t LinkCatalog::link_count() const {
  absl::MutexLock lock(&mu_);
  return config_links_.size() + runtime_.size();
}

absl::StatusOr<v1::LinkInfo> LinkCatalog::GetLink(
    absl::string_view name) const {
  for (const v1::LinkInfo& info : ListLinks()) {
    if (info.link().name() == name) return info;
  }
  return absl::NotFoundError(absl::StrCat("no link named '", name, "'"));
}

absl::StatusOr<v1::LinkInfo> LinkCatalog::CreateLink(const v1::Link& link) {
  IMB_RETURN_IF_ERROR(RefusePendingRoots(link));
  return Create(link, "", /*idempotent=*/false, {});
}

absl::StatusOr<v1::LinkInfo> LinkCatalog::CreateOwnedLink(
    const v1::Link& link, const std::string& owner_platform,
    const std::vector<uint32_t>& rooted) {
  return Create(link, owner_platform, /*idempotent=*/true, rooted);
}

std::optional<v1::LinkInfo> LinkCatalog::FindSameRuntimeLink(
    const v1::Link& link, const std::vector<uint32_t>& rooted) const {
  absl::MutexLock lock(&mu_);
  auto existing = runtime_.find(link.name());
  if (existing == runtime_.end() ||
      !SameDefinition(existing->second.link(), link, rooted)) {
    return std::nullopt;
  }
  return InfoFor(existing->second);
}

absl::StatusOr<v1::LinkInfo> LinkCatalog::Create(
    const v1::Link& link, const std::string& owner_platform, bool idempotent,
    const std::vector<uint32_t>& rooted) {
  absl::MutexLock write(&write_mu_);
  if (link.name().empty()) {
    return absl::InvalidArgumentError("link.name: required");
  }
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    auto existing = runtime_.find(link.name());
    if (idempotent && existing != runtime_.end() &&
        SameDefinition(existing->second.link(), link, rooted)) {
      return InfoFor(existing->second);
    }
    if (ConfigLink(link.name()) != nullptr || existing != runtime_.end()) {
      return absl::AlreadyExistsError(
          absl::StrCat("a link named '", link.name(), "' exists"));
    }
    runtime = runtime_;
    webhooks = webhooks_;
  }
  if (link.members_size() < 2) {
    return absl::InvalidArgumentError(
        "link.members: at least two members are needed");
  }
  v1::LinkInfo info;
  *info.mutable_link() = link;
  info.set_source(v1::RUNTIME);
  info.set_created_at_ms(absl::ToUnixMillis(absl::Now()));
  info.set_owner_platform(owner_platform);
  runtime[link.name()] = info;
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "link"));
  // A pending thread root is looked up again in the link's own commit: one
  // resolved since the caller looked is not watched any more.
  bool resolved = false;
  IMB_RETURN_IF_ERROR(Write([this, &info, &resolved](Store& store) {
    IMB_ASSIGN_OR_RETURN(resolved,
                         ResolvePendingMembers(store, info.mutable_link()));
    return store.PutRecord(kLinkRecord, info.link().name(),
                           info.SerializeAsString());
  }));
  if (resolved) {
    runtime[link.name()] = info;
    IMB_ASSIGN_OR_RETURN(table, BuildTable(runtime, webhooks, "link"));
  }
  registry_->Set(std::move(table));
  LogInfo("link created",
          {{"link", link.name()},
           {"members", std::to_string(link.members_size())},
           {"owner", owner_platform.empty() ? "operator" : owner_platform}});
  absl::MutexLock lock(&mu_);
  runtime_ = std::move(runtime);
  return InfoFor(info);
}

absl::StatusOr<v1::LinkInfo> LinkCatalog::UpdateLink(const v1::Link& link) {
  IMB_RETURN_IF_ERROR(RefusePendingRoots(link));
  absl::MutexLock write(&write_mu_);
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    if (ConfigLink(link.name()) != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("link '", link.name(),
                       "' is defined in the config file; edit the file and "
                       "restart the router"));
    }
    if (runtime_.count(link.name()) == 0) {
      return absl::NotFoundError(
          absl::StrCat("no link named '", link.name(), "'"));
    }
    runtime = runtime_;
    webhooks = webhooks_;
  }
  if (link.members_size() < 2) {
    return absl::InvalidArgumentError(
        "link.members: at least two members are needed");
  }
  v1::LinkInfo& info = runtime[link.name()];
  *info.mutable_link() = link;
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "link"));
  std::string payload = info.SerializeAsString();
  IMB_RETURN_IF_ERROR(Write([name = link.name(), payload](Store& store) {
    return store.PutRecord(kLinkRecord, name, payload);
  }));
  registry_->Set(std::move(table));
  LogInfo("link updated", {{"link", link.name()},
                           {"members", std::to_string(link.members_size())}});
  v1::LinkInfo result = info;
  absl::MutexLock lock(&mu_);
  runtime_ = std::move(runtime);
  return InfoFor(result);
}

absl::Status LinkCatalog::DeleteLink(absl::string_view name) {
  return Delete(name, nullptr, nullptr);
}

absl::Status LinkCatalog::DeleteOwnedLink(
    absl::string_view name, const std::string& owner_platform,
    const std::function<absl::Status(const v1::Link&)>& may_touch) {
  return Delete(name, &owner_platform, &may_touch);
}

absl::Status LinkCatalog::Delete(
    absl::string_view name, const std::string* owner_platform,
    const std::function<absl::Status(const v1::Link&)>* may_touch) {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    if (ConfigLink(name) != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("link '", name,
                       "' is defined in the config file; remove it there and "
                       "restart the router"));
    }
    auto existing = runtime_.find(std::string(name));
    if (existing == runtime_.end()) {
      return absl::NotFoundError(absl::StrCat("no link named '", name, "'"));
    }
    if (owner_platform != nullptr) {
      if (existing->second.owner_platform() != *owner_platform) {
        return absl::PermissionDeniedError(absl::StrCat(
            "link '", name, "' was not created by a ", *owner_platform,
            " adapter; only the operator (imbridgectl) may delete it"));
      }
      IMB_RETURN_IF_ERROR((*may_touch)(existing->second.link()));
    }
    for (const auto& [id, w] : webhooks_) {
      if (w.info.link() == name && w.info.revoked_at_ms() == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("webhook ", id, " is attached to link '", name,
                         "'; revoke it first"));
      }
    }
    runtime = runtime_;
    webhooks = webhooks_;
  }
  runtime.erase(std::string(name));
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "link"));
  IMB_RETURN_IF_ERROR(Write([n = std::string(name)](Store& store) {
    return store.DeleteRecord(kLinkRecord, n);
  }));
  registry_->Set(std::move(table));
  LogInfo("link deleted", {{"link", name}});
  absl::MutexLock lock(&mu_);
  runtime_ = std::move(runtime);
  return absl::OkStatus();
}

absl::StatusOr<v1::CreateWebhookResponse> LinkCatalog::CreateWebhook(
    const v1::CreateWebhookRequest& request) {
  absl::MutexLock write(&write_mu_);
  if (request.direction() != v1::INCOMING &&
      request.direction() != v1::OUTGOING) {
    return absl::InvalidArgumentError(
        "direction: must be INCOMING or OUTGOING");
  }
  if (request.direction() == v1::OUTGOING &&
      !absl::StartsWith(request.url(), "http://") &&
      !absl::StartsWith(request.url(), "https://")) {
    return absl::InvalidArgumentError(
        "url: an outgoing webhook needs an http:// or https:// URL");
  }
  if (request.direction() == v1::INCOMING && !request.url().empty()) {
    return absl::InvalidArgumentError("url: only outgoing webhooks have a URL");
  }
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    if (ConfigLink(request.link()) == nullptr &&
        runtime_.count(request.link()) == 0) {
      return absl::NotFoundError(
          absl::StrCat("link: no link named '", request.link(), "'"));
    }
    runtime = runtime_;
    webhooks = webhooks_;
  }
  Webhook w;
  std::string id = "wh" + absl::BytesToHexString(RandomBytes(8));
  w.info.set_id(id);
  w.info.set_link(request.link());
  w.info.set_direction(request.direction());
  w.info.set_url(request.url());
  w.info.set_account(request.account().empty() ? "default" : request.account());
  w.info.set_description(request.description());
  w.info.set_created_at_ms(absl::ToUnixMillis(absl::Now()));
  std::string secret;
  if (request.direction() == v1::INCOMING) {
    secret = "imbk_" + absl::BytesToHexString(RandomBytes(24));
    w.key_salt = RandomBytes(16);
    w.key_hash = SaltedHash(w.key_salt, secret);
  } else {
    secret = "imbs_" + absl::BytesToHexString(RandomBytes(24));
    w.secret = secret;
  }
  webhooks[id] = w;
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "webhook"));
  v1::StoredWebhook stored;
  *stored.mutable_info() = w.info;
  stored.set_key_salt(w.key_salt);
  stored.set_key_hash(w.key_hash);
  stored.set_secret(w.secret);
  std::string payload = stored.SerializeAsString();
  IMB_RETURN_IF_ERROR(Write([id, payload](Store& store) {
    return store.PutRecord(kWebhookRecord, id, payload);
  }));
  registry_->Set(std::move(table));
  LogInfo("webhook created",
          {{"webhook", id},
           {"link", request.link()},
           {"direction", v1::WebhookDirection_Name(request.direction())}});
  {
    absl::MutexLock lock(&mu_);
    webhooks_ = std::move(webhooks);
  }
  v1::CreateWebhookResponse response;
  *response.mutable_webhook() = w.info;
  response.set_secret(secret);
  return response;
}

absl::Status LinkCatalog::RevokeWebhook(absl::string_view id) {
  absl::MutexLock write(&write_mu_);
  std::map<std::string, v1::LinkInfo> runtime;
  std::map<std::string, Webhook> webhooks;
  {
    absl::MutexLock lock(&mu_);
    auto it = webhooks_.find(std::string(id));
    if (it == webhooks_.end()) {
      return absl::NotFoundError(absl::StrCat("no webhook with id '", id, "'"));
    }
    if (it->second.info.revoked_at_ms() != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("webhook ", id, " is already revoked"));
    }
    runtime = runtime_;
    webhooks = webhooks_;
  }
  Webhook& w = webhooks[std::string(id)];
  w.info.set_revoked_at_ms(absl::ToUnixMillis(absl::Now()));
  IMB_ASSIGN_OR_RETURN(auto table, BuildTable(runtime, webhooks, "webhook"));
  v1::StoredWebhook stored;
  *stored.mutable_info() = w.info;
  stored.set_key_salt(w.key_salt);
  stored.set_key_hash(w.key_hash);
  stored.set_secret(w.secret);
  std::string payload = stored.SerializeAsString();
  // Refuse the key at once, before the commit: a revoked key must never be
  // accepted again, even if the write then fails (the operator retries).
  {
    absl::MutexLock lock(&mu_);
    webhooks_[std::string(id)].info.set_revoked_at_ms(w.info.revoked_at_ms());
  }
  IMB_RETURN_IF_ERROR(Write([id = std::string(id), payload](Store& store) {
    return store.PutRecord(kWebhookRecord, id, payload);
  }));
  registry_->Set(std::move(table));
  LogInfo("webhook revoked", {{"webhook", id}});
  absl::MutexLock lock(&mu_);
  webhooks_ = std::move(webhooks);
  return absl::OkStatus();
}

std::vector<v1::WebhookInfo> LinkCatalog::ListWebhooks(
    bool include_revoked) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::WebhookInfo> out;
  for (const auto& [id, w] : webhooks_) {
    if (w.info.revoked_at_ms() != 0 && !include_revoked) continue;
    out.push_back(w.info);
  }
  return out;
}

absl::StatusOr<v1::WebhookInfo> LinkCatalog::VerifyKey(const Webhook& w,
                                                       absl::string_view key) {
  const absl::Status denied =
      absl::PermissionDeniedError("unknown webhook or wrong key");
  if (w.info.direction() != v1::INCOMING || w.info.revoked_at_ms() != 0) {
    return denied;
  }
  std::string hash = SaltedHash(w.key_salt, key);
  if (hash.size() != w.key_hash.size() ||
      CRYPTO_memcmp(hash.data(), w.key_hash.data(), hash.size()) != 0) {
    return denied;
  }
  return w.info;
}

absl::StatusOr<v1::WebhookInfo> LinkCatalog::CheckIncomingKey(
    absl::string_view id, absl::string_view key) const {
  if (shared_store_) {
    // The stored record, not this router's copy: another router may have
    // revoked (or made) the webhook a moment ago.
    IMB_ASSIGN_OR_RETURN(std::optional<std::string> payload,
                         store_->GetRecord(kWebhookRecord, id));
    if (!payload.has_value()) {
      return absl::PermissionDeniedError("unknown webhook or wrong key");
    }
    IMB_ASSIGN_OR_RETURN(Webhook w, ParseWebhook(id, *payload));
    return VerifyKey(w, key);
  }
  absl::MutexLock lock(&mu_);
  auto it = webhooks_.find(std::string(id));
  if (it == webhooks_.end()) {
    return absl::PermissionDeniedError("unknown webhook or wrong key");
  }
  return VerifyKey(it->second, key);
}

absl::StatusOr<v1::OutgoingWebhook> LinkCatalog::GetOutgoing(
    absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto it = webhooks_.find(std::string(id));
  if (it == webhooks_.end() || it->second.info.direction() != v1::OUTGOING) {
    return absl::NotFoundError(
        absl::StrCat("no outgoing webhook with id '", id, "'"));
  }
  if (it->second.info.revoked_at_ms() != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("webhook ", id, " was revoked"));
  }
  v1::OutgoingWebhook out;
  *out.mutable_webhook() = it->second.info;
  out.set_secret(it->second.secret);
  return out;
}

}  // namespace imbridge::bridge
