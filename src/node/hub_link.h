// The overlay's EnvelopeSink on the transport's HubClient. The client is attached after it
// starts (it needs the router, which needs the overlay, which needs this sink); envelopes sent
// before that wait here, in order.
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <utility>

#include "overlay/ports.h"
#include "transport/hub_client.h"

namespace nodelink::node {

class HubLink final : public overlay::EnvelopeSink {
 public:
  void Send(v1::Envelope envelope, std::function<void(overlay::HubAnswer)> done) override;
  // Attaches the client and hands it what waited. Call once.
  void Attach(transport::HubClient* client);
  // Detaches before the client stops: later sends fail at once.
  void Detach();

 private:
  void SendNow(transport::HubClient* client, v1::Envelope envelope,
               std::function<void(overlay::HubAnswer)> done);

  std::mutex mu_;
  transport::HubClient* client_ = nullptr;
  bool detached_ = false;
  std::deque<std::pair<v1::Envelope, std::function<void(overlay::HubAnswer)>>> waiting_;
};

}  // namespace nodelink::node
