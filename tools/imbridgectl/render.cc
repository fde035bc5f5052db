#include "tools/imbridgectl/render.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "tools/imbridgectl/cli.h"
#include "tools/imbridgectl/table.h"

namespace imbridge::ctl {
namespace {

std::string SourceName(v1::LinkSource source) {
  switch (source) {
    case v1::CONFIG:
      return "config";
    case v1::RUNTIME:
      return "runtime";
    default:
      return "?";
  }
}

std::string DirectionName(v1::Direction direction) {
  switch (direction) {
    case v1::IN:
      return "in";
    case v1::OUT:
      return "out";
    default:
      return "both";
  }
}

std::string WebhookDirectionName(v1::WebhookDirection direction) {
  switch (direction) {
    case v1::INCOMING:
      return "incoming";
    case v1::OUTGOING:
      return "outgoing";
    default:
      return "?";
  }
}

// The options that differ from the defaults, e.g. "edits=no format='{name}'".
std::string MemberOptions(const v1::MemberOptions& o) {
  std::vector<std::string> parts;
  auto flag = [&](const char* name, bool has, bool value) {
    if (has && !value) parts.push_back(absl::StrCat(name, "=no"));
  };
  flag("edits", o.has_edits(), o.edits());
  flag("deletes", o.has_deletes(), o.deletes());
  flag("files", o.has_files(), o.files());
  flag("presence", o.has_presence(), o.presence());
  flag("membership", o.has_membership(), o.membership());
  if (!o.sender_format().empty()) {
    parts.push_back(absl::StrCat("format='", o.sender_format(), "'"));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string ChannelKey(const v1::ChannelRef& c) {
  std::string key =
      absl::StrCat(c.platform(), "/", c.account(), "/", c.chat_id());
  if (!c.thread_id().empty()) absl::StrAppend(&key, "#", c.thread_id());
  return key;
}

std::string AgeSince(int64_t unix_ms, absl::Time now) {
  if (unix_ms <= 0) return "-";
  return FormatAge(now - absl::FromUnixMillis(unix_ms));
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// Cuts `text` to at most `max` characters (UTF-8 aware), adding "…".
std::string Shorten(const std::string& text, size_t max) {
  if (DisplayWidth(text) <= max) return text;
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (chars == max - 1) break;
      ++chars;
    }
    out += text[i];
  }
  return out + "\xE2\x80\xA6";
}

// "key: value" lines with the values aligned.
std::string KeyValues(
    const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size() + 1);
  std::string out;
  for (const auto& [k, v] : rows) {
    std::string key = k + ":";
    key.resize(width + 1, ' ');
    absl::StrAppend(&out, key, v, "\n");
  }
  return out;
}

}  // namespace

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  int64_t s = absl::ToInt64Seconds(age);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, (s % 86400) / 3600);
}

