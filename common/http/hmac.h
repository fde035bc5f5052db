#ifndef IMBRIDGE_COMMON_HTTP_HMAC_H_
#define IMBRIDGE_COMMON_HTTP_HMAC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// The primitives that authenticate HTTP requests with a shared secret:
// HMAC-SHA256 (OpenSSL), constant-time comparison, and the check of a secret
// sent verbatim in a header. Each messenger's signature scheme is built on
// these (in each adapter, and in the emulators that sign like the real
// servers).
//
// Contract for the whole file: every function is pure, thread-safe and
// non-blocking. No message ever contains a secret or a signature.

namespace imbridge {

// HMAC-SHA256(key, message) as 64 lower-case hex characters.
std::string HmacSha256Hex(absl::string_view key, absl::string_view message);

// True when `a` and `b` are equal. The time taken does not depend on where
// they differ, nor on their lengths (both are hashed first), so it is safe
// for comparing secrets and signatures.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// OK when `secret` has a character other than white space; kInvalidArgument
// ("signing secret is empty or blank", a configuration error) otherwise.
absl::Status CheckSigningSecret(absl::string_view secret);

// Checks a secret token sent verbatim in a header (Telegram's
// X-Telegram-Bot-Api-Secret-Token) against the configured one in constant
// time. kInvalidArgument for an empty or blank `expected`; kUnauthenticated
// when `received` is missing (empty) or differs.
absl::Status VerifySecretToken(absl::string_view expected,
                               absl::string_view received);

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_HTTP_HMAC_H_
