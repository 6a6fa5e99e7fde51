// The channel manager against real stores and certificates, driven deterministically through an
// in-process relay: setup rules of PROTOCOL.md section 5, sealing and replay of section 6, every
// row of the section 7 table, renewal, restart and lost-state recovery.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <thread>

#include "core/random.h"
#include "core/sha256.h"
#include "keys/seal_contexts.h"
#include "keys/store_bodies.h"
#include "messages/canonical.h"
#include "messages/protobuf_log.h"
#include "overlay/sealing.h"
#include "overlay/setup_crypto.h"
#include "overlay_fixture.h"

namespace nodelink::overlay {
namespace {

using messages::ReceiveCode;
using testing::BodyFiles;
using testing::CountPrefixed;
using testing::Federation;
using testing::Relay;
using testing::TestNode;

// The channel secret a node holds with `peer`, read back from its store (tests only).
core::SecretBytes SecretOf(TestNode& node, const std::string& peer, const Bytes& channel_id) {
  JournalSnapshot snapshot = node.journal->Load().value();
  for (ChannelRow& row : snapshot.channels) {
    if (row.peer == peer && row.channel_id == channel_id && row.secret) return std::move(*row.secret);
  }
  FAIL("no live channel in the store");
  return {};
}

// Delivers the one setup request queued for node-b and takes node-b's one reply to `initiator`.
std::pair<v1::Envelope, v1::Envelope> AnsweredSetup(Relay& relay, const std::string& initiator) {
  auto request = relay.Take("node-b");
  REQUIRE(request.size() == 1);
  CHECK(relay.Deliver(request[0]) == ReceiveCode::kOk);
  auto reply = relay.Take(initiator);
  REQUIRE(reply.size() == 1);
  return {request[0], reply[0]};
}

// `bytes` with the bit 0 of byte `at` flipped.
std::string Flipped(std::string bytes, size_t at) {
  bytes[at] ^= 1;
  return bytes;
}

// `from`'s first message to `to`, with the setup delivered one envelope at a time: returns the
// request and the reply, for a test to deliver again.
struct DeliveredSetup {
  v1::Envelope request, reply;
};
DeliveredSetup SetUpStepByStep(Federation& fed, TestNode& from, TestNode& to,
                               const std::string& payload) {
  fed.SendApp(from, to.id, payload);
  std::vector<v1::Envelope> request = fed.relay().Take(to.id, 1);
  REQUIRE(request.size() == 1);
  REQUIRE(request[0].has_setup_request());
  CHECK(fed.relay().Deliver(request[0]) == ReceiveCode::kOk);
  std::vector<v1::Envelope> reply = fed.relay().Take(from.id, 1);
  REQUIRE(reply.size() == 1);
  CHECK(fed.relay().Deliver(reply[0]) == ReceiveCode::kOk);
  fed.relay().Pump();
  return {request[0], reply[0]};
}

std::vector<ChannelInfo> ChannelsWith(TestNode& node, const std::string& peer) {
  std::vector<ChannelInfo> out;
  for (const ChannelInfo& c : node.manager->Channels()) {
    if (c.peer == peer) out.push_back(c);
  }
  return out;
}

v1::Envelope SealedTo(TestNode& from, const std::string& to, const Bytes& channel_id,
                      const core::SecretBytes& secret, uint64_t seq, const Bytes& inner,
                      uint64_t now, const core::EcPrivateKey& signer) {
  v1::Envelope e;
  e.set_version(1);
  e.set_federation(testing::kFederation);
  e.set_sender(from.id);
  e.set_recipient(to);
  e.set_message_id(ToString(core::RandomBytes(16)));
  e.set_sent_at_ms(now);
  v1::Sealed* s = e.mutable_sealed();
  s->set_channel_id(ToString(channel_id));
  s->set_salt(ToString(core::RandomBytes(32)));
  s->set_nonce(ToString(core::RandomBytes(12)));
  s->set_seq(seq);
  s->set_ciphertext(ToString(SealInner(SealedHeaderOf(e), secret, signer, inner).value()));
  return e;
}

Bytes AppInner(const std::string& payload) {
  v1::Inner inner;
  inner.mutable_app()->set_payload(payload);
  return ToBytes(inner.SerializeAsString());
}

TEST_CASE("one round trip sets up a channel; messages arrive in order") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  auto r1 = fed.SendApp(a, "node-b", "one");
  auto r2 = fed.SendApp(a, "node-b", "two");
  // Nothing sealed yet: both wait for the one setup.
  CHECK(fed.relay().Queued("node-b").size() == 1);
  CHECK(fed.relay().Queued("node-b")[0].has_setup_request());
  fed.relay().Pump();
  CHECK(r1->Wait().ok());
  CHECK(r2->Wait().ok());
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"one", "two"});
  CHECK(a.manager->counters().setups_started == 1);
  CHECK(a.manager->counters().setups_completed == 1);
  CHECK(b.manager->counters().setups_answered == 1);

  auto a_channels = ChannelsWith(a, "node-b");
  auto b_channels = ChannelsWith(b, "node-a");
  REQUIRE(a_channels.size() == 1);
  REQUIRE(b_channels.size() == 1);
  CHECK(a_channels[0].channel_id == b_channels[0].channel_id);
  CHECK(a_channels[0].initiator);
  CHECK_FALSE(b_channels[0].initiator);
  CHECK(core::ConstantTimeEquals(SecretOf(a, "node-b", a_channels[0].channel_id),
                                 SecretOf(b, "node-a", a_channels[0].channel_id)));

  // The other direction uses the same channel (the one B answered), no second setup.
  auto back = fed.SendApp(b, "node-a", "reply");
  fed.relay().Pump();
  CHECK(back->Wait().ok());
  CHECK(a.ReceivedPayloads() == std::vector<std::string>{"reply"});
  CHECK(b.manager->counters().setups_started == 0);
}

