// Messages handed to Node::Receive stay in the store's inbox until the application took them
// (PROTOCOL.md section 6: a crash before that delivers them again). The router completes a
// message when its handler ends; this decorator of the overlay's EnvelopeOpener holds back that
// completion for messages parked in the receive queue, and completes them when Receive returns
// them.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <set>

#include "overlay/delivery.h"

namespace nodelink::node {

class HeldInbox final : public overlay::EnvelopeOpener {
 public:
  explicit HeldInbox(overlay::EnvelopeOpener& inner) : inner_(inner) {}

  void Open(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override {
    inner_.Open(std::move(envelope), std::move(done));
  }
  void OpenAlone(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override {
    inner_.OpenAlone(std::move(envelope), std::move(done));
  }
  void OpenAndHandle(v1::Envelope envelope,
                     std::function<void(overlay::InboxMessage, std::function<void()>)> handle,
                     std::function<void(overlay::OpenOutcome)> done) override {
    inner_.OpenAndHandle(std::move(envelope), std::move(handle), std::move(done));
  }
  std::vector<overlay::InboxMessage> PendingInbox() override { return inner_.PendingInbox(); }

  // Completes at once, unless the message is held: then when Release() is called.
  void Complete(uint64_t inbox_id, std::function<void()> durable = nullptr) override;

  // Marks a message as parked in the receive queue (call before its handler returns).
  void Hold(uint64_t inbox_id);
  // The application took it: complete it now (and forget the hold), and wait until the removal
  // is durable, so that a crash after Receive returned never hands the message out again. False
  // if that did not happen within `timeout` (a failing store: the message may come again).
  bool Release(uint64_t inbox_id, std::chrono::milliseconds timeout);

 private:
  overlay::EnvelopeOpener& inner_;
  std::mutex mu_;
  std::set<uint64_t> held_;
};

}  // namespace nodelink::node
