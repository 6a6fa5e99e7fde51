// For tests of who commits, or when: glibc's condition variable may wake a sleeping thread with an
// earlier notify (a spurious wake-up), and a commit thread then commits what it finds. Such a
// test runs its case a few times: every run must keep the guarantees, and one at least must show
// the usual path.
#pragma once

namespace nodelink::overlay::testing {

// `run_once` checks the guarantees itself and returns whether its run took the usual path.
template <typename Case>
bool UsualPathInSomeRun(Case run_once) {
  for (int i = 0; i < 5; ++i) {
    if (run_once()) return true;
  }
  return false;
}

}  // namespace nodelink::overlay::testing
