#include "overlay/store_authenticator.h"

#include <spdlog/spdlog.h>

#include "core/status.h"
#include "keys/key_store.h"

namespace nodelink::overlay {

absl::StatusOr<std::unique_ptr<StoreAuthenticator>> StoreAuthenticator::Create(
    keys::KeyStore& store) {
  NL_ASSIGN_OR_RETURN(keys::ParticipantVerifier verifier, store.MakeParticipantVerifier());
  return std::unique_ptr<StoreAuthenticator>(new StoreAuthenticator(store, std::move(verifier)));
}

absl::Status StoreAuthenticator::Reload() {
  NL_ASSIGN_OR_RETURN(keys::ParticipantVerifier verifier, store_.MakeParticipantVerifier());
  std::lock_guard lock(mu_);
  verifier_ = std::move(verifier);
  return absl::OkStatus();
}

messages::ReceiveCode StoreAuthenticator::CheckChain(
    const std::vector<Bytes>& chain_der, std::string_view federation, std::string_view node_id,
    uint64_t now_ms, std::optional<core::EcPublicKey>& identity_key) {
  keys::ParticipantVerifier verifier = [&] {
    std::lock_guard lock(mu_);
    return verifier_;
  }();
  keys::CertCheck check = verifier.Check(chain_der, federation, node_id, now_ms);
  if (check.error != keys::CertError::kOk || !check.participant) {
    spdlog::warn("setup from {} refused: BAD_CERTIFICATE ({}): {}", node_id,
                 keys::CertErrorName(check.error), check.message);
    return messages::ReceiveCode::kBadCertificate;
  }
  auto verdict = store_.CheckPin(node_id, check.participant->key);
  if (!verdict.ok() || !verdict->accepted()) {
    spdlog::warn("setup from {} refused: KEY_CHANGED: {}", node_id,
                 verdict.ok() ? verdict->message : std::string(verdict.status().message()));
    return messages::ReceiveCode::kKeyChanged;
  }
  identity_key = check.participant->key;
  return messages::ReceiveCode::kOk;
}

void StoreAuthenticator::RecordAccepted(std::string_view node_id,
                                        const core::EcPublicKey& identity_key) {
  absl::Status status = store_.RecordFirstUse(node_id, identity_key);
  if (!status.ok()) {
    spdlog::error("recording the key of {} failed: {}", node_id, std::string(status.message()));
  }
}

}  // namespace nodelink::overlay
