#ifndef IMBRIDGE_ADAPTERS_TELEGRAM_SIGNATURE_H_
#define IMBRIDGE_ADAPTERS_TELEGRAM_SIGNATURE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace imbridge::adapters::telegram {

// Checks Telegram's X-Telegram-Bot-Api-Secret-Token header (`received`,
// empty when absent) against the configured secret in constant time.
// kInvalidArgument for an empty or blank `expected` (a configuration
// error); kUnauthenticated when `received` is missing or differs. No
// message contains either token. Pure; thread-safe.
absl::Status VerifySecretToken(absl::string_view expected,
                               absl::string_view received);

}  // namespace imbridge::adapters::telegram

#endif  // IMBRIDGE_ADAPTERS_TELEGRAM_SIGNATURE_H_
