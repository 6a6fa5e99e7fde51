// Small SQLiteCpp conveniences shared by the store's .cc files. Module-internal.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <string_view>

#include "core/bytes.h"

namespace nodelink::keys {

// A BLOB column as bytes (NULL reads as empty).
inline Bytes BlobOf(const SQLite::Column& column) {
  const auto* p = static_cast<const uint8_t*>(column.getBlob());
  int n = column.getBytes();
  return p == nullptr || n <= 0 ? Bytes{} : Bytes(p, p + n);
}

// Binds bytes as a BLOB; an empty span binds an empty BLOB, not NULL (sqlite3_bind_blob binds
// NULL for a null pointer).
inline void BindBlob(SQLite::Statement& st, int index, ByteView data) {
  static const uint8_t kEmpty = 0;
  st.bind(index, data.empty() ? &kEmpty : data.data(), static_cast<int>(data.size()));
}

inline void BindText(SQLite::Statement& st, int index, std::string_view text) {
  st.bind(index, std::string(text));
}

}  // namespace nodelink::keys