TEST_CASE("at light load OpenAlone commits on the caller's thread: the outcome is in on return") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  auto setup = fed.SendApp(a, "node-b", "first");
  fed.relay().Pump();
  REQUIRE(setup->Wait().ok());
  auto sent = fed.SendApp(a, "node-b", "second");
  std::vector<v1::Envelope> queued = fed.relay().Take("node-b", 1);
  REQUIRE(queued.size() == 1);
  b.manager->Flush();  // nothing of b's own still committing: light load
  std::optional<OpenOutcome> outcome;
  std::thread::id ran_on;
  b.manager->OpenAlone(queued[0], [&](OpenOutcome o) {
    ran_on = std::this_thread::get_id();
    outcome = std::move(o);
  });
  REQUIRE(outcome.has_value());  // no other thread involved, no wait
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(outcome->code == messages::ReceiveCode::kOk);
  REQUIRE(outcome->message.has_value());
  CHECK(outcome->message->inner.app().payload() == "second");
  b.manager->Complete(outcome->message->inbox_id);
  CHECK(sent->Wait().ok());
}

TEST_CASE("concurrent sends to a new peer share one setup") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) fed.SendApp(a, "node-b", std::to_string(t * 100 + i));
    });
  }
  for (auto& t : threads) t.join();
  CHECK(fed.relay().Queued("node-b").size() == 1);
  fed.relay().Pump();
  CHECK(b.ReceivedPayloads().size() == 40);
  CHECK(a.manager->counters().setups_started == 1);
}

TEST_CASE("simultaneous setups resolve by the smaller-id rule into one channel") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");  // smaller
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "from a");
  fed.SendApp(b, "node-a", "from b");
  auto to_b = fed.relay().Take("node-b");
  auto to_a = fed.relay().Take("node-a");
  REQUIRE(to_b.size() == 1);
  REQUIRE(to_a.size() == 1);
  REQUIRE(to_b[0].has_setup_request());
  REQUIRE(to_a[0].has_setup_request());
  // Cross deliveries in a fixed order: A sees B's request first, then B sees A's.
  CHECK(fed.relay().Deliver(to_a[0]) == ReceiveCode::kOk);  // ignored by the smaller side
  CHECK(a.manager->counters().simultaneous_ignored == 1);
  CHECK(fed.relay().Deliver(to_b[0]) == ReceiveCode::kOk);  // answered; B abandons its own
  CHECK(b.manager->counters().simultaneous_abandoned == 1);
  fed.relay().Pump();
  CHECK(a.ReceivedPayloads() == std::vector<std::string>{"from b"});
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"from a"});
  auto a_channels = ChannelsWith(a, "node-b");
  auto b_channels = ChannelsWith(b, "node-a");
  REQUIRE(a_channels.size() == 1);
  REQUIRE(b_channels.size() == 1);
  CHECK(a_channels[0].channel_id == b_channels[0].channel_id);
  CHECK(a_channels[0].channel_id == ToBytes(to_b[0].setup_request().setup_id()));
}

TEST_CASE("simultaneous setups, the other delivery order") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "from a");
  fed.SendApp(b, "node-a", "from b");
  auto to_b = fed.relay().Take("node-b");
  auto to_a = fed.relay().Take("node-a");
  CHECK(fed.relay().Deliver(to_b[0]) == ReceiveCode::kOk);  // B answers, abandons its own
  CHECK(fed.relay().Deliver(to_a[0]) == ReceiveCode::kOk);  // A ignores B's
  fed.relay().Pump();
  CHECK(a.ReceivedPayloads() == std::vector<std::string>{"from b"});
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"from a"});
  CHECK(ChannelsWith(a, "node-b").size() == 1);
  CHECK(ChannelsWith(b, "node-a").size() == 1);
}

TEST_CASE("a reply that matches no pending setup is dropped as UNMATCHED_REPLY") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "x");
  fed.relay().Pump();
  // Replay B's reply: the request is no longer pending.
  auto envelopes = fed.relay().Queued("node-a");
  CHECK(envelopes.empty());
  v1::Envelope forged;
  forged.set_version(1);
  forged.set_federation(testing::kFederation);
  forged.set_sender("node-b");
  forged.set_recipient("node-a");
  forged.set_message_id(ToString(core::RandomBytes(16)));
  forged.set_sent_at_ms(fed.clock().NowMs());
  v1::SetupReply* r = forged.mutable_setup_reply();
  r->set_setup_id(ToString(core::RandomBytes(16)));
  r->set_ephemeral_key(ToString(core::EcPrivateKey::Generate()->PublicKey().Point()));
  r->add_cert_chain("x");
  r->set_signature("y");
  const auto unmatched = [&] {
    return a.manager->counters().received[static_cast<size_t>(ReceiveCode::kUnmatchedReply)];
  };
  CHECK(unmatched() == 0);
  CHECK(fed.relay().Deliver(forged) == ReceiveCode::kUnmatchedReply);
  CHECK(unmatched() == 1);  // dropped, and counted
  CHECK(ChannelsWith(a, "node-b").size() == 1);  // the live channel is untouched
  (void)b;
}

