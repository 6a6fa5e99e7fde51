#include "keys/ca_directory.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/encoding.h"
#include "core/file_lock.h"
#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/files.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "messages/names.h"

namespace nodelink::keys {

namespace {

using nlohmann::json;

constexpr std::string_view kStateFormat = "nodelink-ca/1";

std::string KeyPath(const std::string& dir) { return dir + "/ca.key"; }
std::string CertPath(const std::string& dir) { return dir + "/ca.pem"; }
std::string StatePath(const std::string& dir) { return dir + "/state.json"; }

// Two commands cannot interleave their updates of one directory.
absl::StatusOr<core::FileLock> LockDir(const std::string& dir) {
  return core::FileLock::Take(dir + "/.lock", core::FileLock::Mode::kWait);
}

absl::StatusOr<json> ReadState(const std::string& dir) {
  NL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(StatePath(dir)));
  try {
    json state = json::parse(text);
    if (!state.is_object() || state.value("format", "") != kStateFormat ||
        !state["federation"].is_string() || !state["issued"].is_array() ||
        !state["crl_number"].is_number_unsigned()) {
      return absl::DataLossError(StatePath(dir) + " is not a nodelink CA state file");
    }
    return state;
  } catch (const json::exception& e) {
    return absl::DataLossError(StatePath(dir) + " is corrupt: " + e.what());
  }
}

absl::Status WriteState(const std::string& dir, const json& state) {
  return WriteFileAtomically(StatePath(dir), state.dump(2) + "\n", 0600);
}

bool DirIsEmptyOrMissing(const std::string& dir, bool* exists) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *exists = false;
    return errno == ENOENT;
  }
  *exists = true;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

absl::StatusOr<CaDirectory> CaDirectory::Init(const std::string& dir, std::string_view federation,
                                              std::string_view common_name, uint32_t days,
                                              const core::Clock& clock) {
  if (!messages::IsValidName(federation)) {
    return absl::InvalidArgumentError("\"" + std::string(federation) +
                                      "\" is not a valid federation name (PROTOCOL.md section 1)");
  }
  bool exists = false;
  if (!DirIsEmptyOrMissing(dir, &exists)) {
    return absl::AlreadyExistsError(dir +
                                    " exists and is not empty; a CA directory is created "
                                    "in a new or empty directory");
  }
  if (!exists && ::mkdir(dir.c_str(), 0700) != 0) {
    return absl::InternalError("cannot create " + dir + ": " + std::strerror(errno));
  }
  ::chmod(dir.c_str(), 0700);
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey key, core::EcPrivateKey::Generate());
  std::string cn =
      common_name.empty() ? std::string(federation) + " federation CA" : std::string(common_name);
  NL_ASSIGN_OR_RETURN(Bytes cert, CreateCaCertificate(key, federation, cn, clock, days));
  NL_ASSIGN_OR_RETURN(core::SecretBytes key_pem, key.ExportPem());
  NL_RETURN_IF_ERROR(WriteNewSecretFile(KeyPath(dir), key_pem.ExposeSecret()));
  NL_RETURN_IF_ERROR(WriteFileAtomically(CertPath(dir), DerToPem(kPemCertificate, cert), 0644));
  json state = {{"format", kStateFormat},
                {"federation", std::string(federation)},
                {"crl_number", 0},
                {"issued", json::array()}};
  NL_RETURN_IF_ERROR(WriteState(dir, state));
  return CaDirectory(dir, std::string(federation), std::move(cert));
}

absl::StatusOr<CaDirectory> CaDirectory::Open(const std::string& dir) {
  if (!FileExists(CertPath(dir)) || !FileExists(StatePath(dir))) {
    return absl::NotFoundError(dir +
                               " is not a CA directory (no ca.pem or state.json); create "
                               "one with: nodelink-keys ca init --dir " +
                               dir);
  }
  NL_ASSIGN_OR_RETURN(json state, ReadState(dir));
  NL_ASSIGN_OR_RETURN(Bytes cert, ReadCertificateFile(CertPath(dir)));
  std::string federation = state.value("federation", "");
  if (!messages::IsValidName(federation)) {
    return absl::DataLossError(StatePath(dir) + " names an invalid federation");
  }
  return CaDirectory(dir, std::move(federation), std::move(cert));
}

absl::StatusOr<CaCredentials> CaDirectory::LoadCredentials() const {
  NL_RETURN_IF_ERROR(CheckPrivateFileMode(KeyPath(dir_)));
  NL_ASSIGN_OR_RETURN(core::SecretBytes pem, ReadSecretFile(KeyPath(dir_)));
  auto key = core::EcPrivateKey::FromPem(pem);
  if (!key.ok()) {
    return absl::DataLossError(KeyPath(dir_) + " is not a P-256 PEM private key");
  }
  return CaCredentials{*std::move(key), cert_der_};
}

absl::Status CaDirectory::Record(const Bytes& cert_der, std::string_view kind,
                                 std::string_view subject, const core::Clock& clock) {
  NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(cert_der));
  NL_ASSIGN_OR_RETURN(core::FileLock lock, LockDir(dir_));
  NL_ASSIGN_OR_RETURN(json state, ReadState(dir_));
  state["issued"].push_back({{"serial", info.serial_hex},
                             {"kind", std::string(kind)},
                             {"subject", std::string(subject)},
                             {"spki_fingerprint", FingerprintHex(info.spki_fingerprint)},
                             {"issued_ms", clock.NowMs()},
                             {"not_after_ms", info.not_after_ms}});
  return WriteState(dir_, state);
}

