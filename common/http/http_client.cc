#include "common/http/http_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "absl/base/call_once.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/url_origin.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"

namespace imbridge {
namespace {

void InitCurlOnce() {
  static absl::once_flag once;
  absl::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::string_view FindHeader(const HttpHeaderList& headers,
                             absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

bool HasHeader(const HttpHeaderList& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return true;
  }
  return false;
}

bool IsSafeHeaderText(absl::string_view s) {
  return s.find_first_of(absl::string_view("\r\n\0", 3)) ==
         absl::string_view::npos;
}

// Where a request may go: an http or https origin (see UrlOrigin).
absl::StatusOr<UrlOrigin> ParseOrigin(const std::string& url) {
  absl::StatusOr<UrlOrigin> origin = ParseUrlOrigin(url);
  if (origin.ok() && origin->scheme != "http" && origin->scheme != "https") {
    return absl::InvalidArgumentError("URL scheme must be http or https");
  }
  return origin;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

// Where one transfer's callbacks keep their results.
struct Transfer {
  const HttpClientRequest* request = nullptr;
  size_t max_bytes = 0;
  int status = 0;
  HttpHeaderList headers;
  std::string body;
  size_t received = 0;
  bool too_large = false;
  absl::Status callback_status;  // From a sink or a multipart reader.
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t length = size * count;
  absl::string_view line(data, length);
  absl::ConsumeSuffix(&line, "\n");
  absl::ConsumeSuffix(&line, "\r");
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after 100 Continue, for example) starts over.
    t->headers.clear();
    t->received = 0;
    t->body.clear();
    size_t space = line.find(' ');
    int status = 0;
    if (space != absl::string_view::npos &&
        absl::SimpleAtoi(line.substr(space + 1, 3), &status)) {
      t->status = status;
    }
    return length;
  }
  if (line.empty()) return length;
  if ((line[0] == ' ' || line[0] == '\t') && !t->headers.empty()) {
    absl::StrAppend(&t->headers.back().second, " ",
                    absl::StripAsciiWhitespace(line));
    return length;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return length;
  std::string name(absl::StripAsciiWhitespace(line.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  if (absl::EqualsIgnoreCase(name, "content-length")) {
    uint64_t announced = 0;
    if (absl::SimpleAtoi(value, &announced) && announced > t->max_bytes) {
      t->too_large = true;
      return 0;  // Aborts before any of the body is read.
    }
  }
  t->headers.emplace_back(std::move(name), std::move(value));
  return length;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t length = size * count;
  t->received += length;
  if (t->received > t->max_bytes) {
    t->too_large = true;
    return 0;
  }
  if (t->request->sink && Is2xx(t->status)) {
    absl::Status status = t->request->sink(absl::string_view(data, length));
    if (!status.ok()) {
      t->callback_status = std::move(status);
      return 0;
    }
    return length;
  }
  t->body.append(data, length);
  return length;
}

// What a multipart reader's callback needs.
struct ReaderContext {
  const MultipartPart* part = nullptr;
  Transfer* transfer = nullptr;
};

size_t OnMimeRead(char* buffer, size_t size, size_t count, void* arg) {
  auto* ctx = static_cast<ReaderContext*>(arg);
  absl::StatusOr<size_t> n = ctx->part->reader(buffer, size * count);
  if (!n.ok()) {
    ctx->transfer->callback_status = n.status();
    return CURL_READFUNC_ABORT;
  }
  return std::min(*n, size * count);
}

// Opens curl's connections close-on-exec (curl itself does not set it), so
// that a child this process forks and execs does not hold them open: a
// connection the client closes must reach the server as a close, not stay
// half alive in the child.
curl_socket_t OpenCloseOnExecSocket(void* /*user*/, curlsocktype /*purpose*/,
                                    curl_sockaddr* address) {
  int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC,
                    address->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

absl::Status CurlError(CURLcode code, const char* error_buffer,
                       absl::string_view method, const UrlOrigin& origin) {
  std::string message = absl::StrCat(
      method, " ", origin.ForLog(), ": ",
      error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PROXY:
      return absl::UnavailableError(message);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(message);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return absl::FailedPreconditionError(message);
    case CURLE_FILESIZE_EXCEEDED:
      return absl::OutOfRangeError(message);
    default:
      return absl::UnknownError(message);
  }
}

// What the loop in Send carries from one hop to the next.
struct Hop {
  std::string url;
  std::string method;
  bool with_body = true;
  bool drop_credentials = false;
};

struct HopResult {
  Transfer transfer;
  std::string redirect_url;
};

template <typename T>
using Deleted = std::unique_ptr<T, void (*)(T*)>;

}  // namespace

absl::string_view HttpResponse::Header(absl::string_view name) const {
  return FindHeader(headers, name);
}

std::optional<absl::Duration> HttpResponse::RetryAfter(absl::Time now) const {
  absl::string_view value = absl::StripAsciiWhitespace(Header("Retry-After"));
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return absl::ascii_isdigit(c); }) &&
      absl::SimpleAtoi(value, &seconds)) {
    return absl::Seconds(seconds);
  }
  absl::Time when;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(),
                      &when, &error)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

class HttpClient::Impl {
 public:
  explicit Impl(Options options) : options_(std::move(options)) {
    InitCurlOnce();
    if (!options_.metrics_platform.empty()) {
      for (size_t i = 0; i < kStatusClasses.size(); ++i) {
        responses_[i] = &metrics::Registry::Default().GetCounter(
            "imbridge_messenger_responses_total",
            "Requests an adapter made to its messenger's API, by the HTTP "
            "status class of the answer (error: none came).",
            {{"platform", options_.metrics_platform},
             {"status", kStatusClasses[i]}});
      }
    }
  }

