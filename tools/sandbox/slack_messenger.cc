#include "tools/sandbox/slack_messenger.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace imbridge::sandbox {
namespace {

using nlohmann::json;

fakes::FakeSlack::Options FakeOptions(const v1::SandboxSlack& config) {
  fakes::FakeSlack::Options o;
  o.team_id = config.team_id();
  o.bot_token = config.bot_token();
  o.signing_secret = config.signing_secret();
  // Socket Mode is not used; the app token only has to differ.
  o.app_token = "xapp-sandbox-unused";
  o.port = static_cast<uint16_t>(config.api_port());
  return o;
}

// Milliseconds since the epoch of a Slack ts ("1712345678.000100").
int64_t TsMillis(const std::string& ts) {
  double seconds = 0;
  if (!absl::SimpleAtod(ts, &seconds)) return 0;
  return static_cast<int64_t>(seconds * 1000);
}

// Like Slack, retries a callback the adapter did not answer 2xx (Slack
// retries three times; the sandbox does not wait minutes between them).
void RetryUnanswered(fakes::FakeSlack& fake,
                     const fakes::FakeSlack::Sent& sent) {
  if (sent.event_id.empty()) return;
  int status = sent.http_status;
  for (int retry = 1; retry <= 3 && (status < 200 || status > 299); ++retry) {
    LogWarn("slack events URL did not accept a callback; retrying",
            {{"event_id", sent.event_id}, {"status", absl::StrCat(status)}});
    absl::SleepFor(absl::Seconds(retry));
    status = fake.Redeliver(sent.event_id, retry);
  }
}

}  // namespace

SlackMessenger::SlackMessenger(const v1::SandboxSlack& config)
    : config_(config),
      people_(config_.people(), "the Slack workspace", {"active", "away"}),
      fake_(FakeOptions(config)) {}

