// Process-wide Abseil setting for the gRPC this module runs on.
#pragma once

namespace nodelink::transport {

// Debian builds Abseil without NDEBUG, so every absl::Mutex acquisition (gRPC's locks) also
// updates a process-wide lock-order graph under one global spin lock, a deadlock check meant for
// debug builds (~1.5 % of the hub's and a participant's CPU at one round trip in flight,
// bench/RESULTS.md, nineteenth session). Turns that check off, once per process. Called by
// HubServer::Start and HubClient::Start; thread-safe.
void SkipAbseilDeadlockDetection();

}  // namespace nodelink::transport
