// SQLite exceptions -> statuses with messages an operator can act on. Module-internal.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace SQLite {
class Exception;
}

namespace nodelink::keys {

// Unavailable (locked), InvalidArgument (not a database), DataLoss (corrupt), FailedPrecondition
// (read-only), ResourceExhausted (disk full), Internal otherwise. The message names `path`.
absl::Status SqliteError(const SQLite::Exception& e, std::string_view path);

}  // namespace nodelink::keys
