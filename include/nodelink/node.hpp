// nodelink::Node: one participant of a federation (a data holder's node, or the researcher).
//
// A Node opens its key store, connects to the hub over mutual TLS, and then sends and receives
// application messages that only the addressed peer can read: each message is signed by the
// sender's identity key and encrypted on a channel set up with the peer (PROTOCOL.md sections 5
// and 6); the hub relays envelopes it cannot read. On top of that, it takes part in secure
// aggregation (section 8): as a party it answers the researchers its key store accepts, and as a
// researcher it runs secure sums and pairwise key agreements.
//
// Example:
//
//   nodelink::NodeOptions options;
//   options.store_path = "/var/lib/nodelink/lab-1.db";
//   options.passphrase_file = "/etc/nodelink/passphrase";
//   options.hub_address = "hub.example.org:7443";
//   auto node = nodelink::Node::Start(options);
//   if (!node.ok()) { /* say why: node.status().message() */ }
//   (*node)->Handle("echo", [](const nodelink::Received& r) -> nodelink::HandlerResult {
//     return nodelink::Message{"echo", "", r.message.payload, ""};   // the reply
//   });
//   auto reply = (*node)->Request("lab-2", {"echo", "", "ping", "text/plain"},
//                                 std::chrono::seconds(5));
//
// Thread safety: every method may be called from any thread. Handlers run on the node's workers,
// one at a time per sender, senders in parallel (a message that arrives alone is handled on the
// thread that read it from the hub, which saves a thread hand-off; if its handler runs longer than
// 2 ms, the node's other reading thread takes over the stream). A handler must not block waiting
// for other messages (use Receive from an application thread instead).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nodelink {

// An application message (PROTOCOL.md section 8, AppMessage).
struct Message {
  std::string type;          // picks the handler (Handle); free-form
  std::string tag;           // picks the Receive call; free-form
  std::string payload;       // bytes, opaque to nodelink
  std::string content_type;  // for the application, e.g. "application/json"
};

// A message as it arrived.
struct Received {
  std::string sender;  // authenticated: the node id in the sender's certificate
  Message message;
  bool is_request = false;  // the sender waits for a reply (Node::Request)
};

// What a handler returns: a reply (sent back for a request; ignored for a one-way message),
// nothing, or an error (a request then gets ErrorReply HANDLER_FAILED with the message).
using HandlerResult = absl::StatusOr<std::optional<Message>>;
using MessageHandler = std::function<HandlerResult(const Received&)>;

// A secure-aggregation context as a party sees it (for input providers and logs).
struct SecaggContext {
  std::string researcher;
  std::string context_id;
  uint32_t modulus_bits = 0;
  uint32_t element_count = 0;
  std::vector<std::string> parties;
};

// The party's secret input for an additive-sharing context: element_count decimal integers.
// Called on a worker; keep it short. An error refuses the context with its message.
using SecaggInputProvider =
    std::function<absl::StatusOr<std::vector<std::string>>(const SecaggContext&)>;

struct NodeOptions {
  std::string store_path;  // created by `nodelink-keys init`
  // The store key: exactly one of the three.
  std::string passphrase;  // copied into wiped memory; clear your own copy
  std::string passphrase_file;
  std::string key_file;

  std::string hub_address;  // "host:port"; the hub's certificate must name the host
  // Development only: no TLS, identity taken from Hello; refused for non-loopback addresses.
  bool insecure = false;
  std::string tls_server_name;  // tests only: the name to expect in the hub's certificate

  uint32_t max_in_flight = 256;  // envelopes the hub may push before our receipts
  size_t workers = 4;            // handler threads
  uint64_t setup_timeout_ms = 30'000;     // a message waits this long for a channel
  // A handler's time at most; a request's own deadline (set by its sender) ends it sooner. Long
  // enough for a secure-aggregation party to wait for its co-parties.
  uint64_t handler_deadline_ms = 300'000;
  uint32_t reconnect_max_backoff_ms = 5'000;
  // fsync every key-store commit (SQLite synchronous=FULL), so that what this node received and
  // acknowledged survives power loss and kernel crashes, not only a killed process (the
  // default). Costs one fsync per commit (bench/RESULTS.md). The hub's queue has the same choice
  // (nodelink-hub --sqlite-synchronous).
  bool store_sync_every_commit = false;

  // Secure aggregation, party side (PROTOCOL.md section 8). Researchers and co-parties come from
  // the key store (`nodelink-keys trust researcher|approve`) plus these lists ("*" in
  // co_parties approves any member: a deliberate risk).
  std::vector<std::string> researchers;
  std::vector<std::string> co_parties;
  uint32_t min_parties = 3;  // 2 only by explicit configuration
  SecaggInputProvider secagg_input;
};

