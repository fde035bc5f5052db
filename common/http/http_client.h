#ifndef IMBRIDGE_COMMON_HTTP_HTTP_CLIENT_H_
#define IMBRIDGE_COMMON_HTTP_HTTP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imbridge {

// HTTP header fields in order; names compare case-insensitively and may
// repeat. (The same alias as in webhook_server.h.)
using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;

// One part of a multipart/form-data body.
struct MultipartPart {
  // The form field name ("file", "chat_id", ...).
  std::string name;
  // A file part has a filename (sent in Content-Disposition); a plain field
  // has none.
  std::string filename;
  // The part's Content-Type; empty sends none (curl then sends
  // application/octet-stream for file parts).
  std::string content_type;
  // The content, when it is in memory. Ignored when `reader` is set.
  std::string data;
  // Streams the content instead: fills up to `size` bytes of `buffer` and
  // returns how many it wrote, 0 at the end, or an error that aborts the
  // request (and is returned by Send). Called on the calling thread.
  std::function<absl::StatusOr<size_t>(char* buffer, size_t size)> reader;
  // The length `reader` will produce, or -1 when unknown (the body is then
  // sent chunked).
  int64_t reader_size = -1;
};

// A request for HttpClient::Send.
struct HttpClientRequest {
  // GET, POST, PUT, PATCH, DELETE or HEAD.
  std::string method = "GET";
  // An absolute http:// or https:// URL. It may hold a secret (Telegram's
  // token): the client never logs it, only its host.
  std::string url;
  // Sent as given. Authorization and Cookie are dropped when a redirect
  // leads to another scheme, host or port.
  HttpHeaderList headers;
  // The body (JSON, form, anything); set a Content-Type header to match.
  // Must be empty when `multipart` is set.
  std::string body;
  // When not empty, the body is multipart/form-data built from these parts.
  std::vector<MultipartPart> multipart;
  // When set, the body of a 2xx response is streamed here in pieces instead
  // of being kept in HttpResponse::body; an error aborts the transfer and is
  // returned by Send. Bodies of other statuses are still kept in `body`.
  std::function<absl::Status(absl::string_view chunk)> sink;
  // Overrides of the client's options for this request.
  std::optional<absl::Duration> timeout;
  std::optional<absl::Duration> connect_timeout;
  std::optional<size_t> max_response_bytes;
};

// What the server answered (after redirects).
struct HttpResponse {
  int status = 0;
  // Header fields of the final response.
  HttpHeaderList headers;
  // The body; empty when it went to the request's sink.
  std::string body;
  // How many redirects were followed.
  int redirects = 0;

  // The first value of header `name` (case-insensitive); empty when absent.
  absl::string_view Header(absl::string_view name) const;
  // Retry-After as a duration from `now` (delta-seconds or an HTTP date);
  // nullopt when absent or unparsable; never negative.
  std::optional<absl::Duration> RetryAfter(absl::Time now) const;
};

// A blocking HTTP client for messengers' REST APIs, on libcurl.
//
// Send() performs one request on the calling thread and blocks until the
// response is complete, the timeout passes or the transfer fails. Any HTTP
// status is a successful Send() (check HttpResponse::status); errors are
// transport failures:
//   kUnavailable       could not resolve, connect, send or receive
//                      (retryable), with curl's message;
//   kDeadlineExceeded  the connect or total timeout passed;
//   kOutOfRange        the response body exceeded max_response_bytes;
//   kInvalidArgument   a bad URL, method, header or request shape;
//   kFailedPrecondition more than max_redirects redirects, a redirect that
//                      would replay a streamed body, or TLS verification;
//   the status of a multipart reader or a sink that failed.
// Redirects are followed by the client itself (at most `max_redirects`):
// 303, and 301/302 after POST, become GET without a body; 307/308 repeat
// the request. Proxies come from the environment (http_proxy, https_proxy,
// no_proxy) as curl reads them. Bodies, URLs' paths and header values are
// never logged.
//
// Thread-safe: Send() may run concurrently on many threads; idle curl
// handles (and their open connections) are pooled and reused.
class HttpClient {
 public:
  struct Options {
    // Time to establish a connection (TCP and TLS).
    absl::Duration connect_timeout = absl::Seconds(10);
    // Time for the whole request, across redirects.
    absl::Duration timeout = absl::Seconds(60);
    // Redirects followed before failing.
    int max_redirects = 3;
    // Largest response body accepted (buffered or streamed).
    size_t max_response_bytes = 64 << 20;
    // Sent as User-Agent unless the request sets one.
    std::string user_agent = "imbridge/0.1";
    // A CA bundle to verify TLS servers with; empty uses the system's.
    std::string ca_file;
    // Idle curl handles kept for reuse.
    size_t max_idle_handles = 16;
    // When not empty, every Send() is counted in the default metrics
    // registry as imbridge_messenger_responses_total{platform,status}, with
    // this platform and status one of 2xx, 3xx, 429, 4xx (other than 429),
    // 5xx, or error (no HTTP answer: Send() failed).
    std::string metrics_platform;
  };

  HttpClient();
  explicit HttpClient(Options options);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs `request`; see the class comment for the errors.
  absl::StatusOr<HttpResponse> Send(const HttpClientRequest& request) const;

  // Shorthands for Send().
  absl::StatusOr<HttpResponse> Get(std::string url,
                                   HttpHeaderList headers = {}) const;
  absl::StatusOr<HttpResponse> PostJson(std::string url, std::string json,
                                        HttpHeaderList headers = {}) const;
  // `fields` are form-urlencoded in order.
  absl::StatusOr<HttpResponse> PostForm(std::string url,
                                        const HttpHeaderList& fields,
                                        HttpHeaderList headers = {}) const;

  // "application/x-www-form-urlencoded" encoding of `fields`.
  static std::string FormEncode(const HttpHeaderList& fields);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The default options, with metrics_platform `platform`: a client for that
// messenger's API whose answers are counted.
HttpClient::Options MessengerClientOptions(std::string platform);

// Sends `request` with its 2xx body streamed to `write`, at most `max_bytes`
// of it: a body that passes the limit aborts the transfer and returns
// kOutOfRange ("file over the limit"). Otherwise as http.Send() (an error of
// `write` is returned as it is). For downloading a messenger's file into the
// router's blob store (InboundFile::download).
absl::StatusOr<HttpResponse> SendWithBodyLimit(
    const HttpClient& http, HttpClientRequest request, uint64_t max_bytes,
    const std::function<absl::Status(absl::string_view chunk)>& write);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_HTTP_CLIENT_H_
