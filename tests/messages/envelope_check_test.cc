#include <doctest/doctest.h>

#include "core/random.h"
#include "messages/envelope_check.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::messages {
namespace {

v1::Envelope ValidSealed() {
  v1::Envelope e;
  e.set_version(1);
  e.set_federation("fed");
  e.set_sender("node-a");
  e.set_recipient("node-b");
  e.set_message_id(std::string(16, 'm'));
  e.set_sent_at_ms(1700000000000);
  v1::Sealed* s = e.mutable_sealed();
  s->set_channel_id(std::string(16, 'c'));
  s->set_salt(std::string(32, 's'));
  s->set_nonce(std::string(12, 'n'));
  s->set_ciphertext(std::string(40, 'x'));
  s->set_seq(1);
  return e;
}

v1::Envelope ValidSetup() {
  v1::Envelope e = ValidSealed();
  v1::SetupRequest* r = e.mutable_setup_request();
  r->set_setup_id(std::string(16, 'i'));
  r->set_ephemeral_key(std::string(65, '\x04'));
  r->add_cert_chain("der");
  r->set_signature("sig");
  return e;
}

TEST_CASE("well-formed envelopes pass") {
  CHECK(CheckWellFormed(ValidSealed()).ok());
  CHECK(CheckWellFormed(ValidSetup()).ok());
}

TEST_CASE("each defect of check 1 is MALFORMED with a detail") {
  auto expect_malformed = [](v1::Envelope e) {
    EnvelopeVerdict v = CheckWellFormed(e);
    CHECK(v.code == ReceiveCode::kMalformed);
    CHECK_FALSE(v.detail.empty());
    return v;
  };
  {
    v1::Envelope e = ValidSealed();
    e.set_version(2);
    CHECK(expect_malformed(e).unsupported_version);
  }
  { v1::Envelope e = ValidSealed(); e.set_federation("bad fed"); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.set_sender(""); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.set_recipient(std::string(65, 'r')); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.set_message_id(std::string(15, 'm')); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.set_sent_at_ms(0); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.mutable_sealed()->set_seq(0); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.mutable_sealed()->set_salt("short"); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.mutable_sealed()->set_nonce(std::string(16, 'n')); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.mutable_sealed()->set_channel_id(""); expect_malformed(e); }
  { v1::Envelope e = ValidSealed(); e.clear_body(); expect_malformed(e); }
  { v1::Envelope e = ValidSetup(); e.mutable_setup_request()->set_setup_id(""); expect_malformed(e); }
  { v1::Envelope e = ValidSetup(); e.mutable_setup_request()->set_ephemeral_key(std::string(33, '\x02')); expect_malformed(e); }
  {
    v1::Envelope e = ValidSealed();
    v1::ChannelUnknown* c = e.mutable_channel_unknown();
    c->set_channel_id(std::string(16, 'c'));
    c->set_about_message_id(std::string(3, 'a'));
    expect_malformed(e);
  }
}

TEST_CASE("defects that later checks own are not check 1's") {
  // A short ciphertext fails decryption (check 8); a bad signature fails verification.
  v1::Envelope e = ValidSealed();
  e.mutable_sealed()->set_ciphertext("");
  CHECK(CheckWellFormed(e).ok());
  v1::Envelope s = ValidSetup();
  s.mutable_setup_request()->set_signature(std::string(500, 'x'));
  CHECK(CheckWellFormed(s).ok());
}

}  // namespace
}  // namespace nodelink::messages
