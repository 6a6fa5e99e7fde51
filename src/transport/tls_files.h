// Files gRPC's TLS stack reads: the CRL directory (OpenSSL hashed-directory layout).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace nodelink::transport {

// Writes every CRL in `crl_pem` into `dir` (created if needed, emptied of old CRLs) as
// "<issuer-hash>.r<n>", the layout OpenSSL's hash-directory lookup (and so gRPC's
// set_crl_directory) reads. Errors: INVALID_ARGUMENT if the PEM holds no parsable CRL; file
// errors.
[[nodiscard]] absl::Status WriteCrlDirectory(const std::string& crl_pem, const std::string& dir);

}  // namespace nodelink::transport
