#include "emulators/chatlio/fake_chatlio.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/http/http_client.h"

namespace imbridge::fakes {
namespace {

using nlohmann::json;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6S%Ez", t, absl::UTCTimeZone());
}

// A channel-like handle for a visitor, as Chatlio makes them from the
// visitor's location ("costa-mesa-california-us-133").
std::string Handle(const std::string& visitor, uint64_t n) {
  std::string h;
  for (char c : visitor) {
    h.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c))
                    ? absl::ascii_tolower(static_cast<unsigned char>(c))
                    : '-');
  }
  return absl::StrCat("visitor-", h, "-", n);
}

bool WordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}

// Drops the `marker` pairs of Slack's mrkdwn (*bold*, _italic_, ~strike~):
// an opening marker not after a word character and before a non-space, its
// closing one after a non-space and not before a word character.
std::string DropMarkers(absl::string_view text, char marker) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const bool opens =
        text[i] == marker && (i == 0 || !WordChar(text[i - 1])) &&
        i + 1 < text.size() && text[i + 1] != ' ' && text[i + 1] != marker;
    size_t close = absl::string_view::npos;
    if (opens) {
      for (size_t j = i + 2; j < text.size(); ++j) {
        if (text[j] == '\n') break;
        if (text[j] == marker && text[j - 1] != ' ' &&
            (j + 1 == text.size() || !WordChar(text[j + 1]))) {
          close = j;
          break;
        }
      }
    }
    if (close == absl::string_view::npos) {
      out.push_back(text[i++]);
      continue;
    }
    absl::StrAppend(&out, text.substr(i + 1, close - i - 1));
    i = close + 1;
  }
  return out;
}

// What the widget shows of a Slack message: Chatlio renders Slack's mrkdwn,
// so the visitor sees plain words: markers of bold, italic and strike
// dropped, <url|label> as its label, <url> as the url, <@U1> as @U1,
// <#C1|name> as #name, and &lt; &gt; &amp; as the characters.
std::string WidgetText(absl::string_view mrkdwn) {
  std::string text;
  size_t i = 0;
  while (i < mrkdwn.size()) {
    const size_t close = mrkdwn[i] == '<' ? mrkdwn.find('>', i) : mrkdwn.npos;
    if (close == mrkdwn.npos) {
      text.push_back(mrkdwn[i++]);
      continue;
    }
    absl::string_view inner = mrkdwn.substr(i + 1, close - i - 1);
    const size_t bar = inner.find('|');
    absl::string_view label = bar == inner.npos ? inner : inner.substr(bar + 1);
    if (bar == inner.npos && !inner.empty() &&
        (inner[0] == '@' || inner[0] == '#' || inner[0] == '!')) {
      label = inner.substr(1);
    }
    if (!inner.empty() && inner[0] == '@') {
      absl::StrAppend(&text, "@", label);
    } else if (!inner.empty() && inner[0] == '#') {
      absl::StrAppend(&text, "#", label);
    } else if (!inner.empty() && inner[0] == '!') {
      absl::StrAppend(&text, "@", label);
    } else {
      absl::StrAppend(&text, label);
    }
    i = close + 1;
  }
  for (char marker : {'*', '_', '~'}) text = DropMarkers(text, marker);
  return absl::StrReplaceAll(text,
                             {{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}});
}

std::string Html(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

FakeChatlio::FakeChatlio(Options options, FakeSlack* slack)
    : options_(std::move(options)), slack_(slack) {
  absl::MutexLock lock(&mu_);
  webhook_url_ = options_.webhook_url;
}

FakeChatlio::~FakeChatlio() { Stop(); }

absl::Status FakeChatlio::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("started twice");
    started_ = true;
  }
  if (!slack_->Channel(options_.connected_channel).has_value()) {
    slack_->AddChannel(options_.connected_channel,
                       options_.connected_channel_name);
  }
  slack_->AddUser(options_.app.user_id, options_.app.name);
  slack_->AddMember(options_.connected_channel, options_.app.user_id);
  slack_->OnChange([this](const FakeSlackChange& change) {
    if (!stop_.HasBeenNotified()) OnSlackChange(change);
  });
  CheckOnline();
  checker_ = std::thread([this] { CheckLoop(); });
  return absl::OkStatus();
}

void FakeChatlio::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (checker_.joinable()) checker_.join();
}

void FakeChatlio::OnChange(std::function<void()> fn) {
  on_change_ = std::move(fn);
}

void FakeChatlio::SetWebhookUrl(const std::string& url) {
  absl::MutexLock lock(&mu_);
  webhook_url_ = url;
}

bool FakeChatlio::online() const {
  absl::MutexLock lock(&mu_);
  return online_;
}

