#include "keys/pin_policy.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ossl.h"
#include "core/status.h"
#include "keys/pem.h"

namespace nodelink::keys {

std::string_view PinPolicyName(PinPolicy policy) {
  switch (policy) {
    case PinPolicy::kCa:
      return "ca";
    case PinPolicy::kTofu:
      return "tofu";
    case PinPolicy::kPinned:
      return "pinned";
  }
  return "tofu";
}

absl::StatusOr<PinPolicy> ParsePinPolicy(std::string_view name) {
  if (name == "ca") return PinPolicy::kCa;
  if (name == "tofu") return PinPolicy::kTofu;
  if (name == "pinned") return PinPolicy::kPinned;
  return absl::InvalidArgumentError("pin policy \"" + std::string(name) +
                                    "\" is not one of ca, tofu, pinned");
}

absl::StatusOr<bool> SharesIssuer(ByteView hub_cert_der,
                                  const std::vector<Bytes>& participant_chain_der) {
  NL_ASSIGN_OR_RETURN(core::X509Ptr hub, ParseCertificateDer(hub_cert_der));
  const ASN1_OCTET_STRING* hub_akid = X509_get0_authority_key_id(hub.get());
  for (const Bytes& der : participant_chain_der) {
    NL_ASSIGN_OR_RETURN(core::X509Ptr cert, ParseCertificateDer(der));
    if (X509_NAME_cmp(X509_get_issuer_name(hub.get()), X509_get_issuer_name(cert.get())) == 0) {
      return true;
    }
    const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(cert.get());
    if (hub_akid != nullptr && akid != nullptr && ASN1_OCTET_STRING_cmp(hub_akid, akid) == 0) {
      return true;
    }
  }
  core::ClearOpenSslErrors();
  return false;
}

std::optional<std::string> SameIssuerWarning(PinPolicy policy, ByteView hub_cert_der,
                                             const std::vector<Bytes>& participant_chain_der) {
  if (policy == PinPolicy::kPinned) return std::nullopt;
  auto shared = SharesIssuer(hub_cert_der, participant_chain_der);
  if (!shared.ok() || !*shared) return std::nullopt;
  return "warning: the hub's certificate and this participant's certificate come from the same "
         "issuer, and the pin policy is \"" +
         std::string(PinPolicyName(policy)) +
         "\". If one operator holds both the CA and the hub, that operator can impersonate any "
         "node to you (PROTOCOL.md section 3). Compare fingerprints out of band, pin the "
         "researcher and every co-party (nodelink-keys trust pin NODE FINGERPRINT) and run "
         "nodelink-keys trust policy pinned.";
}

}  // namespace nodelink::keys
