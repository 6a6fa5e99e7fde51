// The key store's schema: a header table written at creation (never migrated), and a chain of
// numbered migrations from version 0 (header only) to the current version. Module-internal.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace SQLite {
class Database;
}

namespace nodelink::keys {

class StoreSealer;

// The version this build creates and migrates to.
inline constexpr int kStoreSchemaVersion = 4;

// One step of the schema. `apply` runs inside the opening transaction, after the passphrase was
// verified; it may read and re-seal values through `sealer`. It must not commit.
struct Migration {
  int from = 0;
  int to = 0;
  std::string description;
  std::function<absl::Status(SQLite::Database& db, const StoreSealer& sealer)> apply;
};

// 0 -> 1: every table of the version-1 schema.
const std::vector<Migration>& DefaultMigrations();

// The version a registry leads to. Aborts if the steps do not form a chain 0 -> 1 -> ... -> n
// (a programmer error).
int TargetSchemaVersion(const std::vector<Migration>& migrations);

// Applies the steps from `from` to the registry's target and records the version in the header.
// The caller holds a write transaction and commits or rolls back.
[[nodiscard]] absl::Status RunMigrations(SQLite::Database& db, const StoreSealer& sealer, int from,
                                         const std::vector<Migration>& migrations);

// A column that holds StoreSealer output, and the SQL expression that computes each row's seal
// context from that row. Passphrase change re-seals exactly these columns, so every table that
// stores sealed values MUST be listed here (keys/seal_contexts.h builds the same contexts in
// C++; a test checks that both agree).
struct SealedColumn {
  const char* table;
  const char* column;
  const char* context_sql;
};
const std::vector<SealedColumn>& SealedColumns();

}  // namespace nodelink::keys
