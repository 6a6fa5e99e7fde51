// The router's answered log on the key store's `answered` table, through the channel manager's
// group commit (PROTOCOL.md section 6, last paragraph).
#pragma once

#include "overlay/channel_manager.h"
#include "router/answered_log.h"

namespace nodelink::node {

class AnsweredStore final : public router::AnsweredLog {
 public:
  explicit AnsweredStore(overlay::ChannelManager& channels) : channels_(channels) {}

  absl::StatusOr<std::optional<v1::Inner>> Find(const std::string& peer,
                                                const std::string& request_id,
                                                uint64_t now_ms) override {
    return channels_.FindAnswered(peer, request_id, now_ms);
  }
  absl::Status Record(const std::string& peer, const std::string& request_id,
                      const v1::Inner& reply, uint64_t expires_ms) override {
    channels_.RecordAnswered(peer, request_id, reply, expires_ms);
    return absl::OkStatus();
  }
  // Expired rows are pruned by ChannelManager::Maintain.
  void Expire(uint64_t) override {}

 private:
  overlay::ChannelManager& channels_;
};

}  // namespace nodelink::node
