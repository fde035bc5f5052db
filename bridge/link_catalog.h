#ifndef IMBRIDGE_BRIDGE_LINK_CATALOG_H_
#define IMBRIDGE_BRIDGE_LINK_CATALOG_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "bridge/committer.h"
#include "bridge/store.h"
#include "common/executor.h"
#include "imbridge/v1/admin.pb.h"
#include "imbridge/v1/config.pb.h"

namespace imbridge::bridge {

// The platform name of generic webhooks' link members.
inline constexpr absl::string_view kWebhookPlatform = "webhook";

// Every link the router relays through, and the generic webhooks attached to
// them; the operator's side of the link table.
//
// Links come from two places. Links in the config file are read-only here
// (changed by editing the file and restarting). Links created through the
// Admin API are stored in the database and survive restarts. Names are
// unique across both: a runtime link cannot take a config link's name, and
// a config link added later with a runtime link's name stops the router at
// start with both named. Webhooks belong to a link of either kind and add a
// member {platform: webhook, account, chat_id: <webhook id>} to it (incoming:
// direction in; outgoing: direction out) until revoked.
//
// Every change is written through the committer (the store's single writer)
// and waits for its commit, then the new link table is swapped into the
// LinkRegistry, so it takes effect for the next publish.
//
// Several routers may share the store (PostgreSQL). Each commit of a record
// then wakes every router (OnRecordsChanged), which reads the runtime links
// and webhooks again, so a link made through one router's Admin API is
// relayed by all of them within milliseconds. Webhook keys are stricter:
// with a shared store (SetSharedStore) a key is checked against its stored
// record, so a revocation committed through any router holds for the next
// check on every router.
//
// Incoming webhook keys are kept only as a salted SHA-256 hash and compared
// in constant time. Outgoing webhook secrets are kept as they are, because
// the router hands them to the webhook adapter to sign with.
//
// Thread-safe. Mutations block until committed; call them from threads that
// may block (not the committer's).
class LinkCatalog {
 public:
  // `store`, `committer` and `registry` must outlive the catalog.
  LinkCatalog(Store* store, Committer* committer, LinkRegistry* registry,
              std::vector<v1::Link> config_links);
  ~LinkCatalog();

  // Reads the runtime links and webhooks from the store and installs the
  // combined link table. Fails if a runtime link's name clashes with the
  // config file's or the combined table is invalid. Members waiting on a
  // thread root are looked up again (the root may have been resolved just
  // before a crash) and the committer watches the pending ones.
  absl::Status Load();

  // The store is shared with other routers (call before Load): keys are
  // checked against the stored webhook (one read per check).
  void SetSharedStore() { shared_store_ = true; }
  // Another router (or this one) committed a change to the records: reads
  // the runtime links and webhooks again on the catalog's own thread,
  // without blocking the caller. Calls that arrive while a reading is queued
  // share it. A runtime link whose name clashes with this router's config
  // file is left out (and logged) instead of stopping the router; a reading
  // that fails leaves the table as it was (logged).
  void OnRecordsChanged();

  std::vector<v1::LinkInfo> ListLinks() const;
  absl::StatusOr<v1::LinkInfo> GetLink(absl::string_view name) const;
  absl::StatusOr<v1::LinkInfo> CreateLink(const v1::Link& link);
  absl::StatusOr<v1::LinkInfo> UpdateLink(const v1::Link& link);
  // Refuses (kFailedPrecondition) while live webhooks are attached.
  absl::Status DeleteLink(absl::string_view name);

  // For adapters (router.proto LinkRequest; the caller checked that a member
  // is the adapter's): creates a runtime link owned by `owner_platform`.
  // An existing runtime link with the same name and an identical definition
  // is returned as it is (idempotent, whoever owns it); the same name with
  // another definition, or a config link's name, is kAlreadyExists. The
  // members numbered in `rooted` (a thread root's) compare equal whatever
  // their thread_id and pending_thread_root. A member with a
  // pending_thread_root is looked up again in the commit that stores the
  // link, and stored with its thread (or as the whole chat) if the root was
  // resolved meanwhile.
  absl::StatusOr<v1::LinkInfo> CreateOwnedLink(
      const v1::Link& link, const std::string& owner_platform,
      const std::vector<uint32_t>& rooted = {});
  // The runtime link named like `link` if its definition is identical to
  // `link` (with `rooted` as for CreateOwnedLink), else std::nullopt.
  std::optional<v1::LinkInfo> FindSameRuntimeLink(
      const v1::Link& link, const std::vector<uint32_t>& rooted) const;