TEST_CASE("receiving checks of PROTOCOL section 7, row by row") {
  messages::SilenceProtobufLogs();
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  TestNode& c = fed.AddNode("node-c");
  fed.SendApp(a, "node-b", "hello");
  fed.relay().Pump();
  REQUIRE(b.ReceivedPayloads().size() == 1);
  Bytes channel_id = ChannelsWith(a, "node-b")[0].channel_id;
  core::SecretBytes secret = SecretOf(a, "node-b", channel_id);
  core::EcPrivateKey a_key = std::move(a.store->LoadIdentity()->key);
  uint64_t now = fed.clock().NowMs();
  uint64_t seq = 100;
  auto sealed = [&](const Bytes& inner) {
    return SealedTo(a, "node-b", channel_id, secret, seq++, inner, now, a_key);
  };
  Relay& relay = fed.relay();
  size_t opened_directly_misrouted = 0;  // Open() calls that bypass the relay's record

  SUBCASE("1 MALFORMED") {
    v1::Envelope e = sealed(AppInner("x"));
    e.mutable_sealed()->set_nonce(std::string(16, 'n'));
    CHECK(relay.Deliver(e) == ReceiveCode::kMalformed);
    e = sealed(AppInner("x"));
    e.mutable_sealed()->set_seq(0);
    CHECK(relay.Deliver(e) == ReceiveCode::kMalformed);
    e = sealed(AppInner("x"));
    e.set_version(2);
    CHECK(relay.Deliver(e) == ReceiveCode::kMalformed);
  }
  SUBCASE("2 MISROUTED: a message for another recipient is refused before anything else") {
    v1::Envelope e = SealedTo(a, "node-c", channel_id, secret, 1, AppInner("x"), now, a_key);
    ++opened_directly_misrouted;
    std::mutex m;
    std::condition_variable cv;
    std::optional<OpenOutcome> out;
    b.manager->Open(e, [&](OpenOutcome o) {
      std::lock_guard lock(m);
      out = std::move(o);
      cv.notify_all();
    });
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return out.has_value(); }));
    CHECK(out->code == ReceiveCode::kMisrouted);
    CHECK_FALSE(out->message.has_value());
  }
  SUBCASE("3 WRONG_FEDERATION") {
    v1::Envelope e = sealed(AppInner("x"));
    e.set_federation("other-fed");
    CHECK(relay.Deliver(e) == ReceiveCode::kWrongFederation);
  }
  SUBCASE("4 STALE: from the future and from too long ago") {
    uint64_t skew = 600'000, ttl = 3'600'000;
    CHECK(relay.Deliver(SealedTo(a, "node-b", channel_id, secret, seq++, AppInner("x"),
                                 now + skew + 1, a_key)) == ReceiveCode::kStale);
    CHECK(relay.Deliver(SealedTo(a, "node-b", channel_id, secret, seq++, AppInner("x"),
                                 now - ttl - skew - 1, a_key)) == ReceiveCode::kStale);
    CHECK(relay.Deliver(SealedTo(a, "node-b", channel_id, secret, seq++, AppInner("ok"),
                                 now + skew, a_key)) == ReceiveCode::kOk);
  }
  SUBCASE("5 DUPLICATE and below-window STALE; a forgery cannot block the real message") {
    v1::Envelope e = sealed(AppInner("once"));
    v1::Envelope forged = e;
    std::string ct = forged.sealed().ciphertext();
    ct[0] ^= 1;
    forged.mutable_sealed()->set_ciphertext(ct);
    CHECK(relay.Deliver(forged) == ReceiveCode::kDecryptFailed);  // does not mark the number
    CHECK(relay.Deliver(e) == ReceiveCode::kOk);
    CHECK(relay.Deliver(e) == ReceiveCode::kDuplicate);
    seq = 5000;
    CHECK(relay.Deliver(sealed(AppInner("far ahead"))) == ReceiveCode::kOk);
    seq = 50;  // 4950 below the highest: outside the 1024 window
    CHECK(relay.Deliver(sealed(AppInner("too old"))) == ReceiveCode::kStale);
    CHECK(b.ReceivedPayloads() == std::vector<std::string>{"hello", "once", "far ahead"});
  }
  SUBCASE("5 DUPLICATE setup request is answered again with the stored reply") {
    TestNode& d = fed.AddNode("node-d");
    fed.SendApp(d, "node-b", "from d");
    auto [request, first_reply] = AnsweredSetup(relay, "node-d");
    CHECK(relay.Deliver(request) == ReceiveCode::kDuplicate);
    auto second_reply = relay.Take("node-d");
    REQUIRE(second_reply.size() == 1);
    CHECK(second_reply[0].SerializeAsString() == first_reply.SerializeAsString());
  }
  SUBCASE("6 BAD_CERTIFICATE: another CA, expired") {
    Federation other;  // another CA, same federation name
    TestNode& x = other.AddNode("node-x");
    other.SendApp(x, "node-b", "x");
    auto request = other.relay().Take("node-b");
    REQUIRE(request.size() == 1);
    CHECK(relay.Deliver(request[0]) == ReceiveCode::kBadCertificate);

    TestNode& e = fed.AddNode("node-e");
    fed.clock().Advance(91ull * 24 * 3600 * 1000);  // past the 90-day certificate
    fed.SendApp(e, "node-b", "late");
    auto late = relay.Take("node-b");
    REQUIRE(late.size() == 1);
    CHECK(relay.Deliver(late[0]) == ReceiveCode::kBadCertificate);
  }
  SUBCASE("6 KEY_CHANGED: a known node id with another key (TOFU)") {
    // node-a recreated with a new identity key but a valid certificate for the same id.
    Federation& f = fed;
    TestNode& imposter = f.AddNode("node-z");  // a store we can bend: issue a cert for node-a
    auto key = core::EcPrivateKey::Generate().value();
    Bytes csr = keys::CreateCsr(key, testing::kFederation, "node-a").value();
    Bytes cert = keys::IssueParticipantCert(csr, f.ca().credentials, testing::kFederation,
                                            "node-a", f.clock())
                     .value();
    v1::Envelope e;
    e.set_version(1);
    e.set_federation(testing::kFederation);
    e.set_sender("node-a");
    e.set_recipient("node-b");
    e.set_message_id(ToString(core::RandomBytes(16)));
    e.set_sent_at_ms(now);
    auto eph = core::EcPrivateKey::Generate().value();
    v1::SetupRequest* r = e.mutable_setup_request();
    r->set_setup_id(ToString(core::RandomBytes(16)));
    r->set_ephemeral_key(ToString(eph.PublicKey().Point()));
    r->add_cert_chain(ToString(cert));
    r->set_signature(ToString(key.SignSha256(RequestTbsOf(e)).value()));
    CHECK(relay.Deliver(e) == ReceiveCode::kKeyChanged);
    (void)imposter;
  }
  SUBCASE("6 MALFORMED ephemeral key and BAD_SIGNATURE on a setup") {
    fed.SendApp(c, "node-b", "from c");
    auto request = relay.Take("node-b");
    REQUIRE(request.size() == 1);
    v1::Envelope bad_point = request[0];
    std::string point = bad_point.setup_request().ephemeral_key();
    point[64] ^= 1;
    bad_point.mutable_setup_request()->set_ephemeral_key(point);
    CHECK(relay.Deliver(bad_point) == ReceiveCode::kMalformed);
    v1::Envelope bad_sig = request[0];
    std::string sig = bad_sig.setup_request().signature();
    sig[sig.size() - 2] ^= 1;
    bad_sig.mutable_setup_request()->set_signature(sig);
    CHECK(relay.Deliver(bad_sig) == ReceiveCode::kBadSignature);
    // Neither forgery blocked the real request.
    CHECK(relay.Deliver(request[0]) == ReceiveCode::kOk);
  }
  SUBCASE("6 on the initiator: a forged SetupReply is refused and the real one still completes") {
    fed.SendApp(c, "node-b", "from c");
    const v1::Envelope reply = AnsweredSetup(relay, "node-c").second;
    REQUIRE(reply.has_setup_reply());
    v1::Envelope bad_sig = reply;
    const std::string& sig = reply.setup_reply().signature();
    bad_sig.mutable_setup_reply()->set_signature(Flipped(sig, sig.size() - 2));
    CHECK(relay.Deliver(bad_sig) == ReceiveCode::kBadSignature);
    v1::Envelope bad_point = reply;
    bad_point.mutable_setup_reply()->set_ephemeral_key(
        Flipped(reply.setup_reply().ephemeral_key(), 64));
    CHECK(relay.Deliver(bad_point) == ReceiveCode::kMalformed);
    // A reply signed by a certificate of another CA for the same node id.
    Federation other;
    TestNode& fake_b = other.AddNode("node-b");
    v1::Envelope foreign = reply;
    foreign.mutable_setup_reply()->clear_cert_chain();
    auto fake_identity = fake_b.store->LoadIdentity();
    REQUIRE(fake_identity.ok());
    for (const Bytes& der : fake_identity->cert_chain_der) {
      foreign.mutable_setup_reply()->add_cert_chain(ToString(der));
    }
    CHECK(relay.Deliver(foreign) == ReceiveCode::kBadCertificate);
    CHECK(ChannelsWith(c, "node-b").empty());  // no forgery made a channel
    // The real reply completes the setup, and the message that waited for it goes out.
    CHECK(relay.Deliver(reply) == ReceiveCode::kOk);
    relay.Pump();
    CHECK(ChannelsWith(c, "node-b").size() == 1);
    auto payloads = b.ReceivedPayloads();
    CHECK(std::find(payloads.begin(), payloads.end(), "from c") != payloads.end());
  }
  SUBCASE("7 UNKNOWN_CHANNEL answers with a signed ChannelUnknown, at most once a minute") {
    Bytes unknown = core::RandomBytes(16);
    CHECK(relay.Deliver(SealedTo(a, "node-b", unknown, secret, 1, AppInner("x"), now, a_key)) ==
          ReceiveCode::kUnknownChannel);
    CHECK(relay.Deliver(SealedTo(a, "node-b", unknown, secret, 2, AppInner("x"), now, a_key)) ==
          ReceiveCode::kUnknownChannel);
    auto back = relay.Take("node-a");
    REQUIRE(back.size() == 1);
    REQUIRE(back[0].has_channel_unknown());
    CHECK(back[0].channel_unknown().about_seq() == 1);
    // A ignores it: it names no message A sent.
    CHECK(relay.Deliver(back[0]) == ReceiveCode::kOk);
    CHECK(a.manager->counters().channel_unknown_ignored == 1);
  }
  SUBCASE("8 DECRYPT_FAILED: tampered ciphertext, header or wrong secret") {
    v1::Envelope e = sealed(AppInner("x"));
    e.set_sent_at_ms(now - 1);
    CHECK(relay.Deliver(e) == ReceiveCode::kDecryptFailed);
    core::SecretBytes wrong = core::RandomSecret(32);
    CHECK(relay.Deliver(SealedTo(a, "node-b", channel_id, wrong, seq++, AppInner("x"), now,
                                 a_key)) == ReceiveCode::kDecryptFailed);
  }
  SUBCASE("9 MALFORMED plain") {
    v1::Envelope e = sealed(AppInner("x"));
    Bytes plain = messages::SealedPlaintext(AppInner("x"), Bytes(70, 1));
    plain.push_back(0);
    e.mutable_sealed()->set_ciphertext(
        ToString(EncryptSealedPlaintext(SealedHeaderOf(e), secret, plain).value()));
    CHECK(relay.Deliver(e) == ReceiveCode::kMalformed);
  }
  SUBCASE("10 BAD_SIGNATURE: signed by another key than the channel's") {
    core::EcPrivateKey other = core::EcPrivateKey::Generate().value();
    CHECK(relay.Deliver(SealedTo(a, "node-b", channel_id, secret, seq++, AppInner("x"), now,
                                 other)) == ReceiveCode::kBadSignature);
  }
  SUBCASE("11 UNKNOWN_TYPE") {
    v1::Inner no_body;
    no_body.set_request_id("r");
    CHECK(relay.Deliver(sealed(ToBytes(no_body.SerializeAsString()))) ==
          ReceiveCode::kUnknownType);
    CHECK(relay.Deliver(sealed(Bytes{0x0a, 0x01, 0xff})) == ReceiveCode::kUnknownType);
  }
  // Every outcome was counted under its own code, and nothing else was.
  ChannelCounters counters = b.manager->counters();
  std::lock_guard lock(b.mu);
  for (size_t code = 0; code < counters.received.size(); ++code) {
    size_t expected = static_cast<size_t>(
        std::count(b.outcomes.begin(), b.outcomes.end(), static_cast<ReceiveCode>(code)));
    if (static_cast<ReceiveCode>(code) == ReceiveCode::kMisrouted) {
      expected += opened_directly_misrouted;
    }
    CHECK_MESSAGE(counters.received[code] == expected,
                  "code " << messages::ReceiveCodeName(static_cast<ReceiveCode>(code)));
  }
}

