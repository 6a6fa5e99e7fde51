// The canonical byte strings, checked term by term against hand-written encodings of the
// formulas in PROTOCOL.md sections 5, 6 and 8.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/sha256.h"
#include "messages/canonical.h"

namespace nodelink::messages {
namespace {

using core::ToHex;

std::string Lp(const std::string& hex_body) {
  char len[17];
  std::snprintf(len, sizeof(len), "%08x", static_cast<unsigned>(hex_body.size() / 2));
  return std::string(len) + hex_body;
}
std::string HexOf(std::string_view s) { return ToHex(AsBytes(s)); }

TEST_CASE("req_tbs") {
  Bytes mid(16, 0x11), sid(16, 0x22), ek(65, 0x04);
  Bytes tbs = SetupRequestTbs({"f", "a", "b", mid, 0x0102030405060708ULL, sid, ek});
  std::string expected = HexOf("nodelink/1 setup-request") + Lp(HexOf("f")) + Lp(HexOf("a")) +
                         Lp(HexOf("b")) + Lp(ToHex(mid)) + "0102030405060708" + Lp(ToHex(sid)) +
                         Lp(ToHex(ek));
  CHECK(ToHex(tbs) == expected);
}

TEST_CASE("rep_tbs") {
  Bytes mid(16, 0x33), sid(16, 0x22), h(32, 0x55), ek(65, 0x04);
  Bytes tbs = SetupReplyTbs({"f", "b", "a", mid, 9, sid, h, ek});
  std::string expected = HexOf("nodelink/1 setup-reply") + Lp(HexOf("f")) + Lp(HexOf("b")) +
                         Lp(HexOf("a")) + Lp(ToHex(mid)) + "0000000000000009" + Lp(ToHex(sid)) +
                         Lp(ToHex(h)) + Lp(ToHex(ek));
  CHECK(ToHex(tbs) == expected);
}

TEST_CASE("aad, message key info and the inner signature input") {
  Bytes mid(16, 1), cid(16, 2), salt(32, 3), nonce(12, 4);
  Bytes aad = SealedAad({"fed", "s", "r", mid, 1700000000000ULL, cid, 7, salt, nonce});
  std::string expected = HexOf("nodelink/1 sealed") + Lp(HexOf("fed")) + Lp(HexOf("s")) +
                         Lp(HexOf("r")) + Lp(ToHex(mid)) + "0000018bcfe56800" + Lp(ToHex(cid)) +
                         "0000000000000007" + Lp(ToHex(salt)) + Lp(ToHex(nonce));
  CHECK(ToHex(aad) == expected);

  CHECK(ToHex(MessageKeyInfo("s", "r")) ==
        HexOf("nodelink/1 message") + Lp(HexOf("s")) + Lp(HexOf("r")));

  Bytes inner = {0x0a, 0x01, 0x78};
  auto digest = core::Sha256(aad);
  CHECK(ToHex(InnerSignatureInput(aad, inner)) ==
        HexOf("nodelink/1 inner") + Lp(ToHex(digest)) + Lp(ToHex(inner)));
}

TEST_CASE("plain = lp(inner) || lp(sig), split strictly") {
  Bytes inner = {1, 2, 3}, sig = {9, 9};
  Bytes plain = SealedPlaintext(inner, sig);
  ByteView i, s;
  REQUIRE(SplitSealedPlaintext(plain, i, s));
  CHECK(Bytes(i.begin(), i.end()) == inner);
  CHECK(Bytes(s.begin(), s.end()) == sig);

  Bytes trailing = plain;
  trailing.push_back(0);
  CHECK_FALSE(SplitSealedPlaintext(trailing, i, s));
  Bytes short_plain(plain.begin(), plain.end() - 1);
  CHECK_FALSE(SplitSealedPlaintext(short_plain, i, s));
  CHECK_FALSE(SplitSealedPlaintext(Bytes{}, i, s));
}

TEST_CASE("channel-unknown tbs") {
  Bytes mid(16, 1), cid(16, 2), about(16, 3);
  Bytes tbs = ChannelUnknownTbs({"f", "r", "s", mid, 5, cid, about, 6});
  CHECK(ToHex(tbs) == HexOf("nodelink/1 channel-unknown") + Lp(HexOf("f")) + Lp(HexOf("r")) +
                          Lp(HexOf("s")) + Lp(ToHex(mid)) + "0000000000000005" + Lp(ToHex(cid)) +
                          Lp(ToHex(about)) + "0000000000000006");
}

TEST_CASE("secagg params digest and pairwise derivation inputs") {
  std::vector<std::string> parties = {"a", "b", "c"};
  Bytes digest = SecaggParamsDigest({"res", "ctx", 2, 64, 10, parties});
  std::string in = HexOf("nodelink/1 secagg-params") + Lp(HexOf("res")) + Lp(HexOf("ctx")) +
                   "00000002" "00000040" "0000000a" "00000003" + Lp(HexOf("a")) + Lp(HexOf("b")) +
                   Lp(HexOf("c"));
  CHECK(ToHex(digest) == ToHex(core::Sha256(*core::FromHex(in))));

  CHECK(ToHex(PairwiseKeySalt("res", "ctx")) ==
        ToHex(core::Sha256(*core::FromHex(Lp(HexOf("res")) + Lp(HexOf("ctx"))))));
  CHECK(PairwiseKeyInfo("b", "a") == PairwiseKeyInfo("a", "b"));
  CHECK(ToHex(PairwiseKeyInfo("b", "a")) ==
        HexOf("nodelink/1 pairwise") + Lp(HexOf("a")) + Lp(HexOf("b")));
}

}  // namespace
}  // namespace nodelink::messages
