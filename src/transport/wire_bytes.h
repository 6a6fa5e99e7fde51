// Raw protobuf bytes of the standard gRPC services the hub serves and probes without generated
// code (grpc.health.v1, grpc.reflection.v1alpha): ByteBuffer conversions and a minimal wire
// reader. Used by probe.cc and hub_health.cc.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nodelink::transport {

inline std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// A minimal protobuf wire reader: enough for the tiny fixed messages of health and reflection.
struct WireReader {
  std::string_view in;
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) return false;
      const auto b = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // Reads one field; for length-delimited ones `bytes` is set, for varints `value`.
  bool Field(uint32_t& number, uint32_t& wire, uint64_t& value, std::string_view& bytes) {
    uint64_t key = 0;
    if (!Varint(key)) return false;
    number = static_cast<uint32_t>(key >> 3);
    wire = static_cast<uint32_t>(key & 7);
    switch (wire) {
      case 0:
        return Varint(value);
      case 2: {
        uint64_t len = 0;
        if (!Varint(len) || len > in.size()) return false;
        bytes = in.substr(0, len);
        in.remove_prefix(len);
        return true;
      }
      case 1:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        return true;
      case 5:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        return true;
      default:
        return false;
    }
  }
};

inline grpc::ByteBuffer BufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes);  // one slice, even when empty (IMPLEMENTATION-NOTES 3)
  return grpc::ByteBuffer(&slice, 1);
}

inline void AppendVarint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}

// grpc.health.v1 HealthCheckRequest{service = 1}.
inline std::string HealthCheckRequestBytes(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back('\x0a');
  AppendVarint(out, service.size());
  return out + service;
}

}  // namespace nodelink::transport
