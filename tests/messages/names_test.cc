#include <doctest/doctest.h>

#include <string>

#include "messages/codes.h"
#include "messages/names.h"

namespace nodelink::messages {
namespace {

TEST_CASE("name pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$") {
  CHECK(IsValidName("a"));
  CHECK(IsValidName("Lab_3"));
  CHECK(IsValidName("fed-1.example"));
  CHECK(IsValidName(std::string(64, 'x')));
  CHECK_FALSE(IsValidName(std::string(65, 'x')));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName("-lead"));
  CHECK_FALSE(IsValidName(".lead"));
  CHECK_FALSE(IsValidName("_lead"));
  CHECK_FALSE(IsValidName("has space"));
  CHECK_FALSE(IsValidName("slash/"));
  CHECK_FALSE(IsValidName("comma,"));
  CHECK_FALSE(IsValidName("caf\xc3\xa9"));
  CHECK_FALSE(IsValidName(std::string("nul\0x", 5)));
}

TEST_CASE("id order is bytewise with prefixes smaller") {
  CHECK(IdLess("a", "b"));
  CHECK(IdLess("a", "ab"));
  CHECK(IdLess("B", "a"));  // uppercase sorts before lowercase
  CHECK_FALSE(IdLess("node-b", "node-a"));
}

TEST_CASE("receive code names round trip") {
  for (size_t i = 0; i < kReceiveCodeCount; ++i) {
    auto code = static_cast<ReceiveCode>(i);
    CHECK(ReceiveCodeFromName(ReceiveCodeName(code)) == code);
  }
  CHECK(ReceiveCodeName(ReceiveCode::kDecryptFailed) == "DECRYPT_FAILED");
  CHECK_FALSE(ReceiveCodeFromName("NOPE").has_value());
}

}  // namespace
}  // namespace nodelink::messages
