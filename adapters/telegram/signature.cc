#include "adapters/telegram/signature.h"

#include "adapters/common/signature.h"

namespace imbridge::adapters::telegram {

absl::Status VerifySecretToken(absl::string_view expected,
                               absl::string_view received) {
  if (absl::Status s = CheckSigningSecret(expected); !s.ok()) return s;
  if (received.empty()) {
    return absl::UnauthenticatedError(
        "missing X-Telegram-Bot-Api-Secret-Token header");
  }
  if (!ConstantTimeEquals(expected, received)) {
    return absl::UnauthenticatedError(
        "X-Telegram-Bot-Api-Secret-Token does not match");
  }
  return absl::OkStatus();
}

}  // namespace imbridge::adapters::telegram
