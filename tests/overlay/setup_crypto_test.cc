#include <doctest/doctest.h>

#include "core/random.h"
#include "core/sha256.h"
#include "nodelink/v1/hub.pb.h"
#include "overlay/setup_crypto.h"

namespace nodelink::overlay {
namespace {

TEST_CASE("both sides derive the same channel secret; a different transcript gives another") {
  auto a = core::EcPrivateKey::Generate().value();
  auto b = core::EcPrivateKey::Generate().value();
  v1::Envelope request;
  request.set_version(1);
  request.set_federation("f");
  request.set_sender("a");
  request.set_recipient("b");
  request.set_message_id(ToString(core::RandomBytes(16)));
  request.set_sent_at_ms(1);
  request.mutable_setup_request()->set_setup_id(ToString(core::RandomBytes(16)));
  request.mutable_setup_request()->set_ephemeral_key(ToString(a.PublicKey().Point()));
  v1::Envelope reply;
  reply.set_version(1);
  reply.set_federation("f");
  reply.set_sender("b");
  reply.set_recipient("a");
  reply.set_message_id(ToString(core::RandomBytes(16)));
  reply.set_sent_at_ms(2);
  reply.mutable_setup_reply()->set_setup_id(request.setup_request().setup_id());
  reply.mutable_setup_reply()->set_ephemeral_key(ToString(b.PublicKey().Point()));

  Bytes req_tbs = RequestTbsOf(request);
  Bytes rep_tbs = ReplyTbsOf(reply, core::Sha256(req_tbs));
  auto cs_a = DeriveChannelSecret(a, b.PublicKey(), rep_tbs);
  auto cs_b = DeriveChannelSecret(b, a.PublicKey(), rep_tbs);
  REQUIRE(cs_a.ok());
  REQUIRE(cs_b.ok());
  CHECK(cs_a->size() == 32);
  CHECK(core::ConstantTimeEquals(*cs_a, *cs_b));

  reply.set_sent_at_ms(3);
  auto cs_other = DeriveChannelSecret(a, b.PublicKey(), ReplyTbsOf(reply, core::Sha256(req_tbs)));
  REQUIRE(cs_other.ok());
  CHECK_FALSE(core::ConstantTimeEquals(*cs_a, *cs_other));
}

}  // namespace
}  // namespace nodelink::overlay