TEST_CASE("RATE_LIMITED: beyond two live channels, one answered setup per 10 seconds") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "1");
  fed.relay().Pump();
  a.manager->Renew("node-b");
  fed.relay().Pump();
  CHECK(ChannelsWith(b, "node-a").size() == 2);
  a.manager->Renew("node-b");
  auto request = fed.relay().Take("node-b");
  REQUIRE(request.size() == 1);
  CHECK(fed.relay().Deliver(request[0]) == ReceiveCode::kRateLimited);
  fed.clock().Advance(10'001);
  a.manager->Maintain();
  // The pending request is still pending on A; a new delivery of the same request is accepted
  // now that the interval passed.
  CHECK(fed.relay().Deliver(request[0]) == ReceiveCode::kOk);
}

TEST_CASE("a restart reuses no sequence number and keeps the replay window") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  for (int i = 0; i < 3; ++i) fed.SendApp(a, "node-b", "m" + std::to_string(i));
  fed.relay().Pump();
  REQUIRE(b.ReceivedPayloads().size() == 3);
  std::vector<v1::Envelope> captured;
  fed.SendApp(a, "node-b", "captured");
  captured = fed.relay().Take("node-b");
  REQUIRE(captured.size() == 1);
  CHECK(fed.relay().Deliver(captured[0]) == ReceiveCode::kOk);
  a.manager->Flush();
  b.manager->Flush();
  uint64_t seq_before = captured[0].sealed().seq();

  fed.Restart(a);
  fed.Restart(b);
  fed.SendApp(a, "node-b", "after restart");
  auto after = fed.relay().Take("node-b", 1);  // after the new block of numbers is durable
  REQUIRE(after.size() == 1);
  REQUIRE(after[0].has_sealed());  // same channel, no new setup
  CHECK(after[0].sealed().seq() > seq_before + 1000);  // skipped past the reserved block
  CHECK(fed.relay().Deliver(after[0]) == ReceiveCode::kOk);
  CHECK(fed.relay().Deliver(captured[0]) == ReceiveCode::kDuplicate);  // window survived
}

