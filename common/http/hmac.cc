#include "common/http/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "absl/strings/ascii.h"

namespace imbridge {

std::string HmacSha256Hex(absl::string_view key, absl::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), digest, &length) == nullptr) {
    // Only fails on allocation failure inside OpenSSL.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(length * 2, '\0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char da[SHA256_DIGEST_LENGTH];
  unsigned char db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  bool digests_equal = CRYPTO_memcmp(da, db, sizeof(da)) == 0;
  return digests_equal & (a.size() == b.size());
}

absl::Status CheckSigningSecret(absl::string_view secret) {
  for (char c : secret) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("signing secret is empty or blank");
}

absl::Status VerifySecretToken(absl::string_view expected,
                               absl::string_view received) {
  if (absl::Status s = CheckSigningSecret(expected); !s.ok()) return s;
  if (received.empty()) {
    return absl::UnauthenticatedError("missing secret token header");
  }
  if (!ConstantTimeEquals(expected, received)) {
    return absl::UnauthenticatedError("secret token does not match");
  }
  return absl::OkStatus();
}

}  // namespace imbridge
