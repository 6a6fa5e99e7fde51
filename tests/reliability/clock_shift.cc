// LD_PRELOAD shim for the clock-skew test: shifts CLOCK_REALTIME (what std::chrono::system_clock
// and so nodelink's clock read) by NODELINK_TEST_CLOCK_SHIFT_S seconds, so that a real
// participant process runs with a wrong wall clock. Monotonic clocks are left alone. Built
// without sanitizers: it is loaded before their runtime.
#include <dlfcn.h>
#include <time.h>

#include <cstdlib>

using ClockGettime = int (*)(clockid_t, timespec*);

extern "C" int clock_gettime(clockid_t id, timespec* ts) {
  static const ClockGettime real = reinterpret_cast<ClockGettime>(dlsym(RTLD_NEXT, "clock_gettime"));
  static const long shift = [] {
    const char* s = std::getenv("NODELINK_TEST_CLOCK_SHIFT_S");
    return s != nullptr ? std::atol(s) : 0L;
  }();
  const int r = real(id, ts);
  if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift;
  return r;
}
