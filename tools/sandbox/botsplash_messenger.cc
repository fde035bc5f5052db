#include "tools/sandbox/botsplash_messenger.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tools/sandbox/people.h"

namespace imbridge::sandbox {
namespace {

using Fake = emulators::FakeBotsplash;
using nlohmann::json;

Fake::Options FakeOptions(const v1::SandboxBotsplash& config) {
  Fake::Options o;
  o.app_id = config.app_id();
  o.api_key = config.api_key();
  o.listeners = {config.listener_id()};
  o.direct_message_path = config.direct_message_path();
  o.update_visitor_path = config.update_visitor_path();
  o.port = static_cast<uint16_t>(config.api_port());
  return o;
}

std::string NameOf(const Fake::Visitor& v) {
  std::string name = std::string(
      absl::StripAsciiWhitespace(absl::StrCat(v.first_name, " ", v.last_name)));
  if (name.empty()) name = v.phone_number;
  return name.empty() ? v.client_visitor_id : name;
}

// The last path segment of a URL.
std::string FileName(absl::string_view url) {
  size_t slash = url.rfind('/');
  return std::string(slash == absl::string_view::npos ? url
                                                      : url.substr(slash + 1));
}

}  // namespace

BotsplashMessenger::BotsplashMessenger(const v1::SandboxBotsplash& config)
    : config_(config), fake_(FakeOptions(config)) {}

absl::Status BotsplashMessenger::Start() {
  int n = 0;
  for (const v1::SandboxPerson& p : config_.customers()) {
    Fake::Visitor v;
    v.client_visitor_id = p.id();
    size_t space = p.name().find(' ');
    v.first_name = p.name().substr(0, space);
    if (space != std::string::npos) v.last_name = p.name().substr(space + 1);
    v.phone_number = absl::StrCat("+1555010", 1000 + ++n);
    fake_.AddVisitor(v);
  }
  fake_.SetReplyWebhook(config_.reply_url(), "X-Botsplash-Secret",
                        config_.reply_secret());
  return fake_.Start();
}

void BotsplashMessenger::Stop() { fake_.Stop(); }

std::vector<std::pair<std::string, std::string>> BotsplashMessenger::Endpoints()
    const {
  return {{"BOTSPLASH_API_URL", fake_.base_url()},
          {"BOTSPLASH_APP_ID", config_.app_id()}};
}

json BotsplashMessenger::Snapshot() const {
  json out;
  out["title"] = "Customer phone";
  out["chat_id"] = "";
  out["features"] = {{"delete", false},
                     {"presence", false},
                     {"edit", false},
                     {"reply", false}};
  out["presence_choices"] = json::array();
  json people = json::array();
  std::map<std::string, std::string> names;
  for (const Fake::Visitor& v : fake_.Visitors()) {
    names[v.client_visitor_id] = NameOf(v);
    people.push_back(
        {{"id", v.client_visitor_id}, {"name", NameOf(v)}, {"presence", ""}});
  }
  out["people"] = people;
  out["guests"] = json::array();
  out["bot"] = json::object();

  // Received messages and replies, by their order in the fake.
  std::vector<std::pair<int64_t, json>> items;
  for (const Fake::Received& r : fake_.ReceivedBy("")) {
    json v;
    v["id"] = absl::StrCat("r", r.seq);
    v["user_id"] = "";
    v["bridged"] = true;
    v["name"] = absl::StrCat("Team → ", names[r.client_visitor_id]);
    v["text"] = r.text;
    json files = json::array();
    if (!r.media_key.empty()) {
      std::optional<Fake::Media> media = fake_.GetMedia(r.media_key);
      if (media) {
        files.push_back(FileJson(media->key, media->name, media->bytes.size(),
                                 media->content_type));
      }
    }
    v["files"] = files;
    items.emplace_back(r.seq, std::move(v));
  }
  for (const Fake::Reply& r : fake_.Replies()) {
    json v;
    v["id"] = r.id;
    v["user_id"] = r.client_visitor_id;
    v["bridged"] = false;
    v["name"] = names[r.client_visitor_id];
    v["text"] = r.text;
    json files = json::array();
    if (!r.media_url.empty()) {
      absl::string_view path = r.media_url;
      size_t at = path.find("/media/");
      std::string key;
      if (at != absl::string_view::npos) {
        path.remove_prefix(at + 7);
        key = std::string(path.substr(0, path.find('/')));
      }
      std::optional<Fake::Media> media = fake_.GetMedia(key);
      files.push_back(FileJson(key, FileName(r.media_url),
                               media ? media->bytes.size() : 0,
                               media ? media->content_type : ""));
    }
    v["files"] = files;
    items.emplace_back(r.seq, std::move(v));
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json messages = json::array();
  const int64_t now = absl::ToUnixMillis(absl::Now());
  for (auto& [seq, v] : items) {
    v["format"] = "plain";
    v["reply_to"] = "";
    v["thread"] = "";
    v["edited"] = false;
    v["deleted"] = false;
    {
      absl::MutexLock lock(&mu_);
      v["time"] = first_seen_.emplace(v["id"], now).first->second;
    }
    messages.push_back(std::move(v));
  }
  out["messages"] = messages;
  return out;
}

absl::StatusOr<std::string> BotsplashMessenger::CustomerName(
    const std::string& id) const {
  std::optional<Fake::Visitor> v = fake_.GetVisitor(id);
  if (!v) {
    return absl::InvalidArgumentError(
        absl::StrCat("no customer '", id, "' in Botsplash"));
  }
  return NameOf(*v);
}

absl::StatusOr<std::string> BotsplashMessenger::Reply(
    const std::string& user, const std::string& text,
    const std::string& media_url) {
  if (absl::StatusOr<std::string> name = CustomerName(user); !name.ok()) {
    return name.status();
  }
  const size_t before = fake_.Replies().size();
  absl::StatusOr<int> status = fake_.ReplyAsCustomer(user, text, media_url);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the Botsplash adapter did not answer: ", status.status().message()));
  }
  std::vector<Fake::Reply> replies = fake_.Replies();
  std::string id = replies.size() > before ? replies.back().id : "";
  if (*status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "the Botsplash adapter answered the reply with HTTP ", *status));
  }
  return id;
}

absl::StatusOr<std::string> BotsplashMessenger::Post(
    const PostRequest& request) {
  return Reply(request.user, request.text, "");
}

absl::Status BotsplashMessenger::Edit(const std::string&, const std::string&,
                                      const std::string&) {
  return absl::UnimplementedError("a text message cannot be edited");
}

absl::Status BotsplashMessenger::Delete(const std::string&,
                                        const std::string&) {
  return absl::UnimplementedError("a text message cannot be deleted");
}

absl::StatusOr<std::string> BotsplashMessenger::Upload(
    const UploadRequest& request) {
  if (absl::StatusOr<std::string> name = CustomerName(request.user);
      !name.ok()) {
    return name.status();
  }
  std::string url =
      fake_.AddCustomerMedia(request.name, request.mime_type, request.content);
  return Reply(request.user, request.text, url);
}

absl::Status BotsplashMessenger::SetPresence(const std::string&,
                                             const std::string&) {
  return absl::UnimplementedError("customers have no presence");
}

absl::StatusOr<FileBody> BotsplashMessenger::Download(
    const std::string& file_id) {
  std::optional<Fake::Media> media = fake_.GetMedia(file_id);
  if (!media) return absl::NotFoundError("no such file");
  return FileBody{media->name, media->content_type, media->bytes};
}

void BotsplashMessenger::OnChange(std::function<void()> fn) {
  fake_.AddListener(std::move(fn));
}

}  // namespace imbridge::sandbox
