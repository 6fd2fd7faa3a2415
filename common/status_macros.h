// common/status_macros.h — the one pair of macros that propagate absl::Status.
//
// Every fallible function in edgellm returns absl::Status or absl::StatusOr<T>;
// these macros keep the happy path readable:
//
//   EDGELLM_RETURN_IF_ERROR(file.Sync());
//   EDGELLM_ASSIGN_OR_RETURN(auto reader, GgufReader::Open(path));
#ifndef EDGELLM_COMMON_STATUS_MACROS_H_
#define EDGELLM_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define EDGELLM_STATUS_CONCAT_INNER_(a, b) a##b
#define EDGELLM_STATUS_CONCAT_(a, b) EDGELLM_STATUS_CONCAT_INNER_(a, b)

#define EDGELLM_RETURN_IF_ERROR(expr)                 \
  do {                                                \
    ::absl::Status edgellm_status_ = (expr);          \
    if (!edgellm_status_.ok()) return edgellm_status_; \
  } while (false)

#define EDGELLM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#define EDGELLM_ASSIGN_OR_RETURN(lhs, rexpr) \
  EDGELLM_ASSIGN_OR_RETURN_IMPL_(            \
      EDGELLM_STATUS_CONCAT_(edgellm_statusor_, __LINE__), lhs, rexpr)

#endif  // EDGELLM_COMMON_STATUS_MACROS_H_
