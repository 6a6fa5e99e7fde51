// The participant identity URI of PROTOCOL.md section 3: nodelink://<federation>/<node-id>,
// compared as exact bytes (no URI normalisation). Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nodelink::keys {

inline constexpr std::string_view kNodelinkUriScheme = "nodelink://";

// "nodelink://" + federation + "/" + node_id. The caller has validated both names.
std::string NodelinkUri(std::string_view federation, std::string_view node_id);

struct NodelinkName {
  std::string federation;
  std::string node_id;
};
// Splits a URI of exactly that form whose two parts are valid names (PROTOCOL.md section 1);
// nullopt for anything else (another scheme, a path with more segments, a query, a NUL...).
std::optional<NodelinkName> ParseNodelinkUri(std::string_view uri);

}  // namespace nodelink::keys
