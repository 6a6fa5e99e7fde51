// Fuzzes the hub's handling of what participants send it (PROTOCOL.md section 4), below gRPC:
// the relay's acceptance rules, dedup, per-recipient queues, credits, receipts and expiry, with
// the in-memory queue. Parsing a frame and binding the stream's identity happen in the gRPC
// reactor; everything a frame then does runs here. The input is a script of steps:
//   op byte, then for op % 4 == 0: u16be length and that many bytes, a ClientFrame that
//   participant (op >> 2) & 1 sends (node-a or node-b); 1: that participant's stream ends and a
//   new one starts; 2: the clock moves by (op >> 2) seconds and expiry runs; 3: held-back pushes
//   whose time came are released. Fault injection is on (each fault at 10 %, seeded by the
//   input's size), so that drops, copies, holds and corruptions meet every other step.
// The relay must answer everything without crashing or deadlocking, whatever the order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "core/clock.h"
#include "messages/protobuf_log.h"
#include "nodelink/v1/hub.pb.h"
#include "transport/memory_queue_store.h"
#include "transport/queue_committer.h"
#include "transport/relay.h"

namespace {

using namespace nodelink;

// Takes the relay's frames and drops them (the relay calls it under its own mutex).
class DropSession final : public transport::Session {
 public:
  void Send(v1::HubFrame, FrameKind, uint64_t) override {}
  void End(absl::Status) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool silenced = [] {
    messages::SilenceProtobufLogs();
    return true;
  }();
  (void)silenced;
  core::ManualClock clock;
  transport::HubCounters counters;
  transport::QueueBounds bounds;
  bounds.max_count = 8;
  bounds.max_bytes = 16 << 10;
  transport::QueueCommitter committer(std::make_unique<transport::MemoryQueueStore>(),
                                      transport::CommitterOptions{4, bounds, 1000});
  transport::RelayOptions options;
  options.federation = "fed";
  options.members = std::set<std::string>{"node-a", "node-b", "node-c"};
  options.max_envelope_bytes = 4096;
  options.queue_ttl_ms = 60'000;
  options.default_max_in_flight = 2;
  options.faults = {0.1, 0.1, 0.1, 0.1, 0.1, 500, size};
  {
    transport::Relay relay(options, committer, clock, counters);
    const char* ids[2] = {"node-a", "node-b"};
    auto sessions = std::make_unique<DropSession[]>(4);  // two streams per participant in turn
    int generation[2] = {0, 0};
    auto session = [&](int who) { return &sessions[static_cast<size_t>(who * 2 + generation[who])]; };
    for (int who = 0; who < 2; ++who) (void)relay.Attach(session(who), ids[who], 0);
    size_t at = 0;
    while (at < size) {
      const uint8_t op = data[at++];
      const int who = (op >> 2) & 1;
      switch (op % 4) {
        case 0: {
          if (at + 2 > size) break;
          const size_t length = (size_t{data[at]} << 8) | data[at + 1];
          at += 2;
          const size_t n = std::min(length, size - at);
          v1::ClientFrame frame;
          const bool parsed = frame.ParseFromArray(data + at, static_cast<int>(n));
          at += n;
          if (!parsed) break;
          if (frame.has_envelope()) relay.OnEnvelope(session(who), ids[who], frame.envelope());
          if (frame.has_delivered()) {
            relay.OnDelivered(session(who), ids[who], frame.delivered().message_id());
          }
          break;
        }
        case 1:
          relay.Detach(session(who), ids[who]);
          generation[who] ^= 1;
          (void)relay.Attach(session(who), ids[who], 0);
          break;
        case 2:
          clock.Advance(static_cast<uint64_t>(op >> 2) * 1000);
          (void)relay.ExpireNow();
          break;
        default:
          relay.ReleaseHeldPushes();
          break;
      }
    }
    // No completion may run once the relay and the sessions are gone.
    committer.Stop();
    for (int who = 0; who < 2; ++who) relay.Detach(session(who), ids[who]);
  }
  return 0;
}
