#include "keys/store_errors.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <string>

#include "core/status.h"

namespace nodelink::keys {

absl::Status SqliteError(const SQLite::Exception& e, std::string_view path) {
  std::string where = "key store " + std::string(path);
  switch (e.getErrorCode() & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          where +
          " is locked by another process (a running nodelink-node, or another "
          "nodelink-keys command); try again when it is done");
    case SQLITE_NOTADB:
      return absl::InvalidArgumentError(std::string(path) +
                                        " is not a nodelink key store (not an SQLite database)");
    case SQLITE_CORRUPT:
      return absl::DataLossError(where + " is corrupt (" + e.what() +
                                 "); restore it from a backup, then drop its channels "
                                 "(nodelink-keys channels drop --all)");
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(where + " is read-only: " + e.what());
    case SQLITE_FULL:
      return absl::ResourceExhaustedError("disk full while writing " + where);
    case SQLITE_CANTOPEN:
      return absl::NotFoundError("cannot open " + where + ": " + e.what());
    default:
      return absl::InternalError(where + ": " + e.what());
  }
}

}  // namespace nodelink::keys
