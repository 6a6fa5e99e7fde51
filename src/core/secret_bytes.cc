#include "core/secret_bytes.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "core/crypto_init.h"
#include "core/status.h"

namespace nodelink::core {

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size_ > 0) data_ = new uint8_t[size_]();
}

SecretBytes SecretBytes::Locked(size_t size) {
  EnsureCryptoInitialized();
  SecretBytes s;
  if (size == 0) return s;
  s.data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (s.data_ == nullptr) Die("sodium_malloc failed: out of locked memory");
  std::memset(s.data_, 0, size);
  s.size_ = size;
  s.locked_ = true;
  return s;
}

SecretBytes SecretBytes::CopyOf(ByteView data) {
  SecretBytes s(data.size());
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Release(); }

void SecretBytes::Release() {
  if (data_ == nullptr) return;
  if (locked_) {
    sodium_free(data_);  // wipes before freeing
  } else {
    sodium_memzero(data_, size_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

SecretBytes SecretBytes::Clone() const {
  SecretBytes copy = locked_ ? Locked(size_) : SecretBytes(size_);
  if (size_ > 0) std::memcpy(copy.data_, data_, size_);
  return copy;
}

std::string SecretBytes::Describe() const { return "<secret:" + std::to_string(size_) + "B>"; }

bool ConstantTimeEquals(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void WipeMemory(void* data, size_t size) {
  if (data != nullptr && size > 0) sodium_memzero(data, size);
}

void WipeString(std::string& s) {
  WipeMemory(s.data(), s.size());
  s.clear();
}

}  // namespace nodelink::core
