// The seam between the overlay (channels, seal/open) and the router (dispatch). The overlay's
// channel manager implements both interfaces; the router calls them. Kept free of store and
// gRPC types so the router can be tested (and run under ThreadSanitizer) on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/bytes.h"
#include "messages/codes.h"
#include "nodelink/v1/hub.pb.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::overlay {

// One opened inner message. When `inbox_id` is not 0 it is durable in the store's inbox
// (PROTOCOL.md section 6: seq marked and inner stored in one transaction) until Complete().
struct InboxMessage {
  uint64_t inbox_id = 0;
  std::string sender;
  Bytes message_id;  // the envelope's
  uint64_t sent_at_ms = 0;
  uint64_t received_ms = 0;
  v1::Inner inner;
};

// What opening one envelope came to.
//   code == kOk and message set:     a sealed message to dispatch;
//   code == kOk and message empty:   protocol traffic the overlay consumed (setup, channel-unknown);
//   any other code:                  refused (PROTOCOL.md section 7), already counted.
// In every case the envelope is to be acknowledged (Delivered) once the outcome is known.
struct OpenOutcome {
  messages::ReceiveCode code = messages::ReceiveCode::kOk;
  std::optional<InboxMessage> message;
};

class EnvelopeOpener {
 public:
  virtual ~EnvelopeOpener() = default;

  // Applies the checks of PROTOCOL.md section 7 to one envelope pushed by the hub. The caller
  // opens one sender's envelopes one at a time, in arrival order: it calls Open for the next
  // envelope of a sender only after the previous Open call returned (so a Sealed never overtakes
  // the SetupReply ahead of it). `done` runs exactly once, possibly before Open returns, possibly
  // later on another thread, when the outcome is durable; the outcomes of one sender's envelopes
  // complete in the order they were opened. Thread-safe across senders.
  virtual void Open(v1::Envelope envelope, std::function<void(OpenOutcome)> done) = 0;

  // Open, for a caller with no other envelope waiting to be opened (light load): the opener may
  // then finish on the calling thread, `done` included, instead of handing the outcome to another
  // thread (overlay/commit_queue.h). Under load, Open batches better. Pure, as OpenAndHandle: a
  // decorator that forgot to forward it would fall back to a slower path without a word.
  virtual void OpenAlone(v1::Envelope envelope, std::function<void(OpenOutcome)> done) = 0;

  // OpenAlone, for a caller that handles the message at once: a sealed message opened is given
  // to `handle` before its record (seq mark, inbox row) is durable, with `place_record`. The
  // caller runs the handler's first step and calls `place_record` (once, on the thread that ran
  // it, inside the CommitQueue::CallerScope it ran in, if any); the record then commits together
  // with what the step queued (the handler's outcome, the inbox row's removal): one transaction
  // at light load, after the reply has left. `done` (the outcome, without the message) runs once
  // the record is durable; the receipt follows it. Until `place_record` the record waits for
  // company: any other commit takes it along (the next open; in a node, the maintenance pass
  // within a second), so a slow first step holds back its own receipt for that long at most.
  // The handler may thus run for a message whose record then fails to commit; the hub pushes it
  // again (no receipt went) and it is handled again, as after a crash before an inbox row's
  // removal (PROTOCOL.md section 6: handlers are idempotent per (sender, request_id)). Refusals
  // and protocol traffic go to `done` alone, as with OpenAlone. `handle` runs before the `done`
  // of the sender's earlier envelopes may have: a caller that dispatches those from `done` uses
  // this only when none is still pending, or its dispatches would overtake theirs.
  virtual void OpenAndHandle(v1::Envelope envelope,
                             std::function<void(InboxMessage, std::function<void()>)> handle,
                             std::function<void(OpenOutcome)> done) = 0;

  // Records that handling of an inbox message ended, whatever its outcome (removes the row).
  // `durable`, if given, runs once the removal is committed (never if the store failed or
  // stopped first). Thread-safe.
  virtual void Complete(uint64_t inbox_id, std::function<void()> durable = nullptr) = 0;

  // Inbox messages left from before a restart, oldest first, to be handled again.
  virtual std::vector<InboxMessage> PendingInbox() = 0;
};

class InnerSender {
 public:
  virtual ~InnerSender() = default;

  // Seals `inner` for `peer` (setting up a channel first if there is none; concurrent sends to a
  // new peer share one setup) and hands it to the hub. `done` runs exactly once, on another
  // thread or before Send returns: OK once the hub accepted the envelope; otherwise an error
  // saying why (setup timed out, hub Rejected with its code, peer refused...). Never blocks on
  // the network. Thread-safe.
  virtual void Send(const std::string& peer, v1::Inner inner,
                    std::function<void(absl::Status)> done) = 0;
};

}  // namespace nodelink::overlay
