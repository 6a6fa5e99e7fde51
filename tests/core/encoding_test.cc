#include <doctest/doctest.h>

#include "core/encoding.h"

namespace nodelink::core {
namespace {

TEST_CASE("hex round trip and refusals") {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  CHECK(ToHex(b) == "0001abff");
  CHECK(*FromHex("0001ABff") == b);
  CHECK(FromHex("").value().empty());
  CHECK_FALSE(FromHex("abc").ok());
  CHECK_FALSE(FromHex("zz").ok());
}

TEST_CASE("u32be, u64be and lp encode big-endian with a 4-byte length") {
  Bytes out;
  AppendU32Be(out, 0x01020304);
  AppendU64Be(out, 0x1122334455667788ULL);
  AppendLp(out, std::string_view("ab"));
  CHECK(ToHex(out) == "01020304" "1122334455667788" "00000002" "6162");
}

TEST_CASE("ByteReader never reads past the end") {
  Bytes in;
  AppendLp(in, std::string_view("hello"));
  AppendU32Be(in, 7);
  ByteReader r(in);
  ByteView v;
  REQUIRE(r.ReadLp(v));
  CHECK(ToString(v) == "hello");
  uint32_t x = 0;
  REQUIRE(r.ReadU32Be(x));
  CHECK(x == 7);
  CHECK(r.AtEnd());
  CHECK_FALSE(r.ReadU32Be(x));

  Bytes lying = {0xff, 0xff, 0xff, 0xff, 0x01};  // claims 4 GiB, holds 1 byte
  ByteReader r2(lying);
  CHECK_FALSE(r2.ReadLp(v));
  Bytes short_len = {0x00, 0x00};
  ByteReader r3(short_len);
  CHECK_FALSE(r3.ReadLp(v));
}

}  // namespace
}  // namespace nodelink::core
