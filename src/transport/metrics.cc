#include "transport/metrics.h"

#include "fmt/format.h"

namespace nodelink::transport {

namespace {

// PROTOCOL 4 spelling of each Rejected code, by number.
constexpr std::array<const char*, kRejectCodeSlots> kCodeNames = {
    "CODE_UNSPECIFIED",    "UNKNOWN_DESTINATION", "TOO_LARGE", "IMPERSONATION",
    "MALFORMED",           "QUEUE_FULL",          "EXPIRED",   "WRONG_FEDERATION",
    "UNSUPPORTED_VERSION", "RATE_LIMITED"};

void Metric(std::string& out, const char* name, const char* type, const char* help,
            uint64_t value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

HubMetricsSnapshot Snapshot(const HubCounters& c, const QueueTotals& queued,
                            const CommitterStats& commits) {
  constexpr auto r = std::memory_order_relaxed;
  HubMetricsSnapshot s;
  s.connected = c.connected.load(r);
  s.streams_opened = c.streams_opened.load(r);
  s.streams_replaced = c.streams_replaced.load(r);
  s.streams_unauthenticated = c.streams_unauthenticated.load(r);
  s.streams_permission_denied = c.streams_permission_denied.load(r);
  s.streams_failed_precondition = c.streams_failed_precondition.load(r);
  s.accepted = c.accepted.load(r);
  s.duplicates = c.duplicates.load(r);
  for (size_t i = 0; i < kRejectCodeSlots; ++i) s.rejected[i] = c.rejected[i].load(r);
  s.pushed = c.pushed.load(r);
  s.redeliveries = c.redeliveries.load(r);
  s.pushed_at_once = c.pushed_at_once.load(r);
  s.delivered = c.delivered.load(r);
  s.delivered_unmatched = c.delivered_unmatched.load(r);
  s.expired = c.expired.load(r);
  s.notices_sent = c.notices_sent.load(r);
  s.reads_paused = c.reads_paused.load(r);
  for (size_t i = 0; i < kFaultKinds; ++i) s.faults_injected[i] = c.faults_injected[i].load(r);
  s.queued = queued;
  s.commits = commits;
  return s;
}

std::string RenderPrometheus(const HubMetricsSnapshot& s) {
  std::string out;
  Metric(out, "nodelink_hub_connected_participants", "gauge",
         "Participants with a live, welcomed stream.", static_cast<uint64_t>(s.connected));
  Metric(out, "nodelink_hub_streams_opened_total", "counter", "Streams welcomed.",
         s.streams_opened);
  Metric(out, "nodelink_hub_streams_replaced_total", "counter",
         "Streams ended because the same participant opened a newer one.", s.streams_replaced);
  out +=
      "# HELP nodelink_hub_streams_refused_total Streams ended before Welcome, by gRPC status.\n"
      "# TYPE nodelink_hub_streams_refused_total counter\n";
  out += fmt::format("nodelink_hub_streams_refused_total{{status=\"UNAUTHENTICATED\"}} {}\n",
                     s.streams_unauthenticated);
  out += fmt::format("nodelink_hub_streams_refused_total{{status=\"PERMISSION_DENIED\"}} {}\n",
                     s.streams_permission_denied);
  out += fmt::format("nodelink_hub_streams_refused_total{{status=\"FAILED_PRECONDITION\"}} {}\n",
                     s.streams_failed_precondition);
  Metric(out, "nodelink_hub_envelopes_accepted_total", "counter",
         "Envelopes durably queued and answered Accepted.", s.accepted);
  Metric(out, "nodelink_hub_envelopes_duplicate_total", "counter",
         "Resent envelopes answered Accepted again without queueing them twice.", s.duplicates);
  out +=
      "# HELP nodelink_hub_envelopes_rejected_total Envelopes answered Rejected, by code.\n"
      "# TYPE nodelink_hub_envelopes_rejected_total counter\n";
  for (size_t i = 1; i < kRejectCodeSlots; ++i) {
    out += fmt::format("nodelink_hub_envelopes_rejected_total{{code=\"{}\"}} {}\n", kCodeNames[i],
                       s.rejected[i]);
  }
  Metric(out, "nodelink_hub_envelopes_pushed_total", "counter",
         "Envelopes pushed to recipients (redeliveries included).", s.pushed);
  Metric(out, "nodelink_hub_redeliveries_total", "counter",
         "Pushes of an envelope already pushed once by this hub process.", s.redeliveries);
  Metric(out, "nodelink_hub_envelopes_pushed_at_once_total", "counter",
         "Envelopes pushed while their append commits, their recipient waiting (not read back "
         "from the queue).",
         s.pushed_at_once);
  Metric(out, "nodelink_hub_envelopes_delivered_total", "counter",
         "Delivered receipts that deleted an envelope.", s.delivered);
  Metric(out, "nodelink_hub_delivered_unmatched_total", "counter",
         "Delivered receipts naming no envelope in flight on that stream.", s.delivered_unmatched);
  Metric(out, "nodelink_hub_envelopes_expired_total", "counter",
         "Envelopes deleted after the queue time to live (sender notified).", s.expired);
  Metric(out, "nodelink_hub_expiry_notices_sent_total", "counter",
         "Rejected{EXPIRED} notices written to senders.", s.notices_sent);
  Metric(out, "nodelink_hub_reads_paused_total", "counter",
         "Times a stream stopped being read because its outbound queue passed its bound.",
         s.reads_paused);
  Metric(out, "nodelink_hub_queued_items", "gauge", "Envelopes and notices in the queue.",
         s.queued.items);
  Metric(out, "nodelink_hub_queued_bytes", "gauge", "Body bytes in the queue.", s.queued.bytes);
  Metric(out, "nodelink_hub_commits_total", "counter", "Queue transactions (group commits).",
         s.commits.commits);
  Metric(out, "nodelink_hub_commit_appends_total", "counter",
         "Append requests committed (mean batch = this / commits).", s.commits.appends);
  Metric(out, "nodelink_hub_commit_batch_max", "gauge", "Largest number of appends in one commit.",
         s.commits.max_batch);
  out +=
      "# HELP nodelink_hub_commit_batches Commits by number of appends.\n"
      "# TYPE nodelink_hub_commit_batches counter\n";
  constexpr std::array<const char*, 6> kBuckets = {"0", "1", "2-7", "8-31", "32-127", "128+"};
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    out += fmt::format("nodelink_hub_commit_batches{{appends=\"{}\"}} {}\n", kBuckets[i],
                       s.commits.batch_histogram[i]);
  }
  Metric(out, "nodelink_hub_storage_errors_total", "counter", "Failed queue transactions.",
         s.commits.storage_errors);
  out +=
      "# HELP nodelink_hub_queue_passes_total Queue passes (transactions, fetches, expiry) by the "
      "thread that ran them.\n"
      "# TYPE nodelink_hub_queue_passes_total counter\n";
  out += fmt::format("nodelink_hub_queue_passes_total{{thread=\"nl-queue-commit\"}} {}\n",
                     s.commits.thread_passes);
  out += fmt::format("nodelink_hub_queue_passes_total{{thread=\"nl-hub-cq\"}} {}\n",
                     s.commits.caller_passes);
  out +=
      "# HELP nodelink_hub_faults_injected_total Faults injected on purpose (--inject-faults).\n"
      "# TYPE nodelink_hub_faults_injected_total counter\n";
  for (size_t i = 1; i < kFaultKinds; ++i) {
    out += fmt::format("nodelink_hub_faults_injected_total{{kind=\"{}\"}} {}\n",
                       FaultName(static_cast<Fault>(i)), s.faults_injected[i]);
  }
  return out;
}

}  // namespace nodelink::transport