TEST_CASE("lost state: ChannelUnknown, a new channel and the resend, without the app noticing") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "before");
  fed.relay().Pump();
  REQUIRE(b.ReceivedPayloads() == std::vector<std::string>{"before"});

  // B loses its channels (e.g. a store restored from a backup, channels dropped).
  fed.DropChannels(b);

  auto sent = fed.SendApp(a, "node-b", "lost then found");
  fed.relay().Pump();
  CHECK(sent->Wait().ok());
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"before", "lost then found"});
  CHECK(b.CountOutcome(ReceiveCode::kUnknownChannel) == 1);
  CHECK(a.manager->counters().channel_unknown_acted == 1);
  CHECK(a.manager->counters().messages_resent == 1);
  CHECK(a.manager->counters().setups_started == 2);

  // A replayed ChannelUnknown does nothing (duplicate), and messages keep flowing.
  fed.SendApp(a, "node-b", "steady");
  fed.relay().Pump();
  CHECK(b.ReceivedPayloads().back() == "steady");
}

TEST_CASE("lost state: a message sent while a ChannelUnknown is handled is not lost") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "before");
  fed.relay().Pump();
  fed.DropChannels(b);
  fed.SendApp(a, "node-b", "lost");
  std::vector<v1::Envelope> lost = fed.relay().Take("node-b", 1);
  REQUIRE(lost.size() == 1);
  CHECK(fed.relay().Deliver(lost[0]) == ReceiveCode::kUnknownChannel);
  std::vector<v1::Envelope> unknown = fed.relay().Take("node-a", 1);
  REQUIRE(unknown.size() == 1);
  REQUIRE(unknown[0].has_channel_unknown());

  // The app sends again just after A read the sent copies to resend. Sealed on the reported
  // channel then, "during" would be missed by that read and reach B on a channel B does not
  // know, and B says ChannelUnknown only once a minute per channel: it would never arrive.
  std::promise<void> reading, sent_during;
  a.journal->after_sent_on_channel = [&] {
    reading.set_value();
    sent_during.get_future().wait();
  };
  std::thread handler([&] { CHECK(fed.relay().Deliver(unknown[0]) == ReceiveCode::kOk); });
  reading.get_future().wait();
  auto during = fed.SendApp(a, "node-b", "during");
  sent_during.set_value();
  handler.join();
  a.journal->after_sent_on_channel = nullptr;

  fed.relay().Pump();
  CHECK(during->Wait().ok());
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"before", "lost", "during"});
  CHECK(a.manager->counters().messages_resent == 1);
}