absl::Status SlackMessenger::Start() {
  fake_.AddChannel(config_.channel_id(), config_.channel_name());
  for (const auto& [id, name] : people_.list()) fake_.AddUser(id, name);
  fake_.SetEventsUrl(config_.events_url());
  if (absl::Status s = fake_.Start(); !s.ok()) return s;
  for (const auto& [id, name] : people_.list()) {
    if (absl::Status s = SetPresence(id, "active"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void SlackMessenger::Stop() { fake_.Stop(); }

std::vector<std::pair<std::string, std::string>> SlackMessenger::Endpoints()
    const {
  return {{"SLACK_API_URL", fake_.api_base_url()},
          {"SLACK_CHANNEL_ID", config_.channel_id()}};
}

json SlackMessenger::Snapshot() const {
  json out;
  out["title"] = absl::StrCat("#", config_.channel_name());
  out["chat_id"] = config_.channel_id();
  out["features"] = {{"delete", true}, {"presence", true}};
  out["presence_choices"] = people_.PresenceChoicesJson();
  out["people"] = people_.PeopleJson();
  out["guests"] = json::array();
  out["bot"] = {{"name", "imbridge"}, {"presence", ""}, {"text", ""}};

  json messages = json::array();
  for (const fakes::FakeSlackMessage& m :
       fake_.Messages(config_.channel_id())) {
    json v;
    v["id"] = m.ts;
    v["user_id"] = m.user;
    const bool bridged = !m.bot_id.empty();
    v["bridged"] = bridged;
    if (bridged) {
      v["name"] = m.username.empty() ? "imbridge" : m.username;
    } else {
      v["name"] = people_.NameOf(m.user);
    }
    v["text"] = m.text;
    v["format"] = "slack";
    v["time"] = TsMillis(m.ts);
    // Slack replies are thread replies: the page shows the thread's root.
    v["reply_to"] = m.thread_ts == m.ts ? "" : m.thread_ts;
    v["thread"] = m.thread_ts;
    v["edited"] = m.edits > 0;
    v["deleted"] = m.deleted;
    json files = json::array();
    for (const std::string& id : m.file_ids) {
      std::optional<fakes::FakeSlackFile> f = fake_.File(id);
      if (!f) continue;
      files.push_back(FileJson(f->id, f->name, f->content.size(), f->mimetype));
    }
    v["files"] = files;
    messages.push_back(std::move(v));
  }
  out["messages"] = messages;
  return out;
}

std::optional<fakes::FakeSlackMessage> SlackMessenger::Find(
    const std::string& ts) const {
  for (const fakes::FakeSlackMessage& m :
       fake_.Messages(config_.channel_id())) {
    if (m.ts == ts && !m.deleted) return m;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> SlackMessenger::ThreadOf(
    const std::string& reply_to) const {
  if (reply_to.empty()) return std::string();
  std::optional<fakes::FakeSlackMessage> parent = Find(reply_to);
  if (!parent) {
    return absl::InvalidArgumentError(
        absl::StrCat("no message '", reply_to, "' to reply to"));
  }
  return parent->thread_ts.empty() ? parent->ts : parent->thread_ts;
}

absl::StatusOr<std::string> SlackMessenger::Post(const PostRequest& request) {
  if (absl::Status s = people_.Check(request.user); !s.ok()) return s;
  absl::StatusOr<std::string> thread = ThreadOf(request.reply_to);
  if (!thread.ok()) return thread.status();
  fakes::FakeSlack::Sent sent = fake_.PostMessage(
      config_.channel_id(), request.user, request.text, *thread);
  RetryUnanswered(fake_, sent);
  return sent.ts;
}

absl::Status SlackMessenger::Edit(const std::string& user,
                                  const std::string& id,
                                  const std::string& text) {
  if (absl::Status s = people_.Check(user); !s.ok()) return s;
  std::optional<fakes::FakeSlackMessage> m = Find(id);
  if (!m) return absl::NotFoundError("no such message");
  if (m->user != user) return absl::PermissionDeniedError("not the poster");
  RetryUnanswered(fake_, fake_.EditMessage(config_.channel_id(), id, text));
  return absl::OkStatus();
}

absl::Status SlackMessenger::Delete(const std::string& user,
                                    const std::string& id) {
  if (absl::Status s = people_.Check(user); !s.ok()) return s;
  std::optional<fakes::FakeSlackMessage> m = Find(id);
  if (!m) return absl::NotFoundError("no such message");
  if (m->user != user) return absl::PermissionDeniedError("not the poster");
  RetryUnanswered(fake_, fake_.DeleteMessage(config_.channel_id(), id));
  return absl::OkStatus();
}

absl::StatusOr<std::string> SlackMessenger::Upload(
    const UploadRequest& request) {
  if (absl::Status s = people_.Check(request.user); !s.ok()) return s;
  absl::StatusOr<std::string> thread = ThreadOf(request.reply_to);
  if (!thread.ok()) return thread.status();
  fakes::FakeSlack::Sent sent = fake_.UploadFile(
      config_.channel_id(), request.user, request.name, request.mime_type,
      request.content, request.text, *thread);
  RetryUnanswered(fake_, sent);
  return sent.ts;
}

absl::Status SlackMessenger::SetPresence(const std::string& user,
                                         const std::string& status) {
  if (absl::Status s = people_.SetPresence(user, status); !s.ok()) return s;
  fake_.SetPresence(user, status);
  return absl::OkStatus();
}

absl::StatusOr<FileBody> SlackMessenger::Download(const std::string& file_id) {
  std::optional<fakes::FakeSlackFile> f = fake_.File(file_id);
  if (!f || f->deleted) return absl::NotFoundError("no such file");
  return FileBody{f->name, f->mimetype, f->content};
}

void SlackMessenger::OnChange(std::function<void()> fn) {
  fake_.OnChange([fn = std::move(fn)](const fakes::FakeSlackChange&) { fn(); });
}

}  // namespace imbridge::sandbox