std::string FormatTimeMs(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                          absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string WebhookPath(const std::string& id) {
  return absl::StrCat("/hooks/", id);
}

std::string RenderLinks(const v1::ListLinksResponse& links) {
  if (links.links_size() == 0) return "no links\n";
  Table table({"NAME", "SOURCE", "MEMBERS", "WEBHOOKS", "CREATED"});
  for (const v1::LinkInfo& info : links.links()) {
    std::vector<std::string> members;
    for (const v1::LinkMember& m : info.link().members()) {
      members.push_back(FormatMemberSpec(m));
    }
    std::string source = SourceName(info.source());
    if (!info.owner_platform().empty()) {
      absl::StrAppend(&source, " (", info.owner_platform(), ")");
    }
    table.AddRow({info.link().name(), source, absl::StrJoin(members, " "),
                  info.webhook_ids_size() == 0
                      ? "-"
                      : absl::StrJoin(info.webhook_ids(), " "),
                  FormatTimeMs(info.created_at_ms())});
  }
  return table.Render();
}

std::string RenderLink(const v1::LinkInfo& info) {
  std::vector<std::pair<std::string, std::string>> head = {
      {"link", info.link().name()},
      {"source", SourceName(info.source())},
  };
  if (!info.owner_platform().empty()) {
    head.push_back({"owner", info.owner_platform()});
  }
  if (info.created_at_ms() > 0) {
    head.push_back({"created", FormatTimeMs(info.created_at_ms())});
  }
  head.push_back({"webhooks", info.webhook_ids_size() == 0
                                  ? "-"
                                  : absl::StrJoin(info.webhook_ids(), " ")});
  std::string out = KeyValues(head);
  Table members(
      {"PLATFORM", "ACCOUNT", "CHAT", "THREAD", "DIRECTION", "OPTIONS"});
  for (const v1::LinkMember& m : info.link().members()) {
    // A thread rooted at a copy not made yet (LinkMember.pending_thread_root).
    std::string thread = m.pending_thread_root() != 0
                             ? absl::StrCat("pending (copy of event ",
                                            m.pending_thread_root(), ")")
                             : OrDash(m.thread_id());
    members.AddRow({m.platform(), m.account(), m.chat_id(), std::move(thread),
                    DirectionName(m.direction()), MemberOptions(m.options())});
  }
  absl::StrAppend(&out, "\n", members.Render());
  return out;
}

std::string RenderAdapters(const v1::ListAdaptersResponse& adapters,
                           absl::Time now) {
  if (adapters.adapters_size() == 0) return "no adapters attached\n";
  Table table({"CREDENTIAL", "ADAPTER", "PLATFORM", "ACCOUNTS", "CONNECTED",
               "IN-FLIGHT", "PEER", "CAPABILITIES", "LAST ERROR"});
  for (const v1::AdapterInfo& a : adapters.adapters()) {
    table.AddRow({a.credential_name(), a.adapter_name(), a.platform(),
                  absl::StrJoin(a.accounts(), ","),
                  AgeSince(a.connected_since_ms(), now),
                  absl::StrCat(a.in_flight()), OrDash(a.peer()),
                  absl::StrJoin(a.capabilities(), ","),
                  OrDash(Shorten(a.last_error(), 60))});
  }
  return table.Render();
}

std::string RenderQueues(const v1::ListQueuesResponse& queues) {
  if (queues.queues_size() == 0) return "no queues\n";
  // Routers sharing a database (docs/scaling.md) name each queue's sender.
  const bool owners =
      std::any_of(queues.queues().begin(), queues.queues().end(),
                  [](const v1::QueueInfo& q) { return !q.owner().empty(); });
  std::vector<std::string> columns = {"TARGET", "PENDING", "OLDEST", "DEAD",
                                      "ATTACHED"};
  if (owners) columns.push_back("OWNER");
  Table table(columns);
  for (const v1::QueueInfo& q : queues.queues()) {
    std::vector<std::string> row = {
        q.target_key().empty() ? ChannelKey(q.target()) : q.target_key(),
        absl::StrCat(q.pending()),
        q.pending() > 0 ? FormatAge(absl::Milliseconds(q.oldest_age_ms()))
                        : "-",
        absl::StrCat(q.dead()), q.attached() ? "yes" : "no"};
    if (owners) row.push_back(OrDash(q.owner()));
    table.AddRow(row);
  }
  return table.Render();
}

std::string RenderDeadLetters(const v1::ListDeadLettersResponse& dead,
                              absl::Time now) {
  if (dead.dead_letters_size() == 0) return "no dead letters\n";
  Table table(
      {"ID", "TARGET", "LINK", "KIND", "ATTEMPTS", "AGE", "REASON", "TEXT"});
  for (const v1::DeadLetter& d : dead.dead_letters()) {
    table.AddRow({absl::StrCat(d.id()), ChannelKey(d.target()), d.link(),
                  d.event_kind(), absl::StrCat(d.attempts()),
                  AgeSince(d.created_at_ms(), now),
                  OrDash(Shorten(d.reason(), 60)),
                  OrDash(Shorten(d.text_preview(), 40))});
  }
  std::string out = table.Render();
  if (dead.next_before_id() != 0) {
    absl::StrAppend(&out, "more: imbridgectl deadletter list --before ",
                    dead.next_before_id(), "\n");
  }
  return out;
}

std::string RenderWebhooks(const v1::ListWebhooksResponse& webhooks) {
  if (webhooks.webhooks_size() == 0) return "no webhooks\n";
  Table table({"ID", "DIRECTION", "LINK", "ACCOUNT", "URL", "CREATED", "STATE",
               "DESCRIPTION"});
  for (const v1::WebhookInfo& w : webhooks.webhooks()) {
    table.AddRow(
        {w.id(), WebhookDirectionName(w.direction()), w.link(),
         OrDash(w.account()),
         w.direction() == v1::OUTGOING ? w.url() : WebhookPath(w.id()),
         FormatTimeMs(w.created_at_ms()),
         w.revoked_at_ms() > 0
             ? absl::StrCat("revoked ", FormatTimeMs(w.revoked_at_ms()))
             : "active",
         OrDash(w.description())});
  }
  return table.Render();
}

std::string RenderStats(const v1::Stats& s, absl::Time now) {
  return KeyValues({
      {"router id", s.router_id()},
      {"started", absl::StrCat(FormatTimeMs(s.started_at_ms()), " (up ",
                               AgeSince(s.started_at_ms(), now), ")")},
      {"links", absl::StrCat(s.links())},
      {"attached adapters", absl::StrCat(s.attached_adapters())},
      {"pending deliveries", absl::StrCat(s.pending_deliveries())},
      {"dead letters", absl::StrCat(s.dead_letters())},
      {"events accepted", absl::StrCat(s.events_accepted())},
      {"events duplicate", absl::StrCat(s.events_duplicate())},
      {"deliveries ok", absl::StrCat(s.deliveries_ok())},
      {"deliveries failed", absl::StrCat(s.deliveries_failed())},
      {"deliveries dead-lettered", absl::StrCat(s.deliveries_dead_lettered())},
  });
}

std::string RenderCreatedWebhook(const v1::CreateWebhookResponse& created) {
  const v1::WebhookInfo& w = created.webhook();
  bool outgoing = w.direction() == v1::OUTGOING;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"id", w.id()},
      {"direction", WebhookDirectionName(w.direction())},
      {"link", w.link()},
      {"account", OrDash(w.account())},
  };
  if (outgoing) {
    rows.push_back({"posts to", w.url()});
    rows.push_back({"signing secret", created.secret()});
  } else {
    rows.push_back({"url path", WebhookPath(w.id())});
    rows.push_back({"api key", created.secret()});
  }
  std::string out = KeyValues(rows);
  if (outgoing) {
    absl::StrAppend(
        &out,
        "\nWARNING: the signing secret is shown only now; it cannot be shown "
        "again.\nVerify X-Imbridge-Signature (\"v1=\" + hex "
        "HMAC-SHA256(secret, timestamp + \".\" + body)).\n");
  } else {
    absl::StrAppend(
        &out,
        "\nWARNING: the API key is shown only now; only its hash is kept and "
        "it cannot be shown again.\nPOST to the webhook adapter at ",
        WebhookPath(w.id()), " with 'Authorization: Bearer <api key>' (or at ",
        WebhookPath(w.id()), "/<api key>).\n");
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string out;
  // Serializing a well-formed message does not fail.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

std::string CreatedWebhookJson(const v1::CreateWebhookResponse& created) {
  nlohmann::json json = nlohmann::json::parse(ToJson(created));
  json["urlPath"] = WebhookPath(created.webhook().id());
  return json.dump(2) + "\n";
}

}  // namespace imbridge::ctl
