#include "transport/abseil_mode.h"

#include <doctest/doctest.h>

#include "absl/synchronization/mutex.h"

namespace nodelink::transport {
namespace {

// Debian's Abseil is built with its debug checks: by default an inverted lock order (a then b,
// later b then a) is reported as a potential deadlock and aborts the process. Once the check is
// off, the same sequence runs through; without SkipAbseilDeadlockDetection this test aborts
// (checked when it was written by removing the call).
TEST_CASE("abseil mode: lock-order tracking is off once a hub or client starts") {
  SkipAbseilDeadlockDetection();
  SkipAbseilDeadlockDetection();  // idempotent
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
