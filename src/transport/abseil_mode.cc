#include "transport/abseil_mode.h"

#include "absl/synchronization/mutex.h"

namespace nodelink::transport {

// One atomic store: idempotent, safe from any thread.
void SkipAbseilDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace nodelink::transport
