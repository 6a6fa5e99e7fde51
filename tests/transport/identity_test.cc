#include "transport/identity.h"

#include <doctest/doctest.h>

namespace nodelink::transport {
namespace {

TEST_CASE("identity: exactly one nodelink URI of this federation with a valid node id") {
  auto ok = NodeIdFromPeerUris({"nodelink://fed/node-a"}, "fed");
  REQUIRE(ok.ok());
  CHECK(*ok == "node-a");
  // Other URI schemes beside it are ignored.
  CHECK(NodeIdFromPeerUris({"spiffe://x/y", "nodelink://fed/n1"}, "fed").ok());
  auto refused = [](std::vector<std::string> uris) {
    auto r = NodeIdFromPeerUris(uris, "fed");
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_FALSE(r.status().message().empty());
  };
  refused({});
  refused({"https://fed/node-a"});
  refused({"nodelink://fed/a", "nodelink://fed/b"});
  refused({"nodelink://other/node-a"});
  refused({"nodelink://fed/"});
  refused({"nodelink://fed"});
  refused({"nodelink://fed/a/b"});
  refused({"nodelink://fed/bad node"});
  refused({"nodelink://FED/node-a"});  // exact bytes, no normalisation
  refused({"nodelink://fed/" + std::string(65, 'a')});
}

TEST_CASE("identity: loopback addresses for the insecure mode") {
  CHECK(IsLoopbackAddress("127.0.0.1:0"));
  CHECK(IsLoopbackAddress("127.1.2.3:443"));
  CHECK(IsLoopbackAddress("localhost:80"));
  CHECK(IsLoopbackAddress("[::1]:80"));
  CHECK_FALSE(IsLoopbackAddress("0.0.0.0:80"));
  CHECK_FALSE(IsLoopbackAddress("[::]:80"));
  CHECK_FALSE(IsLoopbackAddress("10.0.0.1:80"));
  CHECK_FALSE(IsLoopbackAddress("example.org:80"));
  CHECK_FALSE(IsLoopbackAddress(":80"));
}

}  // namespace
}  // namespace nodelink::transport