TEST_CASE("lost state: a peer restored from a backup answers an old setup again; A sets up anew") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  const std::string backup = b.store_path + ".backup";
  fed.Close(b);
  std::filesystem::copy_file(b.store_path, backup);  // from before any channel
  fed.StartManager(b);

  const DeliveredSetup first = SetUpStepByStep(fed, a, b, "first");
  REQUIRE(b.ReceivedPayloads() == std::vector<std::string>{"first"});
  fed.Restart(a);  // what follows needs only what A's store keeps
  // The same reply again is a replay (known by its digest), not a second answer: the channel stays.
  CHECK(fed.relay().Deliver(first.reply) == ReceiveCode::kDuplicate);
  CHECK(a.manager->counters().setups_answered_again == 0);

  // B comes back from the backup, and the hub hands it A's request again (B's receipt for it was
  // lost when B stopped). B does not remember it: it answers again, same channel id, another
  // secret, so what A still seals on that channel fails to decrypt at B and no ChannelUnknown
  // would ever come back.
  fed.Close(b);
  std::filesystem::copy_file(backup, b.store_path,
                             std::filesystem::copy_options::overwrite_existing);
  fed.StartManager(b);
  CHECK(fed.relay().Deliver(first.request) == ReceiveCode::kOk);
  std::vector<v1::Envelope> again = fed.relay().Take("node-a", 1);
  REQUIRE(again.size() == 1);
  REQUIRE(again[0].has_setup_reply());
  auto after = fed.SendApp(a, "node-b", "after restore");  // sealed on the old channel
  std::vector<v1::Envelope> on_old = fed.relay().Take("node-b", 1);
  REQUIRE(on_old.size() == 1);
  CHECK(fed.relay().Deliver(on_old[0]) == ReceiveCode::kDecryptFailed);

  // The second answer is verified against the request A keeps the digest of: A drops the channel,
  // sets up a new one and resends what it sent on the old one (at least once, as after any loss).
  CHECK(fed.relay().Deliver(again[0]) == ReceiveCode::kUnmatchedReply);
  CHECK(a.manager->counters().setups_answered_again == 1);
  CHECK(a.manager->counters().messages_resent == 2);
  fed.relay().Pump();
  CHECK(after->Wait().ok());
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"first", "first", "after restore"});
  CHECK(fed.relay().Deliver(again[0]) == ReceiveCode::kUnmatchedReply);  // acted on once: the
  CHECK(ChannelsWith(a, "node-b").size() == 2);  // channel it names is a tombstone now
  CHECK(a.manager->counters().setups_answered_again == 1);

  // And B's messages reach A on the new channel.
  fed.SendApp(b, "node-a", "reply");
  fed.relay().Pump();
  CHECK(a.ReceivedPayloads() == std::vector<std::string>{"reply"});
}