  ~Impl() {
    absl::MutexLock lock(&mu_);
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  absl::StatusOr<HttpResponse> Send(const HttpClientRequest& request);

  // Counts one Send() outcome when the client has a metrics platform.
  void CountResponse(const absl::StatusOr<HttpResponse>& response) {
    if (responses_[0] == nullptr) return;
    size_t i = 0;  // error
    if (response.ok()) {
      int status = response->status;
      i = status == 429   ? 3
          : status >= 500 ? 5
          : status >= 400 ? 4
          : status >= 300 ? 2
          : status >= 200 ? 1
                          : 0;
    }
    responses_[i]->Increment();
  }

 private:
  // The `status` labels of imbridge_messenger_responses_total.
  static constexpr std::array<const char*, 6> kStatusClasses = {
      "error", "2xx", "3xx", "429", "4xx", "5xx"};

  CURL* Acquire() {
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* handle) {
    curl_easy_reset(handle);  // Keeps its live connections for reuse.
    absl::MutexLock lock(&mu_);
    if (idle_.size() < options_.max_idle_handles) {
      idle_.push_back(handle);
      return;
    }
    curl_easy_cleanup(handle);
  }

  absl::StatusOr<HopResult> Perform(const HttpClientRequest& request,
                                    const Hop& hop, const UrlOrigin& origin,
                                    absl::Duration remaining);

  const Options options_;
  // One counter per kStatusClasses entry; all null without a platform.
  std::array<metrics::Counter*, kStatusClasses.size()> responses_{};
  absl::Mutex mu_;
  std::vector<CURL*> idle_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<HopResult> HttpClient::Impl::Perform(
    const HttpClientRequest& request, const Hop& hop, const UrlOrigin& origin,
    absl::Duration remaining) {
  HopResult result;
  Transfer& t = result.transfer;
  t.request = &request;
  t.max_bytes =
      request.max_response_bytes.value_or(options_.max_response_bytes);

  // Header list, built before the handle so it outlives the transfer.
  Deleted<curl_slist> header_list(nullptr, curl_slist_free_all);
  auto add_header = [&](absl::string_view name, absl::string_view value) {
    std::string line = value.empty() ? absl::StrCat(name, ";")
                                     : absl::StrCat(name, ": ", value);
    curl_slist* next = curl_slist_append(header_list.get(), line.c_str());
    if (next != nullptr) {
      header_list.release();
      header_list.reset(next);
    }
  };
  for (const auto& [name, value] : request.headers) {
    if (hop.drop_credentials &&
        (absl::EqualsIgnoreCase(name, "authorization") ||
         absl::EqualsIgnoreCase(name, "cookie"))) {
      continue;
    }
    if (!hop.with_body && (absl::EqualsIgnoreCase(name, "content-type") ||
                           absl::EqualsIgnoreCase(name, "content-length"))) {
      continue;
    }
    add_header(name, value);
  }
  if (!HasHeader(request.headers, "user-agent")) {
    add_header("User-Agent", options_.user_agent);
  }

  CURL* handle = Acquire();
  if (handle == nullptr)
    return absl::ResourceExhaustedError("curl_easy_init failed");
  Deleted<curl_mime> mime(nullptr, curl_mime_free);
  std::vector<ReaderContext> readers(request.multipart.size());
  char error_buffer[CURL_ERROR_SIZE];
  error_buffer[0] = '\0';

  auto ms = [](absl::Duration d) {
    return static_cast<long>(  // NOLINT(runtime/int): curl's type.
        std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
  };
  absl::Duration connect_timeout = std::min(
      remaining, request.connect_timeout.value_or(options_.connect_timeout));

  curl_easy_setopt(handle, CURLOPT_URL, hop.url.c_str());
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, OpenCloseOnExecSocket);
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, ms(connect_timeout));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, ms(remaining));
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list.get());
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str());
  }

  const std::string& method = hop.method;
  if (method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !hop.with_body) {
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
  } else if (hop.with_body && !request.multipart.empty()) {
    mime.reset(curl_mime_init(handle));
    for (size_t i = 0; i < request.multipart.size(); ++i) {
      const MultipartPart& part = request.multipart[i];
      curl_mimepart* p = curl_mime_addpart(mime.get());
      curl_mime_name(p, part.name.c_str());
      if (part.reader) {
        readers[i] = ReaderContext{&part, &t};
        curl_mime_data_cb(p, static_cast<curl_off_t>(part.reader_size),
                          OnMimeRead, nullptr, nullptr, &readers[i]);
      } else {
        curl_mime_data(p, part.data.data(), part.data.size());
      }
      if (!part.filename.empty()) curl_mime_filename(p, part.filename.c_str());
      if (!part.content_type.empty()) {
        curl_mime_type(p, part.content_type.c_str());
      }
    }
    curl_easy_setopt(handle, CURLOPT_MIMEPOST, mime.get());
    if (method != "POST") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
  } else if (hop.with_body && (!request.body.empty() || method == "POST" ||
                               method == "PUT" || method == "PATCH")) {
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
    if (method != "POST") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
  } else if (method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else {
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
  }

  CURLcode code = curl_easy_perform(handle);
  if (code == CURLE_OK) {
    char* location = nullptr;
    if (curl_easy_getinfo(handle, CURLINFO_REDIRECT_URL, &location) ==
            CURLE_OK &&
        location != nullptr) {
      result.redirect_url = location;
    }
  }
  Release(handle);  // Before the mime and header list it points to go.

  if (t.too_large) {
    return absl::OutOfRangeError(
        absl::StrCat("response body from ", origin.ForLog(), " exceeds ",
                     t.max_bytes, " bytes; transfer aborted"));
  }
  if (!t.callback_status.ok()) return t.callback_status;
  if (code != CURLE_OK) {
    return CurlError(code, error_buffer, method, origin);
  }
  return result;
}

