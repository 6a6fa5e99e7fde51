// Conformance vectors of PROTOCOL.md section 10: verify a file written by any implementation,
// and write a file of fresh random vectors for others to verify.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nodelink::overlay {

struct VectorResult {
  size_t index = 0;
  std::string kind;    // "sealed" or "setup"
  std::string expect;  // as written in the file
  std::string got;     // "ok", a failure code, or "MISMATCH" when a value differs from the file's
  std::string detail;  // why, for people
  bool passed() const { return got == expect; }
};

// Parses a vector file and checks every vector. An unreadable file or a vector missing fields is
// an InvalidArgument error naming the vector; results otherwise, one per vector.
absl::StatusOr<std::vector<VectorResult>> VerifyConformanceVectors(std::string_view json_text);

// A vector file (JSON text) with `count` vectors from fresh random inputs: positive ones and
// negative ones for every code a vector can express (tampered ciphertext, tag, salt, nonce and
// header fields, wrong signer, signature over other bytes, wrong channel secret, malformed plain
// and sizes, unknown inner types; for setups, invalid points, scalars that do not match, bad
// signatures, tampered signed fields).
absl::StatusOr<std::string> GenerateConformanceVectors(size_t count);

}  // namespace nodelink::overlay
