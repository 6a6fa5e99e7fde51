// PeerAuthenticator on the participant's key store: the federation anchors and CRLs verify the
// chain (keys::ParticipantVerifier), the store's pin policy checks and records the key.
#pragma once

#include <memory>
#include <mutex>

#include "keys/participant_verifier.h"
#include "overlay/ports.h"

namespace nodelink::keys {
class KeyStore;
}

namespace nodelink::overlay {

class StoreAuthenticator final : public PeerAuthenticator {
 public:
  // FailedPrecondition if the store has no federation anchor yet.
  static absl::StatusOr<std::unique_ptr<StoreAuthenticator>> Create(keys::KeyStore& store);

  messages::ReceiveCode CheckChain(const std::vector<Bytes>& chain_der,
                                   std::string_view federation, std::string_view node_id,
                                   uint64_t now_ms,
                                   std::optional<core::EcPublicKey>& identity_key) override;
  void RecordAccepted(std::string_view node_id, const core::EcPublicKey& identity_key) override;

  // Rebuilds the verifier from the store (after an operator imported a CRL or an anchor).
  absl::Status Reload();

 private:
  StoreAuthenticator(keys::KeyStore& store, keys::ParticipantVerifier verifier)
      : store_(store), verifier_(std::move(verifier)) {}

  keys::KeyStore& store_;
  std::mutex mu_;
  keys::ParticipantVerifier verifier_;  // copies share immutable state
};

}  // namespace nodelink::overlay