  // Rewrites the runtime links whose members wait on the thread roots in
  // `resolved` (LinkMember.pending_thread_root): thread_id set to the copy,
  // or the member left the whole chat. Returns at once; the rewrite runs on
  // a thread of the catalog's own (Committer::SetThreadRootsResolved).
  void OnThreadRootsResolved(std::vector<ResolvedThreadRoot> resolved);
  // Runs the rewrites and readings posted so far and refuses later ones
  // (they are done by the next Load). Call before the committer stops.
  void StopRewrites();
  // Deletes runtime link `name` if `owner_platform` owns it and `may_touch`
  // accepts its definition; kPermissionDenied if not, kFailedPrecondition
  // for a config link, kNotFound if there is none.
  absl::Status DeleteOwnedLink(
      absl::string_view name, const std::string& owner_platform,
      const std::function<absl::Status(const v1::Link&)>& may_touch);
  size_t link_count() const;

  // Returns the webhook and its key (incoming) or signing secret (outgoing).
  absl::StatusOr<v1::CreateWebhookResponse> CreateWebhook(
      const v1::CreateWebhookRequest& request);
  absl::Status RevokeWebhook(absl::string_view id);
  std::vector<v1::WebhookInfo> ListWebhooks(bool include_revoked) const;

  // The incoming webhook `id` if `key` is its key and it is not revoked;
  // kPermissionDenied otherwise (the same answer for every reason).
  absl::StatusOr<v1::WebhookInfo> CheckIncomingKey(absl::string_view id,
                                                   absl::string_view key) const;
  // The outgoing webhook `id` with its secret. kNotFound for an unknown id,
  // kFailedPrecondition once revoked.
  absl::StatusOr<v1::OutgoingWebhook> GetOutgoing(absl::string_view id) const;

 private:
  struct Webhook {
    v1::WebhookInfo info;
    std::string key_salt;  // incoming
    std::string key_hash;  // incoming: SHA-256(salt || key)
    std::string secret;    // outgoing
  };

  // Load(); with `at_start` false (OnRecordsChanged), a runtime link that
  // clashes with a config link is skipped instead of failing.
  absl::Status ReadRecords(bool at_start);
  static absl::StatusOr<Webhook> ParseWebhook(absl::string_view id,
                                              absl::string_view payload);
  // `w`'s info if `key` is its key and it is an unrevoked incoming webhook.
  static absl::StatusOr<v1::WebhookInfo> VerifyKey(const Webhook& w,
                                                   absl::string_view key);
  // The combined table from config links, `runtime` and `webhooks`.
  absl::StatusOr<std::shared_ptr<const LinkTable>> BuildTable(
      const std::map<std::string, v1::LinkInfo>& runtime,
      const std::map<std::string, Webhook>& webhooks,
      absl::string_view source) const;
  v1::LinkInfo InfoFor(const v1::LinkInfo& base) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const v1::Link* ConfigLink(absl::string_view name) const;
  // CreateLink with an owner (empty: the operator's).
  absl::StatusOr<v1::LinkInfo> Create(const v1::Link& link,
                                      const std::string& owner_platform,
                                      bool idempotent,
                                      const std::vector<uint32_t>& rooted);
  // DeleteLink; with an owner (non-null), only a link of that owner that
  // `may_touch` accepts.
  absl::Status Delete(
      absl::string_view name, const std::string* owner_platform,
      const std::function<absl::Status(const v1::Link&)>* may_touch);
  // Runs `task` on the committer and waits for its commit.
  absl::Status Write(Committer::StoreTask task);
  // Inside a StoreTask: looks up the roots of `link`'s pending members
  // (Committer::WatchThreadRoot) and narrows each resolved one to its thread
  // or the whole chat. Returns whether `link` changed.
  absl::StatusOr<bool> ResolvePendingMembers(Store& store,
                                             v1::Link* link) const;
  void RewriteResolved(const std::vector<ResolvedThreadRoot>& resolved);

  Store* const store_;
  Committer* const committer_;
  LinkRegistry* const registry_;
  const std::vector<v1::Link> config_links_;
  bool shared_store_ = false;
  // A reading of the records is queued and has not started.
  std::atomic<bool> reading_queued_{false};

  // Serializes mutations (validate, write, swap) against each other.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_;
  std::map<std::string, v1::LinkInfo> runtime_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Webhook> webhooks_ ABSL_GUARDED_BY(mu_);

  absl::Mutex rewrites_mu_;
  // Null once stopped.
  std::unique_ptr<Executor> rewrites_ ABSL_GUARDED_BY(rewrites_mu_) =
      std::make_unique<Executor>(1);
};

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_BRIDGE_LINK_CATALOG_H_
