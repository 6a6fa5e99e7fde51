// The node side of PROTOCOL.md section 4: one stream to the hub, an outbox that keeps every
// envelope until the hub answers Accepted or Rejected (resent with the same message id after a
// reconnect), reconnection with exponential backoff and jitter, and Delivered receipts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/secret_bytes.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::transport {

struct TlsMaterial {
  std::string ca_pem;          // the federation CA: the hub's certificate must chain to it
  std::string cert_chain_pem;  // this participant's certificate (clientAuth, nodelink:// URI)
  core::SecretBytes key_pem;   // its private key
  std::string crl_pem;         // accepted for symmetry; gRPC 1.51's SslCredentials cannot check
                               // a CRL on the client side (the hub checks participants' CRLs)
};

struct HubClientOptions {
  std::string target;              // "127.0.0.1:PORT"
  std::optional<TlsMaterial> tls;  // nullopt = insecure development mode (loopback only)
  std::string federation, node_id;
  uint32_t max_in_flight = 0;                                // 0 = hub default
  uint32_t initial_backoff_ms = 100, max_backoff_ms = 5000;  // exponential, with jitter
  core::Clock* clock = nullptr;          // for the clock-skew warning; nullptr = system clock
  std::string tls_target_name_override;  // tests only
  // Rejected frames for envelopes no longer in the outbox (Rejected{EXPIRED}, sent after the
  // envelope was Accepted, PROTOCOL 4). Optional; runs on the transport thread.
  std::function<void(v1::Rejected)> on_late_rejection;
};

struct HubAnswer {
  bool accepted = false;
  v1::Code code = v1::CODE_UNSPECIFIED;
  std::string detail;
};

// Figures for tests and operators.
struct HubClientStats {
  uint64_t streams_started = 0;
  uint64_t welcomes = 0;
  uint64_t envelopes_written = 0;  // first writes and resends
  uint64_t resends = 0;            // writes of an envelope already written on an earlier stream
  uint64_t pushed = 0;             // envelopes the hub pushed
  uint64_t acks_sent = 0;
  uint64_t acks_dropped = 0;  // receipts for envelopes pushed on a stream that has ended
  uint64_t reader_takeovers = 0;  // a push's handling outlasted kReaderTakeoverAfter (2 ms)
  int64_t clock_offset_ms = 0;  // this node's clock minus the hub's, at the last Welcome
};

// What on_envelope may hand back: work to run on the thread that read the push (null: none).
using PushWork = std::function<void()>;
// on_envelope(envelope, may_run_here): may_run_here says whether the reading thread can be lent.
using EnvelopeHandler = std::function<PushWork(v1::Envelope, bool may_run_here)>;

// Thread-safe. `done` and on_late_rejection run one at a time, in order, on a transport thread
// owned by the client; on_envelope runs one push at a time, in arrival order, on the client's
// completion-queue thread that read it, concurrently with the former. None may block for long
// or call Stop().
class HubClient {
 public:
  // on_envelope: called for each envelope the hub pushes, in arrival order, one at a time, on the
  // client's completion-queue thread; it must not block. When may_run_here, it may hand back work
  // (the node: the push's handling, when nothing else is pending) that then runs on that thread
  // once the stream's next read has started; if the work lasts longer than 2 ms, the client's
  // other completion-queue thread takes over reading (CompletionReaders), so the work may take as
  // long as it needs. The receiver later calls Acknowledge(message_id) once the outcome is
  // durable. Errors: INVALID_ARGUMENT for an insecure client with a non-loopback target, missing
  // ids, unusable TLS material; RESOURCE_EXHAUSTED without file descriptors for its timer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HubClient>> Start(
      HubClientOptions options, EnvelopeHandler on_envelope);
  ~HubClient();  // Stop()

  // Queues an envelope; kept in the outbox until Accepted/Rejected; resent (same message id) after
  // reconnects; refuses locally (done called with TOO_LARGE) an envelope over the hub's announced
  // max_envelope_bytes. done runs exactly once, on the transport thread (after Stop(): at once, on
  // the caller's thread, with accepted=false).
  void Send(v1::Envelope envelope, std::function<void(HubAnswer)> done);

  // Sends Delivered{message_id} for an envelope pushed on the current stream; safe from any thread.
  // A receipt for an envelope pushed on a stream that has since ended is dropped, not carried to
  // the next stream: the hub pushes every unacknowledged envelope again on the new stream and the
  // receiver acknowledges that push (as a DUPLICATE). Delivered names no sender, so a receipt
  // carried across streams could acknowledge another sender's envelope with the same id.
  void Acknowledge(std::string message_id);

  // Waits until a Welcome has been received on the current stream.
  bool WaitConnected(std::chrono::milliseconds timeout);
  std::optional<v1::Welcome> welcome() const;

  // Ends the stream and fails every envelope still in the outbox (done: accepted=false,
  // CODE_UNSPECIFIED, "hub client stopped ..."). Idempotent; not from a callback.
  void Stop();

  HubClientStats stats() const;

  class Impl;

 private:
  explicit HubClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace nodelink::transport