TEST_CASE("a forged second answer, or the first reply replayed late, changes nothing") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  const DeliveredSetup first = SetUpStepByStep(fed, a, fed.AddNode("node-b"), "x");
  const Bytes channel_id = ChannelsWith(a, "node-b")[0].channel_id;

  SUBCASE("forged: a hub knows the channel id (it is the setup id) but cannot sign for B") {
    v1::Envelope forged = first.reply;
    forged.set_message_id(ToString(core::RandomBytes(16)));
    forged.mutable_setup_reply()->set_ephemeral_key(
        ToString(core::EcPrivateKey::Generate()->PublicKey().Point()));
    CHECK(fed.relay().Deliver(forged) == ReceiveCode::kUnmatchedReply);  // signature fails
  }
  SUBCASE("replayed once the setup log forgot it: a hub shortens the TTL, then lengthens it") {
    a.manager->SetQueueTtl(60'000);
    fed.clock().Advance(60'000 + 2 * messages::kMaxClockSkewMs + 1);
    a.manager->Maintain();  // the setup log keeps TTL + 2 x skew: the reply's entry is gone
    a.manager->SetQueueTtl(7 * 24 * 3'600'000ULL);
    CHECK(fed.relay().Deliver(first.reply) == ReceiveCode::kDuplicate);  // known by its digest
  }
  CHECK(a.manager->counters().setups_answered_again == 0);
  REQUIRE(ChannelsWith(a, "node-b").size() == 1);
  CHECK(ChannelsWith(a, "node-b")[0].live);
  CHECK(ChannelsWith(a, "node-b")[0].channel_id == channel_id);
  auto sent = fed.SendApp(a, "node-b", "y");
  fed.relay().Pump();
  CHECK(sent->Wait().ok());
  CHECK(a.manager->counters().setups_started == 1);
}

TEST_CASE("renewal by age: the smaller id renews; the old secret is erased after use of the new") {
  ChannelManagerOptions options;
  options.max_channel_age_ms = 60'000;
  Federation fed(options);
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "1");
  fed.relay().Pump();
  Bytes first = ChannelsWith(a, "node-b")[0].channel_id;
  core::SecretBytes first_secret = SecretOf(b, "node-a", first);

  fed.clock().Advance(61'000);
  fed.SendApp(a, "node-b", "2");  // still on the old channel; a renewal setup starts
  fed.relay().Pump();
  CHECK(a.manager->counters().renewals == 1);
  fed.SendApp(a, "node-b", "3");  // on the new channel
  fed.relay().Pump();
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"1", "2", "3"});
  // B opened a message on the newer channel: the older secret is erased, a tombstone remains.
  auto b_channels = ChannelsWith(b, "node-a");
  REQUIRE(b_channels.size() == 2);
  size_t live = 0;
  for (const ChannelInfo& c : b_channels) live += c.live ? 1 : 0;
  CHECK(live == 1);
  b.manager->Flush();
  // Neither the old secret nor its sealed form is left in B's store files.
  for (const std::string& path : {b.store_path, b.store_path + "-wal"}) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string needle = ToString(first_secret.ExposeSecret());
    CHECK(bytes.find(needle) == std::string::npos);
  }
  // Rows 5 and 7 on the tombstone: a number it marked is a DUPLICATE; an unmarked one finds no
  // live channel, and B answers ChannelUnknown.
  core::EcPrivateKey a_key = std::move(a.store->LoadIdentity()->key);
  const uint64_t now = fed.clock().NowMs();
  CHECK(fed.relay().Deliver(SealedTo(a, "node-b", first, first_secret, 1, AppInner("again"), now,
                                     a_key)) == ReceiveCode::kDuplicate);
  CHECK(fed.relay().Deliver(SealedTo(a, "node-b", first, first_secret, 99, AppInner("late"), now,
                                     a_key)) == ReceiveCode::kUnknownChannel);
  auto answers = fed.relay().Take("node-a");
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].has_channel_unknown());
  CHECK(b.ReceivedPayloads() == std::vector<std::string>{"1", "2", "3"});
  // The tombstone goes after TTL + 2 x skew.
  fed.clock().Advance(3'600'000 + 2 * 600'000 + 1);
  b.manager->Maintain();
  CHECK(ChannelsWith(b, "node-a").size() == 1);
}

TEST_CASE("a setup that gets no reply fails its waiters after the timeout") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  fed.AddNode("node-b");
  auto r = fed.SendApp(a, "node-b", "nobody home");
  CHECK_FALSE(r->Done());
  fed.clock().Advance(29'000);
  a.manager->Maintain();
  CHECK_FALSE(r->Done());
  fed.clock().Advance(2'000);
  a.manager->Maintain();
  absl::Status s = r->Wait();
  CHECK(s.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(std::string(s.message()).find("node-b") != std::string::npos);
}

TEST_CASE("a setup the hub rejects fails its waiters at once with the hub's code") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  fed.relay().RejectTo("node-q", v1::UNKNOWN_DESTINATION);
  auto r = fed.SendApp(a, "node-q", "x");
  absl::Status s = r->Wait();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(std::string(s.message()).find("UNKNOWN_DESTINATION") != std::string::npos);
}

TEST_CASE("inbox rows survive a restart until completed") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  fed.SendApp(a, "node-b", "first");
  auto queued = [&] {
    fed.relay().Pump();
    return b.ReceivedPayloads().size();
  }();
  REQUIRE(queued == 1);
  // Open one without completing it, as a crash before the handler finished would leave it.
  fed.SendApp(a, "node-b", "unfinished");
  auto env = fed.relay().Take("node-b");
  REQUIRE(env.size() == 1);
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  b.manager->Open(env[0], [&](OpenOutcome o) {
    CHECK(o.code == ReceiveCode::kOk);
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
  }
  fed.Restart(b);
  auto pending = b.manager->PendingInbox();
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].inner.app().payload() == "unfinished");
  b.manager->Complete(pending[0].inbox_id);
  fed.Restart(b);
  CHECK(b.manager->PendingInbox().empty());
}

