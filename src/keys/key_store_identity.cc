// KeyStore: identity key, certificate chain, trust anchors, CRLs, hub certificate, TLS material.
#include <openssl/x509.h>

#include "core/ossl.h"
#include "core/sha256.h"
#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/cert_parts.h"
#include "keys/key_store.h"
#include "keys/pem.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"
#include "keys/x509.h"
#include "messages/names.h"

namespace nodelink::keys {

namespace {

std::string_view RoleName(AnchorRole role) {
  return role == AnchorRole::kHub ? "hub" : "federation";
}

}  // namespace

absl::Status KeyStore::SetIdentity(std::string_view federation, std::string_view node_id,
                                   const core::EcPrivateKey& key) {
  if (!messages::IsValidName(federation)) {
    return absl::InvalidArgumentError("\"" + std::string(federation) +
                                      "\" is not a valid federation name (PROTOCOL.md section 1)");
  }
  if (!messages::IsValidName(node_id)) {
    return absl::InvalidArgumentError("\"" + std::string(node_id) +
                                      "\" is not a valid node id (PROTOCOL.md section 1)");
  }
  NL_ASSIGN_OR_RETURN(core::SecretBytes scalar, key.ExportScalar());
  NL_ASSIGN_OR_RETURN(Bytes sealed, Seal(scalar.ExposeSecret(), kIdentityKeyContext));
  Bytes spki = key.PublicKey().SpkiDer();
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (db.execAndGet("SELECT count(*) FROM identity").getInt() > 0) {
      return absl::AlreadyExistsError("key store " + path_ +
                                      " already has an identity; a store holds one identity");
    }
    SQLite::Statement insert(db,
                             "INSERT INTO identity(id, federation, node_id, public_key, "
                             "key_sealed, created_ms) VALUES(1, ?, ?, ?, ?, ?)");
    BindText(insert, 1, federation);
    BindText(insert, 2, node_id);
    BindBlob(insert, 3, spki);
    BindBlob(insert, 4, sealed);
    insert.bind(5, static_cast<int64_t>(NowMs()));
    insert.exec();
    return absl::OkStatus();
  });
}

bool KeyStore::HasIdentity() const {
  bool has = false;
  absl::Status status = WithDatabase([&](SQLite::Database& db) {
    has = db.execAndGet("SELECT count(*) FROM identity").getInt() > 0;
    return absl::OkStatus();
  });
  return status.ok() && has;
}

absl::StatusOr<Identity> KeyStore::LoadIdentity() const {
  std::string federation, node_id;
  Bytes spki, sealed;
  std::vector<Bytes> chain;
  bool found = false;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(
        db, "SELECT federation, node_id, public_key, key_sealed FROM identity WHERE id = 1");
    if (query.executeStep()) {
      found = true;
      federation = query.getColumn(0).getString();
      node_id = query.getColumn(1).getString();
      spki = BlobOf(query.getColumn(2));
      sealed = BlobOf(query.getColumn(3));
    }
    SQLite::Statement certs(db, "SELECT der FROM identity_chain ORDER BY position");
    while (certs.executeStep()) chain.push_back(BlobOf(certs.getColumn(0)));
    return absl::OkStatus();
  }));
  if (!found) {
    return absl::NotFoundError("key store " + path_ +
                               " has no identity yet; run nodelink-keys init");
  }
  NL_ASSIGN_OR_RETURN(core::SecretBytes scalar, Unseal(sealed, kIdentityKeyContext));
  auto key = core::EcPrivateKey::FromScalar(scalar.ExposeSecret());
  if (!key.ok()) return absl::DataLossError("the stored identity key is invalid: store corrupt");
  if (key->PublicKey().SpkiDer() != spki) {
    return absl::DataLossError(
        "the stored identity key does not match its public key: store "
        "corrupt");
  }
  return Identity{std::move(federation), std::move(node_id), *std::move(key), std::move(chain)};
}

absl::StatusOr<Bytes> KeyStore::CreateIdentityCsr() const {
  NL_ASSIGN_OR_RETURN(Identity id, LoadIdentity());
  return CreateCsr(id.key, id.federation, id.node_id);
}

