// A small federation CA kept in a directory (the `nodelink-keys ca` commands):
//   ca.key      the CA's P-256 key, PKCS#8 PEM, mode 0600 (refused if readable by others)
//   ca.pem      the self-signed CA certificate, for participants, hub and verifiers
//   state.json  issued and revoked serials and the CRL number
//   .lock       flock(2) so two commands cannot interleave their updates
// The key is a plain 0600 PEM rather than sealed with a passphrase: a CA directory belongs on an
// offline machine or encrypted volume, where the CA holder runs a handful of commands; a PEM key
// works with standard tools (openssl, an HSM import) and keeps a lost passphrase from stranding
// the federation. Whoever can read the directory can also rewrite its revocation state, so a
// passphrase on the key alone would not protect it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "keys/x509.h"

namespace nodelink::keys {

struct IssuedCertRecord {
  std::string serial_hex;
  std::string kind;              // "participant" or "hub"
  std::string subject;           // node id, or the hub's names joined with ","
  std::string spki_fingerprint;  // FingerprintHex
  uint64_t issued_ms = 0;
  uint64_t not_after_ms = 0;
  bool revoked = false;
  uint64_t revoked_ms = 0;
};

// Each method is one locked read-modify-write of state.json; safe across processes, and
// thread-safe.
class CaDirectory {
 public:
  // Creates `dir` (mode 0700; it may exist only if empty) with a new CA key and certificate for
  // `federation`. AlreadyExists if the directory holds anything.
  [[nodiscard]] static absl::StatusOr<CaDirectory> Init(const std::string& dir,
                                                        std::string_view federation,
                                                        std::string_view common_name, uint32_t days,
                                                        const core::Clock& clock);
  // Opens an existing CA directory. NotFound / InvalidArgument / FailedPrecondition (key mode).
  [[nodiscard]] static absl::StatusOr<CaDirectory> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& federation() const { return federation_; }
  const Bytes& cert_der() const { return cert_der_; }
  std::string cert_path() const { return dir_ + "/ca.pem"; }

  // Issues a participant certificate for the CSR's key. `node_id` empty: the CSR's CN. Refuses a
  // CSR that asks for another federation, or whose CN differs from a given `node_id`.
  [[nodiscard]] absl::StatusOr<Bytes> SignParticipant(ByteView csr_der, std::string_view node_id,
                                                      uint32_t days, const core::Clock& clock);
  [[nodiscard]] absl::StatusOr<Bytes> SignHub(ByteView csr_der, const HubNames& names,
                                              uint32_t days, const core::Clock& clock);
  // Marks an issued serial revoked (NotFound if this CA never issued it; idempotent).
  [[nodiscard]] absl::Status Revoke(ByteView serial, const core::Clock& clock);
  // A CRL of every revoked serial, with the next CRL number.
  [[nodiscard]] absl::StatusOr<Bytes> IssueCrl(uint32_t days, const core::Clock& clock);
  [[nodiscard]] absl::StatusOr<std::vector<IssuedCertRecord>> ListIssued() const;

 private:
  CaDirectory(std::string dir, std::string federation, Bytes cert_der)
      : dir_(std::move(dir)), federation_(std::move(federation)), cert_der_(std::move(cert_der)) {}
  [[nodiscard]] absl::StatusOr<CaCredentials> LoadCredentials() const;
  [[nodiscard]] absl::Status Record(const Bytes& cert_der, std::string_view kind,
                                    std::string_view subject, const core::Clock& clock);

  std::string dir_;
  std::string federation_;
  Bytes cert_der_;
};

}  // namespace nodelink::keys
