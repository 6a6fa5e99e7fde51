#include "core/encoding.h"

#include <limits>

#include "core/status.h"

namespace nodelink::core {

std::string ToHex(ByteView data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(data.size() * 2);
  for (size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

absl::StatusOr<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError("hex string has an odd number of digits");
  }
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError("hex string has a character that is not a hex digit");
    }
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

void AppendBytes(Bytes& out, ByteView data) { out.insert(out.end(), data.begin(), data.end()); }

void AppendString(Bytes& out, std::string_view s) { AppendBytes(out, AsBytes(s)); }

void AppendU32Be(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void AppendU64Be(Bytes& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void AppendLp(Bytes& out, ByteView data) {
  if (data.size() > std::numeric_limits<uint32_t>::max()) Die("lp() of a field over 4 GiB");
  AppendU32Be(out, static_cast<uint32_t>(data.size()));
  AppendBytes(out, data);
}

bool ByteReader::ReadU32Be(uint32_t& v) {
  if (remaining() < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | data_[pos_++];
  return true;
}

bool ByteReader::ReadU64Be(uint64_t& v) {
  if (remaining() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | data_[pos_++];
  return true;
}

bool ByteReader::ReadLp(ByteView& b) {
  uint32_t len = 0;
  size_t start = pos_;
  if (!ReadU32Be(len)) return false;
  if (remaining() < len) {
    pos_ = start;
    return false;
  }
  b = data_.subspan(pos_, len);
  pos_ += len;
  return true;
}

}  // namespace nodelink::core