absl::StatusOr<HttpResponse> HttpClient::Impl::Send(
    const HttpClientRequest& request) {
  Hop hop;
  hop.url = request.url;
  hop.method = absl::AsciiStrToUpper(request.method);
  static constexpr absl::string_view kMethods[] = {"GET",   "POST",   "PUT",
                                                   "PATCH", "DELETE", "HEAD"};
  if (std::find(std::begin(kMethods), std::end(kMethods), hop.method) ==
      std::end(kMethods)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported HTTP method '", request.method, "'"));
  }
  if (!request.multipart.empty() && !request.body.empty()) {
    return absl::InvalidArgumentError(
        "a request has a body or multipart parts, not both");
  }
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !IsSafeHeaderText(name) || !IsSafeHeaderText(value) ||
        name.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid request header '",
                       IsSafeHeaderText(name) ? name : "?", "'"));
    }
  }
  bool streamed_body = std::any_of(
      request.multipart.begin(), request.multipart.end(),
      [](const MultipartPart& p) { return static_cast<bool>(p.reader); });
  IMB_ASSIGN_OR_RETURN(const UrlOrigin origin, ParseOrigin(request.url));

  absl::Time start = absl::Now();
  absl::Time deadline = start + request.timeout.value_or(options_.timeout);
  UrlOrigin current = origin;
  for (int redirects = 0;; ++redirects) {
    absl::Duration remaining = deadline - absl::Now();
    if (remaining <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          hop.method, " ", current.ForLog(), ": timed out across redirects"));
    }
    IMB_ASSIGN_OR_RETURN(HopResult hop_result,
                         Perform(request, hop, current, remaining));
    Transfer& t = hop_result.transfer;
    if (IsRedirect(t.status) && !hop_result.redirect_url.empty()) {
      if (redirects >= options_.max_redirects) {
        return absl::FailedPreconditionError(
            absl::StrCat(hop.method, " ", origin.ForLog(), ": more than ",
                         options_.max_redirects, " redirects"));
      }
      IMB_ASSIGN_OR_RETURN(UrlOrigin next,
                           ParseOrigin(hop_result.redirect_url));
      bool becomes_get =
          hop.method != "HEAD" &&
          (t.status == 303 ||
           ((t.status == 301 || t.status == 302) && hop.method == "POST"));
      if (becomes_get) {
        hop.method = "GET";
        hop.with_body = false;
      } else if (hop.with_body && streamed_body) {
        return absl::FailedPreconditionError(
            absl::StrCat(hop.method, " ", current.ForLog(), ": redirect ",
                         t.status, " would resend a streamed body"));
      }
      if (!(next == origin)) hop.drop_credentials = true;
      hop.url = std::move(hop_result.redirect_url);
      current = std::move(next);
      continue;
    }
    LogDebug(
        "http request",
        {{"method", hop.method},
         {"origin", current.ForLog()},
         {"status", absl::StrCat(t.status)},
         {"ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
    HttpResponse response;
    response.status = t.status;
    response.headers = std::move(t.headers);
    response.body = std::move(t.body);
    response.redirects = redirects;
    return response;
  }
}

HttpClient::Options MessengerClientOptions(std::string platform) {
  HttpClient::Options options;
  options.metrics_platform = std::move(platform);
  return options;
}

HttpClient::HttpClient() : HttpClient(Options{}) {}

HttpClient::HttpClient(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Send(
    const HttpClientRequest& request) const {
  absl::StatusOr<HttpResponse> response = impl_->Send(request);
  impl_->CountResponse(response);
  return response;
}

absl::StatusOr<HttpResponse> HttpClient::Get(std::string url,
                                             HttpHeaderList headers) const {
  HttpClientRequest request;
  request.url = std::move(url);
  request.headers = std::move(headers);
  return Send(request);
}

absl::StatusOr<HttpResponse> HttpClient::PostJson(
    std::string url, std::string json, HttpHeaderList headers) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = std::move(url);
  request.headers = std::move(headers);
  if (!HasHeader(request.headers, "content-type")) {
    request.headers.emplace_back("Content-Type",
                                 "application/json; charset=utf-8");
  }
  request.body = std::move(json);
  return Send(request);
}

absl::StatusOr<HttpResponse> HttpClient::PostForm(
    std::string url, const HttpHeaderList& fields,
    HttpHeaderList headers) const {
  HttpClientRequest request;
  request.method = "POST";
  request.url = std::move(url);
  request.headers = std::move(headers);
  if (!HasHeader(request.headers, "content-type")) {
    request.headers.emplace_back("Content-Type",
                                 "application/x-www-form-urlencoded");
  }
  request.body = FormEncode(fields);
  return Send(request);
}

std::string HttpClient::FormEncode(const HttpHeaderList& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto encode = [](std::string* out, absl::string_view s) {
    for (unsigned char c : s) {
      if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ||
          c == '~') {
        out->push_back(static_cast<char>(c));
      } else {
        out->push_back('%');
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
      }
    }
  };
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    encode(&out, name);
    out.push_back('=');
    encode(&out, value);
  }
  return out;
}

absl::StatusOr<HttpResponse> SendWithBodyLimit(
    const HttpClient& http, HttpClientRequest request, uint64_t max_bytes,
    const std::function<absl::Status(absl::string_view chunk)>& write) {
  uint64_t seen = 0;
  bool too_big = false;
  request.sink = [&](absl::string_view chunk) -> absl::Status {
    seen += chunk.size();
    if (seen > max_bytes) {
      too_big = true;
      return absl::OutOfRangeError("file over the limit");
    }
    return write(chunk);
  };
  absl::StatusOr<HttpResponse> r = http.Send(request);
  if (too_big) return absl::OutOfRangeError("file over the limit");
  return r;
}

}  // namespace imbridge
