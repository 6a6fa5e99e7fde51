#include "process_guard.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

namespace nodelink::tools {

namespace {
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void DisableCoreDumps() {
  ::prctl(PR_SET_DUMPABLE, 0);
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

void LogToStderr() { spdlog::set_default_logger(spdlog::stderr_color_mt("nodelink")); }

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set = TerminationSignals();
  int sig = 0;
  ::sigwait(&set, &sig);
  return sig;
}

int WaitForTerminationSignalFor(long timeout_ms) {
  sigset_t set = TerminationSignals();
  timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000};
  int sig = ::sigtimedwait(&set, nullptr, &timeout);
  return sig < 0 ? 0 : sig;
}

}  // namespace nodelink::tools
