// Uses the installed package the way an application does: the Node API, linked through
// nodelink::nodelink, refusing options that cannot work (no store), with a clear error.
#include <cstdio>
#include <string>

#include <nodelink/errors.hpp>
#include <nodelink/node.hpp>
#include <nodelink/version.hpp>

int main() {
  nodelink::NodeOptions options;
  options.hub_address = "127.0.0.1:1";
  auto node = nodelink::Node::Start(options);
  if (node.ok()) return 1;  // there is no store: this must fail
  std::printf("nodelink %s speaks %s; Start without a store says: %s\n", nodelink::Version(),
              nodelink::ProtocolName(), std::string(node.status().message()).c_str());
  return 0;
}
