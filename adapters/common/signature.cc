#include "adapters/common/signature.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http/hmac.h"

namespace imbridge::adapters {
namespace {

// Parses a unix-seconds timestamp header: 1 to 12 ASCII digits, nothing else.
absl::StatusOr<int64_t> ParseTimestamp(absl::string_view header,
                                       absl::string_view header_name) {
  if (header.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", header_name, " header"));
  }
  if (header.size() > 12) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed ", header_name, " header"));
  }
  for (char c : header) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::UnauthenticatedError(
          absl::StrCat("malformed ", header_name, " header"));
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(header, &value)) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed ", header_name, " header"));
  }
  return value;
}

// The shared shape of the Slack and TeamSpirit schemes.
struct Scheme {
  absl::string_view timestamp_header_name;
  absl::string_view signature_header_name;
  absl::string_view prefix;  // "v0=" or "v1="
};

std::string SlackBase(absl::string_view ts, absl::string_view body) {
  return absl::StrCat("v0:", ts, ":", body);
}

std::string TeamSpiritBase(absl::string_view ts, absl::string_view body) {
  return absl::StrCat(ts, ".", body);
}

template <typename BaseFn>
absl::Status Verify(const Scheme& scheme, BaseFn base, absl::string_view secret,
                    absl::string_view timestamp, absl::string_view signature,
                    absl::string_view body, absl::Time now,
                    absl::Duration window) {
  if (absl::Status s = CheckSigningSecret(secret); !s.ok()) return s;
  if (signature.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", scheme.signature_header_name, " header"));
  }
  absl::StatusOr<int64_t> ts =
      ParseTimestamp(timestamp, scheme.timestamp_header_name);
  if (!ts.ok()) return ts.status();
  absl::Duration skew = absl::AbsDuration(now - absl::FromUnixSeconds(*ts));
  if (skew > window) {
    return absl::UnauthenticatedError(absl::StrCat(
        scheme.timestamp_header_name, " is outside the allowed window of ",
        absl::FormatDuration(window), " (skew ", absl::FormatDuration(skew),
        ")"));
  }
  std::string expected =
      absl::StrCat(scheme.prefix, HmacSha256Hex(secret, base(timestamp, body)));
  if (!ConstantTimeEquals(expected, signature)) {
    return absl::UnauthenticatedError(
        absl::StrCat(scheme.signature_header_name, " does not match"));
  }
  return absl::OkStatus();
}

constexpr Scheme kSlack = {"X-Slack-Request-Timestamp", "X-Slack-Signature",
                           "v0="};
constexpr Scheme kTeamSpirit = {"X-TeamSpirit-Timestamp",
                                "X-TeamSpirit-Signature", "v1="};

}  // namespace

absl::Status VerifySlackSignature(absl::string_view signing_secret,
                                  absl::string_view timestamp_header,
                                  absl::string_view signature_header,
                                  absl::string_view raw_body, absl::Time now,
                                  absl::Duration window) {
  return Verify(kSlack, SlackBase, signing_secret, timestamp_header,
                signature_header, raw_body, now, window);
}

absl::Status VerifyTeamSpiritSignature(absl::string_view secret,
                                       absl::string_view timestamp_header,
                                       absl::string_view signature_header,
                                       absl::string_view raw_body,
                                       absl::Time now, absl::Duration window) {
  return Verify(kTeamSpirit, TeamSpiritBase, secret, timestamp_header,
                signature_header, raw_body, now, window);
}

absl::StatusOr<std::string> SignTeamSpirit(absl::string_view secret,
                                           int64_t timestamp,
                                           absl::string_view body) {
  if (absl::Status s = CheckSigningSecret(secret); !s.ok()) return s;
  return absl::StrCat(
      kTeamSpirit.prefix,
      HmacSha256Hex(secret, TeamSpiritBase(absl::StrCat(timestamp), body)));
}

}  // namespace imbridge::adapters
