#include "keys/san_uri.h"

#include "messages/names.h"

namespace nodelink::keys {

std::string NodelinkUri(std::string_view federation, std::string_view node_id) {
  std::string uri(kNodelinkUriScheme);
  uri += federation;
  uri += '/';
  uri += node_id;
  return uri;
}

std::optional<NodelinkName> ParseNodelinkUri(std::string_view uri) {
  if (uri.substr(0, kNodelinkUriScheme.size()) != kNodelinkUriScheme) return std::nullopt;
  std::string_view rest = uri.substr(kNodelinkUriScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view federation = rest.substr(0, slash);
  std::string_view node_id = rest.substr(slash + 1);
  // IsValidName admits neither '/' nor ':' nor '?', so anything beyond the two names is refused.
  if (!messages::IsValidName(federation) || !messages::IsValidName(node_id)) return std::nullopt;
  return NodelinkName{std::string(federation), std::string(node_id)};
}

}  // namespace nodelink::keys
