#include <doctest/doctest.h>

#include "secagg/ring.h"

namespace nodelink::secagg {
namespace {

TEST_CASE("addition and subtraction wrap mod 2^k, per element") {
  auto a = RingVector::FromDecimal(8, {"250", "1", "0"}).value();
  auto b = RingVector::FromDecimal(8, {"10", "2", "255"}).value();
  a.AddInPlace(b);
  CHECK(a.ElementDecimal(0) == "4");  // 260 mod 256
  CHECK(a.ElementDecimal(1) == "3");
  CHECK(a.ElementDecimal(2) == "255");
  a.SubtractInPlace(b);
  CHECK(a == RingVector::FromDecimal(8, {"250", "1", "0"}).value());
  CHECK(a.bytes().size() == 3);
}

TEST_CASE("negative inputs are additive inverses; big moduli work") {
  auto minus_one = RingVector::FromDecimal(64, {"-1"}).value();
  CHECK(minus_one.ElementDecimal(0) == "18446744073709551615");
  auto one = RingVector::FromDecimal(64, {"1"}).value();
  minus_one.AddInPlace(one);
  CHECK(minus_one.ElementDecimal(0) == "0");

  std::string big = "3231700607131100730071487668866995196044410266971548403213034542752465513886789"
                    "08934196";
  auto x = RingVector::FromDecimal(2048, {big}).value();
  CHECK(x.element_bytes() == 256);
  CHECK(x.ElementDecimal(0) == big);
}

TEST_CASE("refusals: bad moduli, values too large, non-integers, wrong byte lengths") {
  CHECK_FALSE(RingVector::FromDecimal(12, {"1"}).ok());
  CHECK_FALSE(RingVector::FromDecimal(4104, {"1"}).ok());
  CHECK_FALSE(RingVector::FromDecimal(8, {"256"}).ok());
  CHECK(RingVector::FromDecimal(8, {"255"}).ok());
  CHECK_FALSE(RingVector::FromDecimal(8, {"1.5"}).ok());
  CHECK_FALSE(RingVector::FromDecimal(8, {""}).ok());
  CHECK_FALSE(RingVector::FromBytes(16, 3, Bytes(5)).ok());
  CHECK(RingVector::FromBytes(16, 3, Bytes(6)).ok());
}

TEST_CASE("errors name the element, never its value (it is a secret)") {
  auto r = RingVector::FromDecimal(8, {"1", "987654321"});
  REQUIRE_FALSE(r.ok());
  std::string message(r.status().message());
  CHECK(message.find("987654321") == std::string::npos);
  CHECK(message.find("element 2") != std::string::npos);
}

}  // namespace
}  // namespace nodelink::secagg
