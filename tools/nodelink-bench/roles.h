// The benchmark's child processes. Each opens one participant's key store, connects to the hub,
// plays one role and prints its figures as one JSON line on stdout ({"ready":true} first, once
// the hub welcomed it). Times are CLOCK_MONOTONIC nanoseconds (steady_clock), comparable across
// processes on one machine, so the parent can combine a sender's start with a receiver's end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "participant_flags.h"

namespace nodelink::bench {

struct RoleFlags {
  tools::ParticipantFlags participant;
  std::string role;  // one of RoleNames()
  std::string peer;  // the other participant (source, requester, raw-source, raw-requester)
  std::string tag;   // names one run: a sink counts only its own run's messages
  uint64_t count = 0;
  size_t size = 64;  // payload bytes
  uint32_t concurrency = 1;
  std::string latency_log;  // requester: "start_ns duration_ns" per round trip, if set
};

// The names --role accepts.
std::vector<std::string> RoleNames();

// Runs the role to completion (sinks and echo until done or SIGTERM); 0 on success.
int RunRole(const RoleFlags& flags);

// steady_clock now, in nanoseconds.
int64_t MonotonicNs();

}  // namespace nodelink::bench