bool FakeChatlio::CheckOnline() {
  bool online = false;
  std::optional<FakeSlackChannel> channel =
      slack_->Channel(options_.connected_channel);
  if (channel.has_value()) {
    for (const std::string& member : channel->members) {
      // People only: not Chatlio's bot, not the bridge's.
      if (member == options_.app.user_id ||
          member == slack_->options().bot_user_id) {
        continue;
      }
      if (slack_->Presence(member) == "active") online = true;
    }
  }
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = online_ != online;
    online_ = online;
  }
  if (changed && on_change_) on_change_();
  return online;
}

bool FakeChatlio::WaitForOnline(bool want, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (online() != want) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

void FakeChatlio::CheckLoop() {
  while (
      !stop_.WaitForNotificationWithTimeout(options_.online_check_interval)) {
    CheckOnline();
  }
}

void FakeChatlio::OnSlackChange(const FakeSlackChange& change) {
  if (change.kind != "posted") return;
  {
    absl::MutexLock lock(&mu_);
    if (by_channel_.find(change.channel) == by_channel_.end()) return;
  }
  // The message as Slack has it (outside our lock: FakeSlack's own).
  std::vector<FakeSlackMessage> messages = slack_->Messages(change.channel);
  const FakeSlackMessage* posted = nullptr;
  for (const FakeSlackMessage& m : messages) {
    if (m.ts == change.ts) posted = &m;
  }
  if (posted == nullptr || posted->deleted) return;
  // Bots' messages (Chatlio's own, the bridge's bot) stay in Slack.
  if (!posted->bot_id.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    auto visitor = by_channel_.find(change.channel);
    if (visitor == by_channel_.end()) return;
    auto c = conversations_.find(visitor->second);
    if (c == conversations_.end()) return;
    c->second.lines.push_back(
        {posted->text, posted->ts, posted->user, posted->user, false});
    lines_[visitor->second].push_back({false, WidgetText(posted->text)});
  }
  if (on_change_) on_change_();
}

absl::StatusOr<std::string> FakeChatlio::VisitorSays(const std::string& visitor,
                                                     const std::string& text,
                                                     const std::string& name) {
  std::string channel;
  std::string new_conversation_body;
  std::string offline_body;
  {
    absl::MutexLock lock(&mu_);
    auto it = conversations_.find(visitor);
    if (it == conversations_.end()) {
      Conversation c;
      c.visitor = visitor;
      c.name = name;
      c.handle = Handle(visitor, ++counter_);
      c.uuid = absl::StrFormat("%08x-0000-4000-8000-%012x", counter_,
                               absl::ToUnixMicros(absl::Now()) & 0xffffffffff);
      c.first_message = text;
      c.started_at = Rfc3339(absl::Now());
      if (!online_) {
        json body = {{"name", name},
                     {"email", ""},
                     {"emailPretty", name},
                     {"message", text},
                     {"visitor", VisitorJson(c)}};
        offline_body = body.dump();
      } else {
        c.channel =
            absl::StrCat("CV", absl::AsciiStrToUpper(c.uuid.substr(0, 8)));
        by_channel_[c.channel] = visitor;
        channel = c.channel;
        new_conversation_body = EventJson(c, text).dump();
        it = conversations_.emplace(visitor, std::move(c)).first;
      }
    } else {
      channel = it->second.channel;
    }
    if (it != conversations_.end()) {
      it->second.lines.push_back({text, "", "", it->second.handle, true});
    }
    lines_[visitor].push_back({true, text});
  }
  if (on_change_) on_change_();
  if (!offline_body.empty()) {
    absl::Status sent = Send("offline-message", offline_body);
    if (!sent.ok()) return sent;
    return std::string();
  }
  if (!new_conversation_body.empty()) {
    std::string handle;
    {
      absl::MutexLock lock(&mu_);
      handle = conversations_[visitor].handle;
    }
    slack_->CreateChannel(channel, handle, options_.app.user_id);
    absl::Status sent = Send("new-conversation", new_conversation_body);
    if (!sent.ok()) return sent;
  }
  FakeSlack::Sent posted = slack_->PostAsApp(channel, options_.app, text);
  if (posted.ts.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Slack refused Chatlio's post in ", channel));
  }
  return channel;
}

std::vector<std::string> FakeChatlio::Received(
    const std::string& visitor) const {
  std::vector<std::string> out;
  for (const FakeChatlioLine& line : Lines(visitor)) {
    if (!line.from_visitor) out.push_back(line.text);
  }
  return out;
}

std::vector<FakeChatlioLine> FakeChatlio::Lines(
    const std::string& visitor) const {
  absl::MutexLock lock(&mu_);
  auto it = lines_.find(visitor);
  return it == lines_.end() ? std::vector<FakeChatlioLine>() : it->second;
}

bool FakeChatlio::WaitForReceived(const std::string& visitor, size_t n,
                                  absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (Received(visitor).size() < n) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

std::string FakeChatlio::ChannelOf(const std::string& visitor) const {
  absl::MutexLock lock(&mu_);
  auto it = conversations_.find(visitor);
  return it == conversations_.end() ? "" : it->second.channel;
}

std::string FakeChatlio::ConversationOf(const std::string& visitor) const {
  absl::MutexLock lock(&mu_);
  auto it = conversations_.find(visitor);
  return it == conversations_.end() ? "" : it->second.uuid;
}

absl::Status FakeChatlio::Feedback(const std::string& visitor,
                                   const std::string& text) {
  std::string body;
  {
    absl::MutexLock lock(&mu_);
    auto it = conversations_.find(visitor);
    if (it == conversations_.end()) {
      return absl::NotFoundError("no conversation with this visitor");
    }
    body = EventJson(it->second, text).dump();
  }
  return Send("feedback", body);
}

absl::Status FakeChatlio::NotAnswered(const std::string& visitor) {
  std::string body;
  {
    absl::MutexLock lock(&mu_);
    auto it = conversations_.find(visitor);
    if (it == conversations_.end()) {
      return absl::NotFoundError("no conversation with this visitor");
    }
    body = EventJson(it->second, it->second.first_message).dump();
  }
  return Send("not-answered", body);
}

absl::Status FakeChatlio::EndConversation(const std::string& visitor) {
  Conversation c;
  {
    absl::MutexLock lock(&mu_);
    auto it = conversations_.find(visitor);
    if (it == conversations_.end()) {
      return absl::NotFoundError("no conversation with this visitor");
    }
    c = std::move(it->second);
    conversations_.erase(it);
    by_channel_.erase(c.channel);
  }
  // The transcript in the shape of Chatlio's documentation.
  json messages = json::array();
  std::string text_body;
  std::string html_body = "<html><body>";
  std::string agent_id;
  for (const Line& line : c.lines) {
    std::string who = line.visitor ? c.handle : line.username;
    if (!line.visitor && agent_id.empty()) agent_id = line.user;
    messages.push_back({{"text", line.text},
                        {"ts", line.ts},
                        {"sentAt", c.started_at},
                        {"userId", line.user},
                        {"username", who},
                        {"isVisitorMsg", line.visitor}});
    absl::StrAppend(&text_body, who, ": ", line.text, "\n");
    absl::StrAppend(&html_body, "<p><b>", Html(who), "</b>: ", Html(line.text),
                    "</p>");
  }
  html_body += "</body></html>";
  json body = {
      {"agentEmail", ""},
      {"agentName", agent_id},
      {"archiveUrl", absl::StrCat(options_.slack_url, "/archives/", c.channel)},
      {"extraData", json::array()},
      {"channelId", c.channel},
      {"channelName", c.handle},
      {"conversationUUID", c.uuid},
      {"endedAt", Rfc3339(absl::Now())},
      {"htmlBody", html_body},
      {"textBody", text_body},
      {"messages", messages},
      {"startedAt", c.started_at},
      {"visitorEmail", ""},
      {"replyToEmail", ""},
      {"visitorName", c.name.empty() ? c.handle : c.name},
      {"visitorTraits", json::object()},
      {"visitor", VisitorJson(c)},
      {"slackTeamID", slack_->options().team_id}};
  absl::Status sent = Send("transcript", body.dump());
  slack_->ArchiveChannel(c.channel, options_.app.user_id);
  return sent;
}

std::vector<FakeChatlioWebhook> FakeChatlio::webhooks() const {
  absl::MutexLock lock(&mu_);
  return webhooks_;
}

json FakeChatlio::VisitorJson(const Conversation& c) const {
  return {{"email", ""},
          {"UUID", absl::StrCat("visitor-", c.visitor)},
          {"name", c.name},
          {"identUserId", ""},
          {"identTraits", ""},
          {"userAgent", "Mozilla/5.0 (emulated visitor)"},
          {"handle", c.handle},
          {"currentPage", "https://www.example.com/pricing"},
          {"referrerURL", "https://www.google.com/"},
          {"createdAt", c.started_at},
          {"IPAddress", "192.0.2.10"},
          {"location", "Costa Mesa, California, United States"}};
}

json FakeChatlio::EventJson(const Conversation& c,
                            const std::string& message) const {
  return {{"visitor", VisitorJson(c)},    {"message", message},
          {"conversationUUID", c.uuid},   {"channelId", c.channel},
          {"slackChannelName", c.handle}, {"slackChannelId", c.channel}};
}

absl::Status FakeChatlio::Send(const std::string& type,
                               const std::string& body) {
  std::string url;
  {
    absl::MutexLock lock(&mu_);
    url = webhook_url_;
  }
  FakeChatlioWebhook sent{type, body, 0};
  absl::Status status = absl::OkStatus();
  if (!url.empty()) {
    auto answer = HttpClient().PostJson(absl::StrCat(url, "/", type), body);
    if (answer.ok()) {
      sent.http_status = answer->status;
      if (answer->status / 100 != 2) {
        status = absl::UnavailableError(absl::StrCat(
            "the ", type, " webhook was answered ", answer->status));
      }
    } else {
      status = answer.status();
    }
  }
  absl::MutexLock lock(&mu_);
  webhooks_.push_back(std::move(sent));
  return status;
}

}  // namespace imbridge::fakes
