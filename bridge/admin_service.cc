#include "bridge/admin_service.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge::bridge {
namespace {

// Dead letters read and changed per transaction by a retry or drop of all
// of them: the writer is held for one page at a time, and publishes go on
// between pages.
constexpr int kDeadLetterPage = 2000;

// Dead letters listed per call, by default and at most (they carry their
// events' previews).
constexpr uint32_t kDefaultDeadLetterList = 100;
constexpr uint32_t kMaxDeadLetterList = 1000;

std::string EventKind(const v1::Event& e) {
  switch (e.kind_case()) {
    case v1::Event::kPosted:
      return "posted";
    case v1::Event::kEdited:
      return "edited";
    case v1::Event::kDeleted:
      return "deleted";
    case v1::Event::kPresence:
      return "presence";
    case v1::Event::kMembership:
      return "membership";
    default:
      return "unknown";
  }
}

std::string Preview(const v1::Event& e) {
  const std::string* text = nullptr;
  if (e.has_posted()) text = &e.posted().text().text();
  if (e.has_edited()) text = &e.edited().text().text();
  if (text == nullptr) return "";
  if (text->size() <= 200) return *text;
  size_t cut = 200;
  // Never cut a UTF-8 character in two.
  while (cut > 0 && (static_cast<unsigned char>((*text)[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return text->substr(0, cut) + "…";
}

int64_t Millis(absl::Time t) {
  return t == absl::InfinitePast() || t == absl::InfiniteFuture()
             ? 0
             : absl::ToUnixMillis(t);
}

// Counters of the router's metrics, summed over their labels.
uint64_t Total(absl::string_view name, const metrics::Labels& match) {
  return static_cast<uint64_t>(
      metrics::Registry::Default().SumCounters(name, match));
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::Run(
    grpc::CallbackServerContext* context, absl::string_view method,
    std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (deps_.admin_token.empty()) {
    reactor->Finish(grpc::Status(
        grpc::UNIMPLEMENTED,
        "the admin API is disabled: set admin_token in the router's config"));
    return reactor;
  }
  std::string token = BearerToken(context);
  if (!TokenEquals(deps_.admin_token, token)) {
    LogWarn("admin call refused: missing or wrong admin token",
            {{"method", method},
             {"peer", context->peer()},
             {"reason", token.empty() ? "missing" : "wrong"}});
    reactor->Finish(
        grpc::Status(grpc::UNAUTHENTICATED, "missing or wrong admin token"));
    return reactor;
  }
  deps_.executor->Post(
      [reactor, work = std::move(work), method = std::string(method)] {
        absl::Status status = work();
        if (!status.ok() && status.code() != absl::StatusCode::kNotFound &&
            status.code() != absl::StatusCode::kInvalidArgument &&
            status.code() != absl::StatusCode::kAlreadyExists &&
            status.code() != absl::StatusCode::kFailedPrecondition) {
          LogError("admin call failed",
                   {{"method", method}, {"error", status.message()}});
        }
        reactor->Finish(ToGrpcStatus(status));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListLinks(
    grpc::CallbackServerContext* context, const v1::ListLinksRequest*,
    v1::ListLinksResponse* response) {
  return Run(context, "ListLinks", [this, response] {
    for (v1::LinkInfo& info : deps_.catalog->ListLinks()) {
      *response->add_links() = std::move(info);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GetLink(
    grpc::CallbackServerContext* context, const v1::GetLinkRequest* request,
    v1::LinkInfo* response) {
  return Run(context, "GetLink", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(*response, deps_.catalog->GetLink(request->name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::CreateLink(
    grpc::CallbackServerContext* context, const v1::CreateLinkRequest* request,
    v1::LinkInfo* response) {
  return Run(context, "CreateLink", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(*response, deps_.catalog->CreateLink(request->link()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::UpdateLink(
    grpc::CallbackServerContext* context, const v1::UpdateLinkRequest* request,
    v1::LinkInfo* response) {
  return Run(context, "UpdateLink", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(*response, deps_.catalog->UpdateLink(request->link()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::DeleteLink(
    grpc::CallbackServerContext* context, const v1::DeleteLinkRequest* request,
    v1::DeleteLinkResponse*) {
  return Run(context, "DeleteLink", [this, request] {
    return deps_.catalog->DeleteLink(request->name());
  });
}

grpc::ServerUnaryReactor* AdminService::ListAdapters(
    grpc::CallbackServerContext* context, const v1::ListAdaptersRequest*,
    v1::ListAdaptersResponse* response) {
  return Run(context, "ListAdapters", [this, response] {
    for (const auto& session : deps_.router->Sessions()) {
      v1::AdapterInfo* a = response->add_adapters();
      a->set_credential_name(session->credential_name());
      a->set_adapter_name(session->name());
      a->set_platform(session->platform());
      *a->mutable_accounts() = session->hello().accounts();
      *a->mutable_capabilities() = session->hello().capabilities();
      a->set_connected_since_ms(Millis(session->connected_since()));
      a->set_in_flight(static_cast<uint32_t>(session->in_flight()));
      a->set_last_error(session->last_error());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListQueues(
    grpc::CallbackServerContext* context, const v1::ListQueuesRequest*,
    v1::ListQueuesResponse* response) {
  return Run(context, "ListQueues", [this, response] {
    std::map<std::string, v1::ChannelRef> targets;
    IMB_ASSIGN_OR_RETURN(std::vector<std::string> pending,
                         deps_.store->ListPendingTargets());
    for (const std::string& key : pending) targets[key];
    IMB_ASSIGN_OR_RETURN(auto dead, deps_.store->ListDeadLetterTargets());
    for (auto& [key, target] : dead) targets[key] = std::move(target);
    std::set<std::string> attached;
    for (const auto& session : deps_.router->Sessions()) {
      for (const std::string& account : session->hello().accounts()) {
        attached.insert(absl::StrCat(session->platform(), "/", account));
      }
    }
    std::map<std::string, std::string> owners;
    if (deps_.queue_owners) {
      IMB_ASSIGN_OR_RETURN(owners, deps_.queue_owners());
    }
    absl::Time now = absl::Now();
    for (auto& [key, target] : targets) {
      IMB_ASSIGN_OR_RETURN(Store::TargetCounts counts,
                           deps_.store->CountDeliveries(key));
      if (target.platform().empty() && counts.pending > 0) {
        IMB_ASSIGN_OR_RETURN(std::vector<DeliveryRecord> first,
                             deps_.store->LoadPendingDeliveries(key, 0, 1));
        if (!first.empty()) target = first[0].target;
      }
      v1::QueueInfo* q = response->add_queues();
      *q->mutable_target() = target;
      q->set_target_key(key);
      q->set_pending(counts.pending);
      q->set_dead(counts.dead);
      if (counts.pending > 0 &&
          counts.oldest_pending != absl::InfiniteFuture()) {
        q->set_oldest_age_ms(
            absl::ToInt64Milliseconds(now - counts.oldest_pending));
      }
      q->set_attached(attached.count(absl::StrCat(target.platform(), "/",
                                                  target.account())) > 0);
      if (auto owner = owners.find(key); owner != owners.end()) {
        q->set_owner(owner->second);
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListDeadLetters(
    grpc::CallbackServerContext* context,
    const v1::ListDeadLettersRequest* request,
    v1::ListDeadLettersResponse* response) {
  return Run(context, "ListDeadLetters", [this, request, response] {
    if (request->limit() > kMaxDeadLetterList) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit ", request->limit(), " is above ",
                       kMaxDeadLetterList, ": page with before_id"));
    }
    const int limit = static_cast<int>(
        request->limit() == 0 ? kDefaultDeadLetterList : request->limit());
    // Ids above the largest int64 are above every id.
    const int64_t before_id = static_cast<int64_t>(std::min<uint64_t>(
        request->before_id(), std::numeric_limits<int64_t>::max()));
    // One more than asked for tells whether another page follows.
    IMB_ASSIGN_OR_RETURN(std::vector<DeliveryRecord> dead,
                         deps_.store->ListDeadLetters(before_id, limit + 1));
    if (dead.size() > static_cast<size_t>(limit)) {
      dead.pop_back();
      response->set_next_before_id(static_cast<uint64_t>(dead.back().id));
    }
    for (const DeliveryRecord& d : dead) {
      v1::DeadLetter* out = response->add_dead_letters();
      out->set_id(static_cast<uint64_t>(d.id));
      *out->mutable_target() = d.target;
      out->set_link(d.link);
      out->set_reason(d.last_error);
      out->set_attempts(static_cast<uint32_t>(d.attempts));
      out->set_created_at_ms(Millis(d.created_at));
      if (d.event != nullptr) {
        out->set_event_key(d.event->key());
        out->set_event_kind(EventKind(*d.event));
        out->set_text_preview(Preview(*d.event));
      }
    }
    return absl::OkStatus();
  });
}

absl::Status AdminService::ActOnDeadLetterPage(
    const std::vector<DeadLetterRef>& page, bool retry, bool skip_missing,
    uint32_t* count) {
  absl::Notification done;
  absl::Status status;
  uint32_t changed = 0;
  absl::Time now = absl::Now();
  deps_.committer->Execute(
      [&page, retry, skip_missing, now, &changed](Store& store) {
        // The committer runs a task again if its group commit failed.
        changed = 0;
        for (const DeadLetterRef& ref : page) {
          absl::Status s = retry ? store.RetryDeadLetter(ref.id, now)
                                 : store.DropDeadLetter(ref.id);
          // Retried or dropped by someone else since it was read.
          if (skip_missing && absl::IsNotFound(s)) continue;
          IMB_RETURN_IF_ERROR(s);
          ++changed;
        }
        return absl::OkStatus();
      },
      [&](absl::Status s) {
        status = std::move(s);
        done.Notify();
      });
  done.WaitForNotification();
  IMB_RETURN_IF_ERROR(status);
  *count += changed;
  if (retry) {
    std::set<std::string> targets;
    for (const DeadLetterRef& ref : page) targets.insert(ref.target_key);
    for (const std::string& key : targets) deps_.dispatcher->Reload(key);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> AdminService::ActOnDeadLetters(
    const v1::DeadLetterSelection& selection, bool retry) {
  if (selection.all() == (selection.ids_size() > 0)) {
    return absl::InvalidArgumentError(
        "give dead-letter ids, or all, but not both");
  }
  uint32_t count = 0;
  if (selection.all()) {
    // Walks all dead letters by id, one page per transaction; pages hold
    // ids and targets only, never the events.
    int64_t after_id = 0;
    while (true) {
      IMB_ASSIGN_OR_RETURN(
          std::vector<DeadLetterRef> page,
          deps_.store->ListDeadLetterRefs(after_id, kDeadLetterPage));
      if (page.empty()) break;
      after_id = page.back().id;
      IMB_RETURN_IF_ERROR(ActOnDeadLetterPage(page, retry, true, &count));
    }
  } else {
    // Every id must name a dead letter before anything changes.
    std::vector<DeadLetterRef> chosen;
    std::set<uint64_t> seen;
    for (uint64_t id : selection.ids()) {
      if (!seen.insert(id).second) continue;
      IMB_ASSIGN_OR_RETURN(
          std::optional<DeadLetterRef> ref,
          deps_.store->FindDeadLetter(static_cast<int64_t>(id)));
      if (!ref.has_value()) {
        return absl::NotFoundError(absl::StrCat("no dead letter with id ", id));
      }
      chosen.push_back(std::move(*ref));
    }
    IMB_RETURN_IF_ERROR(ActOnDeadLetterPage(chosen, retry, false, &count));
  }
  if (count > 0) {
    LogInfo(retry ? "dead letters retried" : "dead letters dropped",
            {{"count", std::to_string(count)}});
  }
  return count;
}

grpc::ServerUnaryReactor* AdminService::RetryDeadLetters(
    grpc::CallbackServerContext* context,
    const v1::DeadLetterSelection* request,
    v1::DeadLetterActionResponse* response) {
  return Run(context, "RetryDeadLetters", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(uint32_t count, ActOnDeadLetters(*request, true));
    response->set_count(count);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::DropDeadLetters(
    grpc::CallbackServerContext* context,
    const v1::DeadLetterSelection* request,
    v1::DeadLetterActionResponse* response) {
  return Run(context, "DropDeadLetters", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(uint32_t count, ActOnDeadLetters(*request, false));
    response->set_count(count);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::CreateWebhook(
    grpc::CallbackServerContext* context,
    const v1::CreateWebhookRequest* request,
    v1::CreateWebhookResponse* response) {
  return Run(context, "CreateWebhook", [this, request, response] {
    IMB_ASSIGN_OR_RETURN(*response, deps_.catalog->CreateWebhook(*request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeWebhook(
    grpc::CallbackServerContext* context,
    const v1::RevokeWebhookRequest* request, v1::RevokeWebhookResponse*) {
  return Run(context, "RevokeWebhook", [this, request] {
    IMB_RETURN_IF_ERROR(deps_.catalog->RevokeWebhook(request->id()));
    // The webhook adapters remember accepted keys: answer only once none
    // of them accepts this one any more.
    if (deps_.router == nullptr) return absl::OkStatus();
    return deps_.router->RevokeWebhookOnAdapters(request->id(),
                                                 absl::Seconds(5));
  });
}

grpc::ServerUnaryReactor* AdminService::ListWebhooks(
    grpc::CallbackServerContext* context,
    const v1::ListWebhooksRequest* request,
    v1::ListWebhooksResponse* response) {
  return Run(context, "ListWebhooks", [this, request, response] {
    for (v1::WebhookInfo& w :
         deps_.catalog->ListWebhooks(request->include_revoked())) {
      *response->add_webhooks() = std::move(w);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GetStats(
    grpc::CallbackServerContext* context, const v1::GetStatsRequest*,
    v1::Stats* response) {
  return Run(context, "GetStats", [this, response] {
    response->set_router_id(deps_.store->router_id());
    response->set_started_at_ms(Millis(deps_.started_at));
    response->set_events_accepted(
        Total("imbridge_router_events_total", {{"outcome", "accepted"}}));
    response->set_events_duplicate(
        Total("imbridge_router_events_total", {{"outcome", "duplicate"}}));
    response->set_deliveries_ok(
        Total("imbridge_router_deliveries_total", {{"result", "ok"}}));
    response->set_deliveries_failed(
        Total("imbridge_router_deliveries_total", {{"result", "retry"}}));
    response->set_deliveries_dead_lettered(
        Total("imbridge_router_deliveries_total", {{"result", "dead_letter"}}));
    IMB_ASSIGN_OR_RETURN(std::vector<std::string> targets,
                         deps_.store->ListPendingTargets());
    int64_t pending = 0;
    for (const std::string& key : targets) {
      IMB_ASSIGN_OR_RETURN(Store::TargetCounts counts,
                           deps_.store->CountDeliveries(key));
      pending += counts.pending;
    }
    response->set_pending_deliveries(pending);
    IMB_ASSIGN_OR_RETURN(int64_t dead, deps_.store->CountDeadLetters());
    response->set_dead_letters(dead);
    response->set_attached_adapters(
        static_cast<uint32_t>(deps_.router->Sessions().size()));
    response->set_links(static_cast<uint32_t>(deps_.catalog->link_count()));
    return absl::OkStatus();
  });
}

grpc::Status WebhookDirectoryService::Authorize(
    grpc::CallbackServerContext* context, absl::string_view method) const {
  const v1::AdapterCredential* credential =
      router_->AuthenticateAdapter(context, method);
  if (credential == nullptr) {
    return grpc::Status(grpc::UNAUTHENTICATED,
                        "missing or wrong adapter token");
  }
  if (!credential->platforms().empty()) {
    bool allowed = false;
    for (const std::string& p : credential->platforms()) {
      allowed = allowed || p == kWebhookPlatform;
    }
    if (!allowed) {
      return grpc::Status(grpc::PERMISSION_DENIED,
                          "this token may not act as platform 'webhook'");
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* WebhookDirectoryService::CheckIncomingKey(
    grpc::CallbackServerContext* context,
    const v1::CheckIncomingKeyRequest* request, v1::WebhookInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(context, "CheckIncomingKey");
  if (!status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  executor_->Post([this, reactor, request, response] {
    absl::StatusOr<v1::WebhookInfo> info =
        catalog_->CheckIncomingKey(request->id(), request->key());
    if (info.ok()) {
      *response = *std::move(info);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(ToGrpcStatus(info.status()));
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* WebhookDirectoryService::GetOutgoing(
    grpc::CallbackServerContext* context, const v1::GetOutgoingRequest* request,
    v1::OutgoingWebhook* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(context, "GetOutgoing");
  if (status.ok()) {
    absl::StatusOr<v1::OutgoingWebhook> out =
        catalog_->GetOutgoing(request->id());
    if (out.ok()) {
      *response = *std::move(out);
    } else {
      status = ToGrpcStatus(out.status());
    }
  }
  reactor->Finish(status);
  return reactor;
}

}  // namespace imbridge::bridge
