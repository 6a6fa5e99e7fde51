// Each refusal of PROTOCOL.md section 8 that a SecaggSetupRequest can earn.
#include <doctest/doctest.h>

#include <set>

#include "core/ec.h"
#include "secagg/pairwise.h"
#include "secagg/params.h"

namespace nodelink::secagg {
namespace {

PartyPolicy Policy() {
  PartyPolicy p;
  p.self = "b";
  p.is_researcher = [](std::string_view id) { return id == "res"; };
  p.is_approved_co_party = [](std::string_view id) { return id == "a" || id == "c" || id == "d"; };
  return p;
}

v1::SecaggSetupRequest Request() {
  v1::SecaggSetupRequest r;
  r.set_context_id("ctx-1");
  r.set_scheme(v1::ADDITIVE_SHARING);
  for (const char* p : {"a", "b", "c"}) r.add_parties(p);
  r.set_modulus_bits(64);
  r.set_element_count(10);
  return r;
}

std::string CodeOf(const v1::SecaggSetupRequest& r, std::string_view requester = "res",
                   PartyPolicy policy = Policy()) {
  auto refusal = CheckSetupRequest(r, requester, policy);
  return refusal ? std::string(refusal->code) : "OK";
}

TEST_CASE("a valid request is accepted") { CHECK(CodeOf(Request()) == "OK"); }

TEST_CASE("NOT_AUTHORIZED: a non-researcher asking") { CHECK(CodeOf(Request(), "a") == "NOT_AUTHORIZED"); }

TEST_CASE("BAD_PARTIES: short, unsorted, duplicate, missing self, requester, unapproved") {
  auto r = Request();
  r.clear_parties();
  r.add_parties("a");
  r.add_parties("b");
  CHECK(CodeOf(r) == "BAD_PARTIES");  // fewer than 3
  PartyPolicy two = Policy();
  two.min_parties = 2;
  CHECK(CodeOf(r, "res", two) == "OK");  // allowed only by explicit configuration

  r = Request();
  r.clear_parties();
  for (const char* p : {"b", "a", "c"}) r.add_parties(p);
  CHECK(CodeOf(r) == "BAD_PARTIES");
  r.clear_parties();
  for (const char* p : {"a", "b", "b", "c"}) r.add_parties(p);
  CHECK(CodeOf(r) == "BAD_PARTIES");
  r.clear_parties();
  for (const char* p : {"a", "c", "d"}) r.add_parties(p);
  CHECK(CodeOf(r) == "BAD_PARTIES");  // omits the receiver
  r.clear_parties();
  for (const char* p : {"a", "b", "res"}) r.add_parties(p);
  CHECK(CodeOf(r) == "BAD_PARTIES");  // includes the requester
  PartyPolicy approves_res = Policy();  // so that only the requester rule can refuse it
  approves_res.is_approved_co_party = [](std::string_view) { return true; };
  CHECK(CodeOf(r, "res", approves_res) == "BAD_PARTIES");
  CHECK(CodeOf(r, "c", [] {
          PartyPolicy p = Policy();
          p.is_researcher = [](std::string_view) { return true; };
          p.is_approved_co_party = [](std::string_view) { return true; };
          return p;
        }()) == "OK");  // the same list from a requester outside it is fine
  r.clear_parties();
  for (const char* p : {"a", "b", "x"}) r.add_parties(p);
  CHECK(CodeOf(r) == "BAD_PARTIES");  // x is not approved
}

TEST_CASE("MALFORMED and UNSUPPORTED parameters, oversize vectors") {
  auto r = Request();
  r.set_modulus_bits(12);
  CHECK(CodeOf(r) == "MALFORMED");
  r = Request();
  r.set_element_count(0);
  CHECK(CodeOf(r) == "MALFORMED");
  r = Request();
  r.set_modulus_bits(4096);
  r.set_element_count(33000);  // 16.9 MB > 16 MiB - 4096
  CHECK(CodeOf(r) == "MALFORMED");
  r.set_element_count(32000);
  CHECK(CodeOf(r) == "OK");
  r = Request();
  r.set_context_id("bad id");
  CHECK(CodeOf(r) == "MALFORMED");
  r = Request();
  r.set_scheme(v1::SCHEME_UNSPECIFIED);
  CHECK(CodeOf(r) == "UNSUPPORTED");
}

TEST_CASE("the params digest changes with every parameter") {
  std::set<Bytes> digests;
  auto r = Request();
  digests.insert(ParamsDigestOf("res", r));
  digests.insert(ParamsDigestOf("res2", r));
  r.set_context_id("ctx-2");
  digests.insert(ParamsDigestOf("res", r));
  r.set_modulus_bits(128);
  digests.insert(ParamsDigestOf("res", r));
  r.set_element_count(11);
  digests.insert(ParamsDigestOf("res", r));
  r.add_parties("d");
  digests.insert(ParamsDigestOf("res", r));
  r.set_scheme(v1::PAIRWISE_KEYS);
  digests.insert(ParamsDigestOf("res", r));
  CHECK(digests.size() == 7);
}

TEST_CASE("pairwise keys agree on both sides and differ per pair and context") {
  auto a = core::EcPrivateKey::Generate().value();
  auto b = core::EcPrivateKey::Generate().value();
  auto ab = DerivePairwiseKey(a, b.PublicKey().Point(), "res", "ctx", "a", "b").value();
  auto ba = DerivePairwiseKey(b, a.PublicKey().Point(), "res", "ctx", "b", "a").value();
  CHECK(core::ConstantTimeEquals(ab, ba));
  auto other = DerivePairwiseKey(a, b.PublicKey().Point(), "res", "ctx2", "a", "b").value();
  CHECK_FALSE(core::ConstantTimeEquals(ab, other));
  Bytes bad = b.PublicKey().Point();
  bad[10] ^= 1;
  CHECK_FALSE(DerivePairwiseKey(a, bad, "res", "ctx", "a", "b").ok());
}

TEST_CASE("min_parties never goes below 2, whatever the configuration says") {
  PartyPolicy loose = Policy();
  loose.min_parties = 0;
  auto r = Request();
  r.clear_parties();
  r.add_parties("b");  // the receiver alone: its reply would be its input
  CHECK(CodeOf(r, "res", loose) == "BAD_PARTIES");
}

TEST_CASE("the input digest is keyed and independent of the modulus and of spelling") {
  core::SecretBytes key = core::SecretBytes::CopyOf(Bytes(32, 1));
  core::SecretBytes other_key = core::SecretBytes::CopyOf(Bytes(32, 2));
  Bytes d = InputDigestOf(key, {"7", "-3", "0"});
  CHECK(InputDigestOf(key, {"007", "-03", "-0"}) == d);
  CHECK(InputDigestOf(key, {"7", "-3"}) != d);
  CHECK(InputDigestOf(key, {"7", "3", "0"}) != d);
  CHECK(InputDigestOf(other_key, {"7", "-3", "0"}) != d);
  // No boundary ambiguity between values.
  CHECK(InputDigestOf(key, {"12", "3"}) != InputDigestOf(key, {"1", "23"}));
}

}  // namespace
}  // namespace nodelink::secagg
