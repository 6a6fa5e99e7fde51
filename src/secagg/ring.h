// Vectors over the ring Z_(2^k), k a multiple of 8 in 8..4096 (PROTOCOL.md section 8): each
// element big-endian in exactly k/8 bytes, a vector the concatenation of its elements. Arithmetic
// is per element, carries dropped at the element's top (mod 2^k).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::secagg {

inline constexpr uint32_t kMinModulusBits = 8;
inline constexpr uint32_t kMaxModulusBits = 4096;

// True for k a multiple of 8 in 8..4096.
bool IsValidModulusBits(uint32_t bits);

class RingVector {
 public:
  // The zero vector. Aborts on an invalid k (callers validate parameters first).
  RingVector(uint32_t modulus_bits, size_t element_count);
  // From the wire encoding; InvalidArgument unless `bytes` holds exactly count * k/8 bytes.
  static absl::StatusOr<RingVector> FromBytes(uint32_t modulus_bits, size_t element_count,
                                              ByteView bytes);
  // Uniform in Z_(2^k)^n from the CSPRNG (2^k is a power of 256: uniform bytes are uniform).
  static RingVector Random(uint32_t modulus_bits, size_t element_count);
  // From decimal integers (an optional leading '-' means the additive inverse mod 2^k).
  // InvalidArgument on a non-integer or on |value| >= 2^k; the message names the element's
  // position, never its value.
  static absl::StatusOr<RingVector> FromDecimal(uint32_t modulus_bits,
                                                const std::vector<std::string>& values);

  void AddInPlace(const RingVector& other);       // this += other (mod 2^k)
  void SubtractInPlace(const RingVector& other);  // this -= other (mod 2^k)

  uint32_t modulus_bits() const { return bits_; }
  size_t element_bytes() const { return bits_ / 8; }
  size_t size() const { return count_; }
  const Bytes& bytes() const { return data_; }
  // Element i as an unsigned decimal string in [0, 2^k).
  std::string ElementDecimal(size_t i) const;
  bool operator==(const RingVector& other) const = default;

  // Elements can be a party's secret input or shares of it: wiped when the vector goes away.
  RingVector(const RingVector&) = default;
  RingVector(RingVector&&) = default;
  RingVector& operator=(const RingVector&) = default;
  RingVector& operator=(RingVector&&) = default;
  ~RingVector();

 private:
  uint32_t bits_;
  size_t count_;
  Bytes data_;
};

}  // namespace nodelink::secagg
