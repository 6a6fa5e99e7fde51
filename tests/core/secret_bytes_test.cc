#include <doctest/doctest.h>

#include <utility>

#include "core/random.h"
#include "core/secret_bytes.h"

namespace nodelink::core {
namespace {

TEST_CASE("SecretBytes moves, clones and compares in constant time") {
  SecretBytes a = RandomSecret(32);
  SecretBytes b = a.Clone();
  CHECK(ConstantTimeEquals(a, b));
  b.MutableSecret()[0] ^= 1;
  CHECK_FALSE(ConstantTimeEquals(a, b));
  SecretBytes c = std::move(a);
  CHECK(c.size() == 32);
  CHECK(a.empty());  // NOLINT: moved-from is empty by contract
  CHECK_FALSE(ConstantTimeEquals(c, SecretBytes(16)));
}

TEST_CASE("SecretBytes never prints its bytes") {
  SecretBytes s = SecretBytes::CopyOf(ToBytes("hunter2-hunter2"));
  CHECK(s.Describe() == "<secret:15B>");
}

TEST_CASE("locked secrets behave like heap secrets") {
  SecretBytes s = SecretBytes::Locked(32);
  CHECK(s.size() == 32);
  for (uint8_t byte : s.ExposeSecret()) CHECK(byte == 0);
  s.MutableSecret()[3] = 7;
  SecretBytes copy = s.Clone();
  CHECK(ConstantTimeEquals(s, copy));
}

}  // namespace
}  // namespace nodelink::core
