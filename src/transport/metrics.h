// The hub's counters, and their Prometheus text rendering (docs/hub-operations.md lists them).
// No gRPC type appears here.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "transport/fault_injection.h"
#include "transport/queue_committer.h"

namespace nodelink::transport {

// Rejected codes are indexed by their v1::Code number (1..9; 0 unused).
inline constexpr size_t kRejectCodeSlots = 10;

// Live counters, updated with relaxed atomics from any thread.
struct HubCounters {
  std::atomic<int64_t> connected{0};
  std::atomic<uint64_t> streams_opened{0};
  std::atomic<uint64_t> streams_replaced{0};
  std::atomic<uint64_t> streams_unauthenticated{0};
  std::atomic<uint64_t> streams_permission_denied{0};
  std::atomic<uint64_t> streams_failed_precondition{0};
  std::atomic<uint64_t> accepted{0};    // newly queued
  std::atomic<uint64_t> duplicates{0};  // answered Accepted again, not queued twice
  std::array<std::atomic<uint64_t>, kRejectCodeSlots> rejected{};
  std::atomic<uint64_t> pushed{0};
  std::atomic<uint64_t> redeliveries{0};  // pushes of an envelope pushed before (this process)
  std::atomic<uint64_t> pushed_at_once{0};  // pushed while its append commits, not read back
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> delivered_unmatched{0};  // Delivered naming nothing in flight
  std::atomic<uint64_t> expired{0};
  std::atomic<uint64_t> notices_sent{0};
  std::atomic<uint64_t> reads_paused{0};  // times a stream stopped being read (backpressure)
  std::array<std::atomic<uint64_t>, kFaultKinds> faults_injected{};  // by Fault (tests only)
};

// A copy of everything, for tests and the metrics endpoint.
struct HubMetricsSnapshot {
  int64_t connected = 0;
  uint64_t streams_opened = 0, streams_replaced = 0, streams_unauthenticated = 0,
           streams_permission_denied = 0, streams_failed_precondition = 0;
  uint64_t accepted = 0, duplicates = 0;
  std::array<uint64_t, kRejectCodeSlots> rejected{};
  uint64_t pushed = 0, redeliveries = 0, pushed_at_once = 0, delivered = 0, delivered_unmatched = 0,
           expired = 0, notices_sent = 0, reads_paused = 0;
  std::array<uint64_t, kFaultKinds> faults_injected{};
  QueueTotals queued;
  CommitterStats commits;
};

HubMetricsSnapshot Snapshot(const HubCounters& c, const QueueTotals& queued,
                            const CommitterStats& commits);

// Prometheus text exposition format 0.0.4.
std::string RenderPrometheus(const HubMetricsSnapshot& s);

}  // namespace nodelink::transport
