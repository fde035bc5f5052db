#ifndef IMBRIDGE_COMMON_STATUS_MACROS_H_
#define IMBRIDGE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define IMB_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status imb_status_ = (expr);       \
    if (!imb_status_.ok()) return imb_status_; \
  } while (0)

#define IMB_CONCAT_INNER_(a, b) a##b
#define IMB_CONCAT_(a, b) IMB_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration).
#define IMB_ASSIGN_OR_RETURN(lhs, rexpr) \
  IMB_ASSIGN_OR_RETURN_IMPL_(IMB_CONCAT_(imb_statusor_, __LINE__), lhs, rexpr)

#define IMB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()

#endif  // IMBRIDGE_COMMON_STATUS_MACROS_H_
