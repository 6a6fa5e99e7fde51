#include "transport/abseil_mode.h"

#include <mutex>

#include "absl/synchronization/mutex.h"

namespace nodelink::transport {

void SkipAbseilDeadlockDetection() {
  static std::once_flag once;
  std::call_once(once, [] { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); });
}

}  // namespace nodelink::transport
