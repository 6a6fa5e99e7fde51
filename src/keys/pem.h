// PEM and DER encodings of certificates, CSRs and CRLs, and parsing that refuses trailing bytes.
// Module-internal (includes OpenSSL through core/ossl.h). All functions are thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ossl.h"

namespace nodelink::keys {

inline constexpr std::string_view kPemCertificate = "CERTIFICATE";
inline constexpr std::string_view kPemCsr = "CERTIFICATE REQUEST";
inline constexpr std::string_view kPemCrl = "X509 CRL";

// DER -> OpenSSL objects. InvalidArgument on anything that is not exactly one DER object.
[[nodiscard]] absl::StatusOr<core::X509Ptr> ParseCertificateDer(ByteView der);
[[nodiscard]] absl::StatusOr<core::X509ReqPtr> ParseCsrDer(ByteView der);
[[nodiscard]] absl::StatusOr<core::X509CrlPtr> ParseCrlDer(ByteView der);

// OpenSSL objects -> DER. Internal error only if OpenSSL cannot encode what it holds.
[[nodiscard]] absl::StatusOr<Bytes> CertificateToDer(X509* cert);
[[nodiscard]] absl::StatusOr<Bytes> CsrToDer(X509_REQ* csr);
[[nodiscard]] absl::StatusOr<Bytes> CrlToDer(X509_CRL* crl);

// One PEM block "-----BEGIN <label>-----" around `der`.
std::string DerToPem(std::string_view label, ByteView der);
// Concatenated PEM blocks, in order.
std::string DersToPem(std::string_view label, const std::vector<Bytes>& ders);

// Reads every PEM block of `text` (each must carry `label`; "NEW CERTIFICATE REQUEST" counts as a
// CSR), or, if `text` holds no PEM at all, takes it as one DER object. InvalidArgument if there is
// nothing, or a block has another label. The DER is not parsed further here.
[[nodiscard]] absl::StatusOr<std::vector<Bytes>> DecodePemOrDer(std::string_view text,
                                                                std::string_view label);

// File readers on top of DecodePemOrDer; each parses the result once to refuse garbage early.
[[nodiscard]] absl::StatusOr<std::vector<Bytes>> ReadCertificatesFile(const std::string& path);
[[nodiscard]] absl::StatusOr<Bytes> ReadCertificateFile(const std::string& path);  // exactly one
[[nodiscard]] absl::StatusOr<Bytes> ReadCsrFile(const std::string& path);
[[nodiscard]] absl::StatusOr<Bytes> ReadCrlFile(const std::string& path);

}  // namespace nodelink::keys