absl::StatusOr<Bytes> CaDirectory::SignParticipant(ByteView csr_der, std::string_view node_id,
                                                   uint32_t days, const core::Clock& clock) {
  NL_ASSIGN_OR_RETURN(CsrInfo csr, CheckCsr(csr_der));
  if (!csr.organization.empty() && csr.organization != federation_) {
    return absl::InvalidArgumentError("the CSR asks for federation \"" + csr.organization +
                                      "\", but this CA is for \"" + federation_ + "\"");
  }
  std::string id = node_id.empty() ? csr.common_name : std::string(node_id);
  if (!node_id.empty() && !csr.common_name.empty() && csr.common_name != node_id) {
    return absl::InvalidArgumentError("the CSR asks for node id \"" + csr.common_name +
                                      "\", but --node-id is \"" + std::string(node_id) +
                                      "\"; ask the participant for a matching CSR");
  }
  if (!messages::IsValidName(id)) {
    return absl::InvalidArgumentError("\"" + id + "\" is not a valid node id; pass --node-id");
  }
  NL_ASSIGN_OR_RETURN(CaCredentials ca, LoadCredentials());
  NL_ASSIGN_OR_RETURN(Bytes cert, IssueParticipantCert(csr_der, ca, federation_, id, clock, days));
  NL_RETURN_IF_ERROR(Record(cert, "participant", id, clock));
  return cert;
}

absl::StatusOr<Bytes> CaDirectory::SignHub(ByteView csr_der, const HubNames& names, uint32_t days,
                                           const core::Clock& clock) {
  NL_ASSIGN_OR_RETURN(CaCredentials ca, LoadCredentials());
  NL_ASSIGN_OR_RETURN(Bytes cert, IssueHubCert(csr_der, ca, names, clock, days));
  std::string subject;
  for (const std::string& n : names.dns) subject += (subject.empty() ? "" : ",") + n;
  for (const std::string& n : names.ips) subject += (subject.empty() ? "" : ",") + n;
  NL_RETURN_IF_ERROR(Record(cert, "hub", subject, clock));
  return cert;
}

absl::Status CaDirectory::Revoke(ByteView serial, const core::Clock& clock) {
  std::string hex = core::ToHex(serial);
  NL_ASSIGN_OR_RETURN(core::FileLock lock, LockDir(dir_));
  NL_ASSIGN_OR_RETURN(json state, ReadState(dir_));
  try {
    for (json& entry : state["issued"]) {
      if (entry.is_object() && entry.value("serial", "") == hex) {
        if (!entry.value("revoked", false)) {
          entry["revoked"] = true;
          entry["revoked_ms"] = clock.NowMs();
        }
        return WriteState(dir_, state);
      }
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(StatePath(dir_) + " is corrupt: " + e.what());
  }
  return absl::NotFoundError("this CA issued no certificate with serial " + hex);
}

absl::StatusOr<Bytes> CaDirectory::IssueCrl(uint32_t days, const core::Clock& clock) {
  NL_ASSIGN_OR_RETURN(CaCredentials ca, LoadCredentials());
  NL_ASSIGN_OR_RETURN(core::FileLock lock, LockDir(dir_));
  NL_ASSIGN_OR_RETURN(json state, ReadState(dir_));
  std::vector<RevokedSerial> revoked;
  uint64_t number = 0;
  try {
    for (const json& entry : state["issued"]) {
      if (!entry.is_object() || !entry.value("revoked", false)) continue;
      auto serial = core::FromHex(entry.value("serial", ""));
      if (!serial.ok()) return absl::DataLossError(StatePath(dir_) + " has an invalid serial");
      revoked.push_back({*serial, entry.value("revoked_ms", uint64_t{0})});
    }
    number = state.value("crl_number", uint64_t{0}) + 1;
  } catch (const json::exception& e) {
    return absl::DataLossError(StatePath(dir_) + " is corrupt: " + e.what());
  }
  NL_ASSIGN_OR_RETURN(Bytes crl, CreateCrl(ca, revoked, number, clock, days));
  state["crl_number"] = number;
  NL_RETURN_IF_ERROR(WriteState(dir_, state));
  return crl;
}

absl::StatusOr<std::vector<IssuedCertRecord>> CaDirectory::ListIssued() const {
  NL_ASSIGN_OR_RETURN(json state, ReadState(dir_));
  std::vector<IssuedCertRecord> out;
  try {
    for (const json& entry : state["issued"]) {
      IssuedCertRecord r;
      r.serial_hex = entry.value("serial", "");
      r.kind = entry.value("kind", "");
      r.subject = entry.value("subject", "");
      r.spki_fingerprint = entry.value("spki_fingerprint", "");
      r.issued_ms = entry.value("issued_ms", uint64_t{0});
      r.not_after_ms = entry.value("not_after_ms", uint64_t{0});
      r.revoked = entry.value("revoked", false);
      r.revoked_ms = entry.value("revoked_ms", uint64_t{0});
      out.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(StatePath(dir_) + " is corrupt: " + e.what());
  }
  return out;
}

}  // namespace nodelink::keys