absl::Status KeyStore::ImportCertificateChain(const std::vector<Bytes>& chain_der,
                                              uint64_t now_ms) {
  NL_ASSIGN_OR_RETURN(Identity id, LoadIdentity());
  if (chain_der.empty()) return absl::InvalidArgumentError("the certificate file is empty");
  NL_ASSIGN_OR_RETURN(core::X509Ptr leaf, ParseCertificateDer(chain_der[0]));
  auto leaf_key = core::EcPublicKey::FromPkey(X509_get0_pubkey(leaf.get()));
  if (!leaf_key.ok() || !(*leaf_key == id.key.PublicKey())) {
    return absl::InvalidArgumentError(
        "the certificate is for another key than this store's identity key; was it issued for "
        "the CSR of this store (nodelink-keys csr)?");
  }
  NL_ASSIGN_OR_RETURN(ParticipantVerifier verifier, MakeParticipantVerifier());
  CertCheck check = verifier.Check(chain_der, id.federation, id.node_id, now_ms);
  if (check.error != CertError::kOk) {
    return absl::InvalidArgumentError("the certificate does not verify: " + check.message);
  }
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    db.exec("DELETE FROM identity_chain");
    SQLite::Statement insert(
        db, "INSERT INTO identity_chain(position, der, imported_ms) VALUES(?, ?, ?)");
    for (size_t i = 0; i < chain_der.size(); ++i) {
      insert.bind(1, static_cast<int64_t>(i));
      BindBlob(insert, 2, chain_der[i]);
      insert.bind(3, static_cast<int64_t>(NowMs()));
      insert.exec();
      insert.reset();
    }
    return absl::OkStatus();
  });
}

