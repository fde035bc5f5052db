#include "common/http/url_origin.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "curl/curl.h"

namespace imbridge {
namespace {

// One part of a parsed URL; empty when absent.
std::string Part(CURLU* u, CURLUPart what) {
  char* part = nullptr;
  if (curl_url_get(u, what, &part, 0) != CURLUE_OK || part == nullptr) {
    return "";
  }
  std::string out = part;
  curl_free(part);
  return out;
}

absl::StatusOr<UrlOrigin> Parse(CURLU* u, const std::string& url) {
  // ws and wss are not schemes every libcurl build supports; parse any.
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
      CURLUE_OK) {
    return absl::InvalidArgumentError("malformed URL");
  }
  UrlOrigin origin;
  origin.scheme = absl::AsciiStrToLower(Part(u, CURLUPART_SCHEME));
  int default_port = 0;
  if (origin.scheme == "http" || origin.scheme == "ws") {
    default_port = 80;
  } else if (origin.scheme == "https" || origin.scheme == "wss") {
    default_port = 443;
  } else {
    return absl::InvalidArgumentError(
        "URL scheme must be http, https, ws or wss");
  }
  origin.host = absl::AsciiStrToLower(Part(u, CURLUPART_HOST));
  if (origin.host.empty()) return absl::InvalidArgumentError("URL has no host");
  std::string port = Part(u, CURLUPART_PORT);
  if (port.empty()) {
    origin.port = default_port;
  } else if (!absl::SimpleAtoi(port, &origin.port) || origin.port <= 0 ||
             origin.port > 65535) {
    return absl::InvalidArgumentError("bad port");
  }
  origin.has_user_info =
      !Part(u, CURLUPART_USER).empty() || !Part(u, CURLUPART_PASSWORD).empty();
  return origin;
}

}  // namespace

std::string UrlOrigin::ForLog() const {
  return absl::StrCat(scheme, "://", host, ":", port);
}

absl::StatusOr<UrlOrigin> ParseUrlOrigin(absl::string_view url) {
  CURLU* u = curl_url();
  if (u == nullptr) return absl::ResourceExhaustedError("out of memory");
  absl::StatusOr<UrlOrigin> origin = Parse(u, std::string(url));
  curl_url_cleanup(u);
  return origin;
}

}  // namespace imbridge
