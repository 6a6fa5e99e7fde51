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

TEST_CASE("integer lists: separators, comments, errors") {
  auto v = ParseIntegerList("1 2,3\n-4 # comment 5\n 6").value();
  CHECK(v == std::vector<std::string>{"1", "2", "3", "-4", "6"});
  CHECK(ParseIntegerList("").value().empty());
  CHECK_FALSE(ParseIntegerList("1 x 2").ok());
  CHECK_FALSE(ParseIntegerList("-").ok());
}

}  // namespace
}  // namespace nodelink::secagg
