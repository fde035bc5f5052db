#include "tools/sandbox/web_server.h"

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace imbridge::sandbox {
namespace {

using nlohmann::json;

HttpServer::Options ServerOptions(std::string host, uint16_t port) {
  HttpServer::Options o;
  o.host = std::move(host);
  o.port = port;
  o.threads = 2;
  o.max_body_bytes = 48 << 20;  // A 32 MiB file, base64-encoded.
  // Longer than an event read waits (15 s) and a Slack action with retries.
  o.request_timeout = absl::Seconds(60);
  o.stop_grace = absl::Seconds(1);
  return o;
}

void Json(const std::shared_ptr<Responder>& responder, int status,
          const json& body) {
  responder->Respond(status, "application/json; charset=utf-8", body.dump(),
                     {{"Cache-Control", "no-store"}});
}

int HttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnimplemented:
      return 501;
    default:
      return 500;
  }
}

// Only plain file names of the page, never a path.
bool SafeName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

std::string ContentType(const std::string& name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(name, ".png")) return "image/png";
  return "application/octet-stream";
}

// A file name safe inside a quoted Content-Disposition value.
std::string DispositionName(const std::string& name) {
  std::string out;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    out +=
        (absl::ascii_isalnum(u) || c == '.' || c == '-' || c == '_' || c == ' ')
            ? c
            : '_';
  }
  return out.empty() ? "file" : out;
}

// The value of `key` in a raw query string ("" when absent).
std::string QueryValue(const std::string& query, absl::string_view key) {
  for (absl::string_view part : absl::StrSplit(query, '&')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == key) return std::string(kv.second);
  }
  return "";
}

}  // namespace

WebServer::WebServer(Sandbox* sandbox, std::string web_dir, std::string host,
                     uint16_t port)
    : sandbox_(sandbox),
      web_dir_(std::move(web_dir)),
      server_(ServerOptions(std::move(host), port)) {
  server_.Handle("GET", "/", [this](HttpRequest, std::shared_ptr<Responder> r) {
    ServeStatic("index.html", r);
  });
  server_.HandlePrefix("GET", "/static/",
                       [this](HttpRequest req, std::shared_ptr<Responder> r) {
                         ServeStatic(req.path.substr(strlen("/static/")), r);
                       });
  server_.Handle(
      "GET", "/api/state", [this](HttpRequest, std::shared_ptr<Responder> r) {
        workers_.Post([this, r] { Json(r, 200, sandbox_->State()); });
      });
  server_.Handle("GET", "/events",
                 [this](HttpRequest req, std::shared_ptr<Responder> r) {
                   std::string from(req.Header("Last-Event-ID"));
                   if (from.empty()) from = QueryValue(req.query, "after");
                   uint64_t after = 0;
                   if (!from.empty() && !absl::SimpleAtoi(from, &after)) {
                     Json(r, 400, {{"ok", false}, {"error", "bad event id"}});
                     return;
                   }
                   sandbox_->events().Subscribe(after, std::move(r));
                 });
  server_.HandlePrefix("POST", "/api/",
                       [this](HttpRequest req, std::shared_ptr<Responder> r) {
                         ServeAction(req, std::move(r));
                       });
  server_.HandlePrefix("GET", "/files/",
                       [this](HttpRequest req, std::shared_ptr<Responder> r) {
                         ServeFile(req, std::move(r));
                       });
}

WebServer::~WebServer() { Stop(); }

absl::Status WebServer::Start() { return server_.Start(); }

void WebServer::Stop() { server_.Stop(); }

void WebServer::ServeStatic(const std::string& name,
                            const std::shared_ptr<Responder>& responder) const {
  if (!SafeName(name)) {
    Json(responder, 404, {{"ok", false}, {"error", "no such file"}});
    return;
  }
  std::ifstream in(absl::StrCat(web_dir_, "/", name), std::ios::binary);
  if (!in) {
    Json(responder, 404, {{"ok", false}, {"error", "no such file"}});
    return;
  }
  std::ostringstream body;
  body << in.rdbuf();
  responder->Respond(200, ContentType(name), body.str(),
                     {{"Cache-Control", "no-cache"}});
}

void WebServer::ServeAction(const HttpRequest& request,
                            std::shared_ptr<Responder> responder) {
  // /api/<messenger>/<action>
  std::vector<std::string> parts =
      absl::StrSplit(request.path.substr(strlen("/api/")), '/');
  if (parts.size() != 2) {
    Json(responder, 404, {{"ok", false}, {"error", "no such API"}});
    return;
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) {
    Json(responder, 400, {{"ok", false}, {"error", "the body is not JSON"}});
    return;
  }
  workers_.Post([this, parts = std::move(parts), body = std::move(body),
                 responder = std::move(responder)] {
    absl::StatusOr<json> result = sandbox_->Act(parts[0], parts[1], body);
    if (!result.ok()) {
      LogInfo("page action refused", {{"messenger", parts[0]},
                                      {"action", parts[1]},
                                      {"reason", result.status().message()}});
      Json(responder, HttpStatus(result.status()),
           {{"ok", false}, {"error", std::string(result.status().message())}});
      return;
    }
    json answer = *result;
    answer["ok"] = true;
    Json(responder, 200, answer);
  });
}

void WebServer::ServeFile(const HttpRequest& request,
                          std::shared_ptr<Responder> responder) {
  // /files/<messenger>/<file id>
  std::vector<std::string> parts = absl::StrSplit(
      request.path.substr(strlen("/files/")), absl::MaxSplits('/', 1));
  if (parts.size() != 2 || parts[1].empty()) {
    Json(responder, 404, {{"ok", false}, {"error", "no such file"}});
    return;
  }
  workers_.Post([this, parts = std::move(parts),
                 responder = std::move(responder)] {
    absl::StatusOr<FileBody> file = sandbox_->Download(parts[0], parts[1]);
    if (!file.ok()) {
      Json(responder, HttpStatus(file.status()),
           {{"ok", false}, {"error", std::string(file.status().message())}});
      return;
    }
    responder->Respond(
        200,
        file->mime_type.empty() ? "application/octet-stream" : file->mime_type,
        std::move(file->content),
        {{"Content-Disposition",
          absl::StrCat("attachment; filename=\"", DispositionName(file->name),
                       "\"")},
         {"X-Content-Type-Options", "nosniff"}});
  });
}

}  // namespace imbridge::sandbox
