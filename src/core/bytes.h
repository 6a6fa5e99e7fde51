// Byte containers used across modules. Non-secret data only: secrets live in SecretBytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nodelink {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// Views the bytes of a string (UTF-8 labels, protobuf `bytes` fields) without copying.
inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
// Views bytes as a string, for protobuf `bytes` setters.
inline std::string_view AsStringView(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline std::string ToString(ByteView b) { return std::string(AsStringView(b)); }
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

}  // namespace nodelink
