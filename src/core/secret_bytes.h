// A move-only container for key material: wiped on destruction, never printed, compared only in
// constant time, read only through ExposeSecret() (grep for it to find every read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/bytes.h"

namespace nodelink::core {

class SecretBytes {
 public:
  SecretBytes() = default;
  // `size` zero bytes on the ordinary heap (short-lived secrets: message keys, ECDH outputs).
  explicit SecretBytes(size_t size);
  // `size` zero bytes in locked, guarded memory (libsodium `sodium_malloc`): for long-lived keys
  // such as the identity scalar and the store key. Costs about 17 us and a page; not per message.
  static SecretBytes Locked(size_t size);
  // Copies `data`. The caller remains responsible for wiping its own copy.
  static SecretBytes CopyOf(ByteView data);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  // An explicit copy, with the same kind of memory.
  [[nodiscard]] SecretBytes Clone() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The only ways to read or write the secret.
  ByteView ExposeSecret() const { return {data_, size_}; }
  std::span<uint8_t> MutableSecret() { return {data_, size_}; }

  // For logs: "<secret:32B>", never the bytes.
  std::string Describe() const;

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
};

// Constant-time equality (different sizes compare unequal, leaking only the sizes).
[[nodiscard]] bool ConstantTimeEquals(ByteView a, ByteView b);
[[nodiscard]] inline bool ConstantTimeEquals(const SecretBytes& a, const SecretBytes& b) {
  return ConstantTimeEquals(a.ExposeSecret(), b.ExposeSecret());
}

// Overwrites memory so that the compiler cannot elide it.
void WipeMemory(void* data, size_t size);
inline void WipeBytes(Bytes& b) {
  WipeMemory(b.data(), b.size());
  b.clear();
}
void WipeString(std::string& s);

}  // namespace nodelink::core
