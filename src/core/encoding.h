// Hex and the length-prefixed encodings of PROTOCOL.md section 2: u32be, u64be, lp(b).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::core {

// Lowercase hex.
std::string ToHex(ByteView data);
// Accepts upper or lower case; refuses odd lengths and non-hex characters.
absl::StatusOr<Bytes> FromHex(std::string_view hex);

void AppendBytes(Bytes& out, ByteView data);
void AppendString(Bytes& out, std::string_view s);
void AppendU32Be(Bytes& out, uint32_t v);
void AppendU64Be(Bytes& out, uint64_t v);
// lp(b) = u32be(len(b)) || b. Aborts if b is 4 GiB or longer (a programmer error: no nodelink
// field can be that long after envelope validation).
void AppendLp(Bytes& out, ByteView data);
inline void AppendLp(Bytes& out, std::string_view s) { AppendLp(out, AsBytes(s)); }

// Reads a byte string front to back. Every read checks the remaining length first, so no input
// can make it read out of bounds or allocate.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}
  [[nodiscard]] bool ReadU32Be(uint32_t& v);
  [[nodiscard]] bool ReadU64Be(uint64_t& v);
  // Reads lp(b) and returns a view of b into the input.
  [[nodiscard]] bool ReadLp(ByteView& b);
  bool AtEnd() const { return pos_ == data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  ByteView data_;
  size_t pos_ = 0;
};

}  // namespace nodelink::core