struct SecureSumRequest {
  std::vector<std::string> parties;
  uint32_t modulus_bits = 64;  // the ring Z_(2^k): a multiple of 8 in 8..4096
  uint32_t element_count = 1;  // vector length
  std::chrono::milliseconds timeout{30'000};
  std::string context_id;  // empty: a fresh random id (a context is accepted at most once)
  // Called as each party answers (from a node thread): party, ok, why not, done so far, total.
  std::function<void(const std::string&, bool, const std::string&, size_t, size_t)> on_answer;
};

struct AggregationResult {
  std::string context_id;
  std::vector<std::string> parties;
  std::vector<std::string> sum;  // secure sum: decimal elements in [0, 2^k); empty on failure
  std::map<std::string, std::string> failed;  // party -> why (refusal code, timeout, ...)
  // What each party answered (its kept share plus the shares it received: uniformly random on
  // its own), as hex; for audits. Empty for pairwise keys.
  std::map<std::string, std::string> replies;
  uint64_t elapsed_ms = 0;
  bool ok() const { return failed.empty(); }
};

struct NodeStats {
  bool connected = false;
  uint64_t channels_live = 0;
  uint64_t setups_started = 0;
  uint64_t setups_answered = 0;
  uint64_t messages_sealed = 0;
  uint64_t messages_opened = 0;
  std::map<std::string, uint64_t> refused;  // by PROTOCOL.md section 7 code
  // Lost-channel recovery (PROTOCOL.md section 6): ChannelUnknown sent for sealed messages on a
  // channel this node does not hold; those received that named a message of ours and were acted
  // on; second answers to a setup of ours (from a peer restored from a backup) acted on; and the
  // messages resent on a new channel because of either.
  uint64_t channel_unknown_sent = 0;
  uint64_t channel_unknown_acted = 0;
  uint64_t setups_answered_again = 0;
  uint64_t messages_resent = 0;
  uint64_t envelopes_sent_to_hub = 0;
  uint64_t handled = 0;
  uint64_t handler_failures = 0;
  uint64_t receive_queue = 0;  // messages waiting for Receive
  // Messages handled on the thread that read them from the hub (those that arrive alone) whose
  // handling outlasted 2 ms, so that the node's second reading thread took over the stream.
  uint64_t reader_takeovers = 0;
};

class Node {
 public:
  // Opens the store, checks that it holds an identity with a certificate and the federation CA,
  // and starts connecting to the hub (Start does not wait for the connection: WaitConnected).
  // Errors say what to fix: a missing or locked store, a wrong passphrase, no certificate yet
  // (`nodelink-keys import-cert`), an insecure non-loopback address. Process-wide side effect:
  // turns off Abseil's debug lock-order check, which Debian's Abseil runs on every absl::Mutex
  // acquisition and which aborts on a cycle (src/transport/abseil_mode.h).
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node();  // Stop()

  const std::string& id() const;
  const std::string& federation() const;
  // True once the hub welcomed this node (false after the timeout).
  bool WaitConnected(std::chrono::milliseconds timeout);

  // Sends a one-way message; returns once the hub durably queued it, or why not (the peer is no
  // member: NotFound; no channel in time: DeadlineExceeded; ...).
  absl::Status Send(const std::string& peer, const Message& message,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The same message to every peer at once; a status per peer.
  std::map<std::string, absl::Status> Broadcast(
      const std::vector<std::string>& peers, const Message& message,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // The next message from `peer` with `tag`, in arrival order; messages with other tags stay
  // queued for their own Receive. Messages of a type that has a handler never come here.
  // DeadlineExceeded after the timeout. A message stays in the store until Receive takes it, and
  // Receive returns only once that removal is durable: a crash before delivers it again after
  // the restart, a crash after never does (exactly once across crashes).
  absl::StatusOr<Received> Receive(const std::string& peer, const std::string& tag,
                                   std::chrono::milliseconds timeout);

  // Routes messages of `type` to `handler` instead of Receive (replaces an earlier handler).
  // A request of a type with no handler is answered ErrorReply UNKNOWN_TYPE. A message leaves the
  // store when its handler returns, so a crash while a handler runs (or just after) runs it again
  // after the restart: handlers see each message at least once across crashes, Receive exactly
  // once.
  void Handle(const std::string& type, MessageHandler handler);

  // Sends a request and waits for the reply. Errors: the peer's ErrorReply (FailedPrecondition;
  // PeerErrorCode() gives its code, errors.hpp), DeadlineExceeded (no reply in time, or the
  // peer's TIMEOUT if its clock passed the deadline first), or the send failure.
  absl::StatusOr<Message> Request(const std::string& peer, const Message& request,
                                  std::chrono::milliseconds timeout);
  // Fan-out: every request at once; the reply or the error per peer.
  std::map<std::string, absl::StatusOr<Message>> SendAll(
      const std::map<std::string, Message>& requests, std::chrono::milliseconds timeout);

  // Researcher: runs one secure sum over `parties` (PROTOCOL.md section 8, ADDITIVE_SHARING).
  // InvalidArgument for bad requests; otherwise a result naming every party that failed.
  absl::StatusOr<AggregationResult> SecureSum(const SecureSumRequest& request);
  // Researcher: asks the parties to agree pairwise keys for a fresh context (PAIRWISE_KEYS).
  absl::StatusOr<AggregationResult> PairwiseKeys(
      const std::vector<std::string>& parties, std::chrono::milliseconds timeout,
      std::function<void(const std::string&, bool, const std::string&, size_t, size_t)>
          on_answer = nullptr);

  NodeStats Stats() const;
  // Stops handlers, closes the stream and the store. Idempotent.
  void Stop();

  class Impl;
  // Internal, for nodelink's own tests (src/node/node_testing.h); not part of the API.
  Impl& impl_for_testing() { return *impl_; }

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nodelink
