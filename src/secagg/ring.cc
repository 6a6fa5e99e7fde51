#include "secagg/ring.h"

#include <openssl/bn.h>


#include "core/ossl.h"
#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace nodelink::secagg {

bool IsValidModulusBits(uint32_t bits) {
  return bits >= kMinModulusBits && bits <= kMaxModulusBits && bits % 8 == 0;
}

RingVector::RingVector(uint32_t modulus_bits, size_t element_count)
    : bits_(modulus_bits), count_(element_count) {
  if (!IsValidModulusBits(modulus_bits)) core::Die("RingVector: invalid modulus bits");
  data_.assign(element_count * element_bytes(), 0);
}

absl::StatusOr<RingVector> RingVector::FromBytes(uint32_t modulus_bits, size_t element_count,
                                                 ByteView bytes) {
  if (!IsValidModulusBits(modulus_bits)) {
    return absl::InvalidArgumentError("modulus_bits must be a multiple of 8 in 8..4096");
  }
  if (bytes.size() != element_count * (modulus_bits / 8)) {
    return absl::InvalidArgumentError("elements must be exactly element_count * modulus_bits / 8 "
                                      "bytes");
  }
  RingVector v(modulus_bits, element_count);
  v.data_.assign(bytes.begin(), bytes.end());
  return v;
}

RingVector RingVector::Random(uint32_t modulus_bits, size_t element_count) {
  RingVector v(modulus_bits, element_count);
  core::RandomFill(v.data_);
  return v;
}

absl::StatusOr<RingVector> RingVector::FromDecimal(uint32_t modulus_bits,
                                                   const std::vector<std::string>& values) {
  if (!IsValidModulusBits(modulus_bits)) {
    return absl::InvalidArgumentError("modulus_bits must be a multiple of 8 in 8..4096");
  }
  RingVector v(modulus_bits, values.size());
  const size_t width = v.element_bytes();
  for (size_t i = 0; i < values.size(); ++i) {
    std::string_view text = values[i];
    bool negative = !text.empty() && text[0] == '-';
    std::string digits(negative ? text.substr(1) : text);
    // Errors name the element's position, never its value: the value is a party's secret and
    // the message may reach the researcher.
    if (digits.empty() || digits.size() > 1300 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return absl::InvalidArgumentError("element " + std::to_string(i + 1) +
                                        " is not a decimal integer");
    }
    BIGNUM* raw = nullptr;
    if (BN_dec2bn(&raw, digits.c_str()) == 0) {
      return absl::InvalidArgumentError("element " + std::to_string(i + 1) +
                                        " is not a decimal integer");
    }
    core::BnPtr bn(raw);
    if (BN_num_bits(bn.get()) > static_cast<int>(modulus_bits)) {
      return absl::InvalidArgumentError("element " + std::to_string(i + 1) + " does not fit in " +
                                        std::to_string(modulus_bits) + " bits");
    }
    uint8_t* element = v.data_.data() + i * width;
    BN_bn2binpad(bn.get(), element, static_cast<int>(width));
    if (negative) {  // two's complement: -x = (~x) + 1 mod 2^k
      for (size_t b = 0; b < width; ++b) element[b] = static_cast<uint8_t>(~element[b]);
      for (size_t b = width; b-- > 0;) {
        if (++element[b] != 0) break;
      }
    }
  }
  return v;
}

RingVector::~RingVector() { core::WipeBytes(data_); }

void RingVector::AddInPlace(const RingVector& other) {
  if (other.bits_ != bits_ || other.count_ != count_) core::Die("RingVector: shape mismatch");
  const size_t width = element_bytes();
  for (size_t e = 0; e < count_; ++e) {
    uint8_t* a = data_.data() + e * width;
    const uint8_t* b = other.data_.data() + e * width;
    unsigned carry = 0;
    for (size_t i = width; i-- > 0;) {
      unsigned sum = a[i] + b[i] + carry;
      a[i] = static_cast<uint8_t>(sum);
      carry = sum >> 8;
    }
  }
}

void RingVector::SubtractInPlace(const RingVector& other) {
  if (other.bits_ != bits_ || other.count_ != count_) core::Die("RingVector: shape mismatch");
  const size_t width = element_bytes();
  for (size_t e = 0; e < count_; ++e) {
    uint8_t* a = data_.data() + e * width;
    const uint8_t* b = other.data_.data() + e * width;
    int borrow = 0;
    for (size_t i = width; i-- > 0;) {
      int diff = static_cast<int>(a[i]) - static_cast<int>(b[i]) - borrow;
      borrow = diff < 0 ? 1 : 0;
      a[i] = static_cast<uint8_t>(diff + (borrow << 8));
    }
  }
}

std::string RingVector::ElementDecimal(size_t i) const {
  const size_t width = element_bytes();
  core::BnPtr bn(BN_bin2bn(data_.data() + i * width, static_cast<int>(width), nullptr));
  char* text = bn ? BN_bn2dec(bn.get()) : nullptr;
  if (text == nullptr) core::Die("RingVector: decimal conversion failed");
  std::string out(text);
  OPENSSL_free(text);
  return out;
}

}  // namespace nodelink::secagg
