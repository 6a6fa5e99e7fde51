// absl::Status helpers. Fallible calls return absl::Status or absl::StatusOr<T> (STYLE: Errors).
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nodelink::core {

// Debian's abseil has its own string_view type; our signatures keep std::string_view.
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view FromAbsl(absl::string_view s) { return {s.data(), s.size()}; }

// Aborts with `what` when a programmer invariant is broken. Never used for input from the network
// or a file: those get a status.
[[noreturn]] void Die(std::string_view what);

}  // namespace nodelink::core

#define NL_STATUS_CONCAT_INNER(a, b) a##b
#define NL_STATUS_CONCAT(a, b) NL_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define NL_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    ::absl::Status nl_status_ = (expr);                 \
    if (!nl_status_.ok()) return nl_status_;            \
  } while (false)

// `lhs = value of expr` (an absl::StatusOr), or returns its error from the enclosing function.
#define NL_ASSIGN_OR_RETURN(lhs, expr) \
  NL_ASSIGN_OR_RETURN_IMPL(NL_STATUS_CONCAT(nl_statusor_, __LINE__), lhs, expr)
#define NL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
