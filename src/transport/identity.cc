#include "transport/identity.h"

#include <arpa/inet.h>

#include "messages/names.h"

namespace nodelink::transport {

absl::StatusOr<std::string> NodeIdFromPeerUris(const std::vector<std::string>& peer_uris,
                                               std::string_view federation) {
  const std::string* found = nullptr;
  for (const std::string& uri : peer_uris) {
    if (!std::string_view(uri).starts_with(kParticipantUriScheme)) continue;
    if (found != nullptr) {
      return absl::UnauthenticatedError(
          "the client certificate carries several nodelink:// URIs; a participant certificate "
          "has exactly one");
    }
    found = &uri;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError(
        "no client certificate with a nodelink:// URI was presented; connect with the "
        "participant certificate issued by the federation CA");
  }
  std::string_view rest = std::string_view(*found).substr(kParticipantUriScheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return absl::UnauthenticatedError("the certificate URI is not nodelink://<federation>/<node>");
  }
  std::string_view fed = rest.substr(0, slash);
  std::string_view node = rest.substr(slash + 1);
  if (fed != federation) {
    return absl::UnauthenticatedError(
        "the client certificate belongs to another federation; this "
        "hub serves " +
        std::string(federation));
  }
  if (!messages::IsValidName(node)) {
    return absl::UnauthenticatedError("the node id in the certificate URI is not a valid id");
  }
  return std::string(node);
}

std::string ParticipantUri(std::string_view federation, std::string_view node_id) {
  return std::string(kParticipantUriScheme) + std::string(federation) + "/" + std::string(node_id);
}

bool IsLoopbackAddress(std::string_view address) {
  std::string host;
  if (address.starts_with("[")) {
    const size_t end = address.find(']');
    if (end == std::string_view::npos) return false;
    host = std::string(address.substr(1, end - 1));
  } else {
    const size_t colon = address.rfind(':');
    host = std::string(colon == std::string_view::npos ? address : address.substr(0, colon));
    if (host.find(':') != std::string::npos) host = std::string(address);  // bare IPv6
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

}  // namespace nodelink::transport
