// One router wired to the in-process seam implementations, with a ManualClock and no sweep timer.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "router/answered_log.h"
#include "router/router.h"
#include "router_test_support.h"

namespace nodelink::router::testing {

inline RouterOptions TestOptions(size_t workers = 4) {
  RouterOptions options;
  options.workers = workers;
  options.handler_deadline_ms = 1000;
  options.inbox_capacity = 100000;  // the overflow test sets its own bound
  options.sweep_interval_ms = 0;    // tests call Sweep() after advancing the clock
  return options;
}

struct RouterFixture {
  explicit RouterFixture(std::string self = "alice", RouterOptions options = TestOptions(),
                         TestOpener::DoneMode mode = TestOpener::DoneMode::kInline,
                         core::ManualClock* shared_clock = nullptr)
      : clock(shared_clock != nullptr ? *shared_clock : own_clock),
        opener(self, clock, mode),
        sender(self) {
    auto created = Router::Create(options, opener, sender, answered, clock, acks.Callback());
    if (!created.ok()) throw std::runtime_error(std::string(created.status().message()));
    router = std::move(*created);
  }
  ~RouterFixture() { router->Stop(); }

  core::ManualClock own_clock;
  core::ManualClock& clock;
  TestOpener opener;
  LoopSender sender;
  InMemoryAnsweredLog answered;
  AckRecorder acks;
  std::unique_ptr<Router> router;  // last: destroyed first
};

}  // namespace nodelink::router::testing