TEST_CASE("large messages: sealed body files, erased with their rows, read after a key change") {
  Federation fed;
  TestNode& a = fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  std::string large;
  for (int i = 0; large.size() < keys::kBodyFileMinBytes + 1000; ++i) {
    large += "plaintext-marker-" + std::to_string(i) + ";";
  }
  fed.SendApp(a, "node-b", "channel up");
  fed.relay().Pump();
  REQUIRE(b.ReceivedPayloads().size() == 1);
  fed.SendApp(a, "node-b", "small");
  fed.SendApp(a, "node-b", large);
  auto envs = fed.relay().Take("node-b", 2);
  REQUIRE(envs.size() == 2);
  // Opened and not completed, as a crash before the handler finished leaves them.
  std::atomic<int> opened{0};
  for (v1::Envelope& e : envs) b.manager->Open(e, [&](OpenOutcome) { opened += 1; });
  b.manager->Flush();
  a.manager->Flush();
  REQUIRE(opened.load() == static_cast<int>(envs.size()));
  auto b_files = BodyFiles(b);
  auto a_files = BodyFiles(a);
  CHECK(CountPrefixed(b_files, "inbox-") == 1);  // the small one stays in its row
  CHECK(CountPrefixed(a_files, "sent-") == 1);
  for (const auto& files : {a_files, b_files}) {
    for (const auto& [name, bytes] : files) {
      CAPTURE(name);
      CHECK(bytes.find("plaintext-marker-") == std::string::npos);
    }
  }

  // A store-key change re-seals the row's key; the body file is not touched and still opens.
  REQUIRE(b.store
              ->ChangeStoreKey(keys::StoreKeySource::Passphrase(Federation::Passphrase()),
                               keys::KdfProfile::kMinimal)
              .ok());
  CHECK(BodyFiles(b) == b_files);
  // A file no row names (a commit that failed, a crash before an unlink) goes at the next load.
  { std::ofstream(b.store_path + "-bodies/inbox-999999") << "left over"; }
  fed.Restart(b);
  CHECK(BodyFiles(b) == b_files);
  auto pending = b.manager->PendingInbox();
  REQUIRE(pending.size() == 2);
  CHECK(pending[1].inner.app().payload() == large);
  for (const InboxMessage& m : pending) b.manager->Complete(m.inbox_id);
  b.manager->Flush();
  CHECK(BodyFiles(b).empty());

  // A body file lost with the machine costs that message only: the node still starts.
  fed.SendApp(a, "node-b", large + "lost");
  auto lost = fed.relay().Take("node-b", 1);
  REQUIRE(lost.size() == 1);
  b.manager->Open(lost[0], [](OpenOutcome) {});
  b.manager->Flush();
  REQUIRE(CountPrefixed(BodyFiles(b), "inbox-") == 1);
  for (const auto& [name, bytes] : BodyFiles(b)) {
    std::filesystem::remove(b.store_path + "-bodies/" + name);
  }
  fed.Restart(b);
  CHECK(b.manager->PendingInbox().empty());

  // The sender's copy serves a resend after the receiver lost its channels.
  fed.DropChannels(b);
  fed.SendApp(a, "node-b", large + "again");
  fed.relay().Pump();
  CHECK(b.ReceivedPayloads().back() == large + "again");
  CHECK(a.manager->counters().messages_resent == 1);
}

TEST_CASE(
    "answered log: a request never answered skips the store; answers are found, also "
    "after a restart, until they expire") {
  Federation fed;
  TestNode& b = fed.AddNode("node-b");
  const uint64_t now = fed.clock().NowMs();
  v1::Inner reply;
  reply.set_request_id("r1");
  reply.mutable_app()->set_payload("the answer");
  b.manager->RecordAnswered("node-a", "r1", reply, now + 60'000);

  // Found before its record commits is not promised (the router then runs the handler again);
  // after, it is, from the store.
  b.manager->Flush();
  auto found = b.manager->FindAnswered("node-a", "r1", now);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->app().payload() == "the answer");
  CHECK(b.manager->counters().answered_lookups_skipped == 0);
  auto never = b.manager->FindAnswered("node-a", "r2", now);
  REQUIRE(never.ok());
  CHECK_FALSE(never->has_value());
  CHECK(b.manager->counters().answered_lookups == 2);
  CHECK(b.manager->counters().answered_lookups_skipped == 1);

  // A restart loads the filter from the store: the answer is still found, the rest skipped.
  fed.Restart(b);
  found = b.manager->FindAnswered("node-a", "r1", now);
  REQUIRE(found.ok());
  CHECK(found->has_value());
  CHECK_FALSE(b.manager->FindAnswered("node-a", "r2", now)->has_value());
  CHECK(b.manager->counters().answered_lookups_skipped == 1);

  // Maintenance passes keep it until it expires (the first one moves the loaded generation to
  // the older slot).
  for (int i = 0; i < 3; ++i) {
    fed.clock().Advance(20'000 - 1);
    b.manager->Maintain();
    CHECK(b.manager->FindAnswered("node-a", "r1", fed.clock().NowMs())->has_value());
  }
  // Expired: the store refuses it, and once the filter's margin has passed too, the filter.
  fed.clock().Advance(10);
  b.manager->Maintain();
  CHECK_FALSE(b.manager->FindAnswered("node-a", "r1", fed.clock().NowMs())->has_value());
  const uint64_t skipped = b.manager->counters().answered_lookups_skipped;
  fed.clock().Advance(AnsweredFilter::kKeepAfterExpiryMs);
  b.manager->Maintain();
  CHECK_FALSE(b.manager->FindAnswered("node-a", "r1", fed.clock().NowMs())->has_value());
  CHECK(b.manager->counters().answered_lookups_skipped == skipped + 1);
}

}  // namespace
}  // namespace nodelink::overlay