absl::Status KeyStore::AddAnchor(AnchorRole role, ByteView cert_der) {
  // The verifier's own checks: a self-signed CA certificate.
  auto verifier = ParticipantVerifier::Create({Bytes(cert_der.begin(), cert_der.end())});
  if (!verifier.ok()) return verifier.status();
  Bytes fingerprint = core::Sha256Bytes(cert_der);
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement insert(db,
                             "INSERT OR IGNORE INTO anchors(role, fingerprint, der, added_ms) "
                             "VALUES(?, ?, ?, ?)");
    BindText(insert, 1, RoleName(role));
    BindBlob(insert, 2, fingerprint);
    BindBlob(insert, 3, cert_der);
    insert.bind(4, static_cast<int64_t>(NowMs()));
    insert.exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Bytes>> KeyStore::Anchors(AnchorRole role) const {
  std::vector<Bytes> out;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(db, "SELECT der FROM anchors WHERE role = ? ORDER BY added_ms, rowid");
    BindText(query, 1, RoleName(role));
    while (query.executeStep()) out.push_back(BlobOf(query.getColumn(0)));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status KeyStore::ImportCrl(ByteView crl_der) {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> anchors, Anchors(AnchorRole::kFederation));
  if (anchors.empty()) {
    return absl::FailedPreconditionError(
        "no federation CA in the store; import it first (import-cert --ca ca.pem)");
  }
  // Creating a verifier checks that an anchor signed the CRL.
  NL_RETURN_IF_ERROR(
      ParticipantVerifier::Create(anchors, {Bytes(crl_der.begin(), crl_der.end())}).status());
  NL_ASSIGN_OR_RETURN(core::X509CrlPtr crl, ParseCrlDer(crl_der));
  NL_ASSIGN_OR_RETURN(uint64_t this_update, Asn1TimeToMs(X509_CRL_get0_lastUpdate(crl.get())));
  unsigned char* issuer_der = nullptr;
  int issuer_len = i2d_X509_NAME(X509_CRL_get_issuer(crl.get()), &issuer_der);
  if (issuer_len <= 0) return core::OpenSslError("encoding the CRL issuer failed");
  Bytes issuer(issuer_der, issuer_der + issuer_len);
  OPENSSL_free(issuer_der);
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement current(db, "SELECT this_update_ms FROM crls WHERE issuer = ?");
    BindBlob(current, 1, issuer);
    if (current.executeStep() &&
        static_cast<uint64_t>(current.getColumn(0).getInt64()) > this_update) {
      return absl::FailedPreconditionError(
          "this CRL (issued " + FormatUtc(this_update) + ") is older than the loaded one (" +
          FormatUtc(static_cast<uint64_t>(current.getColumn(0).getInt64())) +
          "); refusing to roll back revocations");
    }
    current.reset();
    SQLite::Statement upsert(db,
                             "INSERT OR REPLACE INTO crls(issuer, der, this_update_ms, "
                             "imported_ms) VALUES(?, ?, ?, ?)");
    BindBlob(upsert, 1, issuer);
    BindBlob(upsert, 2, crl_der);
    upsert.bind(3, static_cast<int64_t>(this_update));
    upsert.bind(4, static_cast<int64_t>(NowMs()));
    upsert.exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Bytes>> KeyStore::Crls() const {
  std::vector<Bytes> out;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(db, "SELECT der FROM crls ORDER BY issuer");
    while (query.executeStep()) out.push_back(BlobOf(query.getColumn(0)));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status KeyStore::SetHubCertificate(ByteView cert_der) {
  NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(cert_der));
  if (info.is_ca) {
    return absl::InvalidArgumentError("that is a CA certificate, not the hub's certificate");
  }
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement upsert(db,
                             "INSERT OR REPLACE INTO settings(key, value) VALUES('hub_cert', ?)");
    BindBlob(upsert, 1, cert_der);
    upsert.exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<Bytes>> KeyStore::HubCertificate() const {
  std::optional<Bytes> out;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(db, "SELECT value FROM settings WHERE key = 'hub_cert'");
    if (query.executeStep()) out = BlobOf(query.getColumn(0));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ParticipantVerifier> KeyStore::MakeParticipantVerifier() const {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> anchors, Anchors(AnchorRole::kFederation));
  if (anchors.empty()) {
    return absl::FailedPreconditionError(
        "no federation CA in key store " + path_ +
        "; import it (nodelink-keys import-cert --ca ca.pem, or init --ca ca.pem)");
  }
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> crls, Crls());
  return ParticipantVerifier::Create(anchors, crls);
}

absl::StatusOr<TlsMaterial> KeyStore::ExportTlsMaterial() const {
  NL_ASSIGN_OR_RETURN(Identity id, LoadIdentity());
  if (id.cert_chain_der.empty()) {
    return absl::FailedPreconditionError("key store " + path_ +
                                         " has no certificate yet; run nodelink-keys import-cert");
  }
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> roots, Anchors(AnchorRole::kHub));
  if (roots.empty()) {
    NL_ASSIGN_OR_RETURN(roots, Anchors(AnchorRole::kFederation));
  }
  if (roots.empty()) {
    return absl::FailedPreconditionError("key store " + path_ + " has no CA certificate");
  }
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> crls, Crls());
  NL_ASSIGN_OR_RETURN(core::SecretBytes key_pem, id.key.ExportPem());
  TlsMaterial out;
  out.ca_pem = DersToPem(kPemCertificate, roots);
  out.cert_chain_pem = DersToPem(kPemCertificate, id.cert_chain_der);
  out.key_pem = std::move(key_pem);
  out.crl_pem = DersToPem(kPemCrl, crls);
  return out;
}

absl::StatusOr<std::optional<std::string>> KeyStore::SameIssuerWarningFor(
    const Bytes* hub_cert_der) const {
  std::optional<Bytes> hub;
  if (hub_cert_der != nullptr) {
    hub = *hub_cert_der;
  } else {
    NL_ASSIGN_OR_RETURN(hub, HubCertificate());
  }
  if (!hub) return std::optional<std::string>();
  NL_ASSIGN_OR_RETURN(PinPolicy policy, GetPinPolicy());
  std::vector<Bytes> chain;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement certs(db, "SELECT der FROM identity_chain ORDER BY position");
    while (certs.executeStep()) chain.push_back(BlobOf(certs.getColumn(0)));
    return absl::OkStatus();
  }));
  if (chain.empty()) {
    // No certificate yet: compare with the federation anchors, which will issue it.
    NL_ASSIGN_OR_RETURN(std::vector<Bytes> anchors, Anchors(AnchorRole::kFederation));
    chain = std::move(anchors);
  }
  if (chain.empty()) return std::optional<std::string>();
  return SameIssuerWarning(policy, *hub, chain);
}

}  // namespace nodelink::keys
