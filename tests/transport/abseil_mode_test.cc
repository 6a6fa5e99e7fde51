// A test binary of its own: Abseil's mode is process-wide, so in a binary whose other tests start
// hubs first this test would pass without the call it checks.
#include "transport/abseil_mode.h"

#include <doctest/doctest.h>

#include <utility>

#include "absl/synchronization/mutex.h"
#include "transport/hub_server.h"

namespace nodelink::transport {
namespace {

// Debian's Abseil is built with its debug checks: an inverted lock order (a then b, later b then
// a) is reported as a potential deadlock and aborts the process. Once a hub has started, the same
// sequence runs through; with the call removed from HubServer::Start this test aborts (checked
// when it was written).
TEST_CASE("abseil mode: lock-order tracking is off once a hub starts") {
  HubServerOptions options;
  options.insecure = true;
  options.federation = "fed";
  options.queue = QueueBackend::kMemory;
  auto hub = HubServer::Start(std::move(options));
  REQUIRE(hub.ok());
  absl::Mutex a;
  absl::Mutex b;
  int ran = 0;
  {
    absl::MutexLock hold_a(&a);
    absl::MutexLock hold_b(&b);
    ++ran;
  }
  {
    absl::MutexLock hold_b(&b);
    absl::MutexLock hold_a(&a);
    ++ran;
  }
  CHECK(ran == 2);
}

}  // namespace
}  // namespace nodelink::transport
