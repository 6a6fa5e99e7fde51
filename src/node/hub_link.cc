#include "node/hub_link.h"

namespace nodelink::node {

void HubLink::SendNow(transport::HubClient* client, v1::Envelope envelope,
                      std::function<void(overlay::HubAnswer)> done) {
  client->Send(std::move(envelope), [done = std::move(done)](transport::HubAnswer a) {
    if (done) done(overlay::HubAnswer{a.accepted, a.code, std::move(a.detail)});
  });
}

void HubLink::Send(v1::Envelope envelope, std::function<void(overlay::HubAnswer)> done) {
  transport::HubClient* client = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!detached_ && client_ == nullptr) {
      waiting_.emplace_back(std::move(envelope), std::move(done));
      return;
    }
    client = client_;
  }
  if (client == nullptr) {
    if (done) done(overlay::HubAnswer{false, v1::CODE_UNSPECIFIED, "the node is stopping"});
    return;
  }
  SendNow(client, std::move(envelope), std::move(done));
}

void HubLink::Attach(transport::HubClient* client) {
  std::deque<std::pair<v1::Envelope, std::function<void(overlay::HubAnswer)>>> waiting;
  {
    std::lock_guard lock(mu_);
    client_ = client;
    waiting.swap(waiting_);
  }
  for (auto& [envelope, done] : waiting) SendNow(client, std::move(envelope), std::move(done));
}

void HubLink::Detach() {
  std::deque<std::pair<v1::Envelope, std::function<void(overlay::HubAnswer)>>> waiting;
  {
    std::lock_guard lock(mu_);
    client_ = nullptr;
    detached_ = true;
    waiting.swap(waiting_);
  }
  for (auto& [envelope, done] : waiting) {
    if (done) done(overlay::HubAnswer{false, v1::CODE_UNSPECIFIED, "the node is stopping"});
  }
}

}  // namespace nodelink::node
