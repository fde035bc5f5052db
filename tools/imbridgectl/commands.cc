#include "tools/imbridgectl/commands.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/imbridgectl/render.h"

namespace imbridge::ctl {
namespace {

// Prints a successful answer: JSON with --json, else the human rendering.
template <typename Message, typename Render>
int Print(const absl::StatusOr<Message>& result, const Invocation& inv,
          std::ostream& out, std::ostream& err, const Render& render) {
  if (!result.ok()) {
    err << CallError(result.status()) << "\n";
    return kExitCallFailed;
  }
  out << (inv.global.json ? ToJson(*result) : render(*result));
  return kExitOk;
}

// For calls whose answer is empty: `done` for people, {} as JSON.
int PrintDone(const absl::Status& status, const Invocation& inv,
              std::ostream& out, std::ostream& err, const std::string& done) {
  if (!status.ok()) {
    err << CallError(status) << "\n";
    return kExitCallFailed;
  }
  out << (inv.global.json ? "{}\n" : done + "\n");
  return kExitOk;
}

}  // namespace

std::string CallError(const absl::Status& status) {
  return absl::StrCat("imbridgectl: ", absl::StatusCodeToString(status.code()),
                      ": ", status.message());
}

int RunCommand(const Invocation& inv, AdminClient& client, std::ostream& out,
               std::ostream& err, absl::Time now) {
  const std::string& c = inv.command;
  if (c == "link list") {
    return Print(client.ListLinks(), inv, out, err,
                 [](const auto& r) { return RenderLinks(r); });
  }
  if (c == "link show") {
    return Print(client.GetLink(inv.name), inv, out, err,
                 [](const auto& r) { return RenderLink(r); });
  }
  if (c == "link create" || c == "link update") {
    bool create = c == "link create";
    auto result =
        create ? client.CreateLink(inv.link) : client.UpdateLink(inv.link);
    return Print(result, inv, out, err, [&](const v1::LinkInfo& r) {
      return absl::StrCat(create ? "created" : "updated", " link ",
                          r.link().name(), "\n\n", RenderLink(r));
    });
  }
  if (c == "link delete") {
    return PrintDone(client.DeleteLink(inv.name), inv, out, err,
                     absl::StrCat("deleted link ", inv.name));
  }
  if (c == "adapter list") {
    return Print(client.ListAdapters(), inv, out, err,
                 [&](const auto& r) { return RenderAdapters(r, now); });
  }
  if (c == "queue list") {
    return Print(client.ListQueues(), inv, out, err,
                 [](const auto& r) { return RenderQueues(r); });
  }
  if (c == "deadletter list") {
    return Print(client.ListDeadLetters(inv.limit, inv.before_id), inv, out,
                 err, [&](const auto& r) { return RenderDeadLetters(r, now); });
  }
  if (c == "deadletter retry" || c == "deadletter drop") {
    bool retry = c == "deadletter retry";
    auto result = retry ? client.RetryDeadLetters(inv.dead_letters)
                        : client.DropDeadLetters(inv.dead_letters);
    return Print(
        result, inv, out, err, [&](const v1::DeadLetterActionResponse& r) {
          return absl::StrCat(retry ? "retried " : "dropped ", r.count(),
                              " dead letter", r.count() == 1 ? "" : "s", "\n");
        });
  }
  if (c == "webhook create") {
    absl::StatusOr<v1::CreateWebhookResponse> result =
        client.CreateWebhook(inv.webhook);
    if (!result.ok()) {
      err << CallError(result.status()) << "\n";
      return kExitCallFailed;
    }
    if (inv.global.json) {
      out << CreatedWebhookJson(*result);
      err << "imbridgectl: the webhook's "
          << (result->webhook().direction() == v1::OUTGOING ? "signing secret"
                                                            : "API key")
          << " is shown only now; it cannot be shown again\n";
    } else {
      out << RenderCreatedWebhook(*result);
    }
    return kExitOk;
  }
  if (c == "webhook revoke") {
    return PrintDone(client.RevokeWebhook(inv.name), inv, out, err,
                     absl::StrCat("revoked webhook ", inv.name));
  }
  if (c == "webhook list") {
    return Print(client.ListWebhooks(inv.include_revoked), inv, out, err,
                 [](const auto& r) { return RenderWebhooks(r); });
  }
  if (c == "stats") {
    return Print(client.GetStats(), inv, out, err,
                 [&](const auto& r) { return RenderStats(r, now); });
  }
  err << "imbridgectl: unknown command '" << c << "'\n";
  return kExitUsage;
}

int Main(const std::vector<std::string>& args, const EnvLookup& env,
         std::ostream& out, std::ostream& err) {
  ParseOutcome parsed = ParseCommandLine(args, env);
  switch (parsed.kind) {
    case ParseOutcome::kHelp:
      out << parsed.usage;
      return kExitOk;
    case ParseOutcome::kError:
      err << "imbridgectl: " << parsed.error << "\n\n" << parsed.usage;
      return kExitUsage;
    case ParseOutcome::kRun:
      break;
  }
  const Invocation& inv = parsed.invocation;
  AdminClient client(AdminClient::Connect(inv.global.router), inv.global.token,
                     inv.global.timeout);
  return RunCommand(inv, client, out, err, absl::Now());
}

}  // namespace imbridge::ctl
