// Process-wide Abseil setting for the gRPC this module runs on.
#pragma once

namespace nodelink::transport {

// Debian builds Abseil without NDEBUG, so every absl::Mutex acquisition (gRPC's locks) also
// records the lock order in a process-wide graph under one global spin lock, and aborts the
// process on a cycle: a debug check that took ~1.5 % of the hub's and a participant's CPU at one
// round trip in flight by the profile; without it the hub's RSS with 10,000 participants was
// 37 MiB lower (bench/RESULTS.md, nineteenth session). Turns it off for the whole process,
// including an application that embeds a Node (the hub client calls this). Called by
// HubServer::Start and HubClient::Start; thread-safe. Never turn it back on in the same process:
// locks taken before the switch keep stale records that would then be reported as false cycles.
void SkipAbseilDeadlockDetection();

}  // namespace nodelink::transport
