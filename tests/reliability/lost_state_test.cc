// A participant whose state is lost or wrong: a wiped store with a new key (refused under TOFU),
// a store restored from before its channels (recovered through ChannelUnknown), and a wall clock
// two hours ahead (STALE, said at both ends).
#include <signal.h>

#include <cstdlib>
#include <filesystem>

#include "stream_rig.h"

namespace nodelink::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A node's counters in one line, for a failure to say where a message went.
std::string Counters(Node& node) {
  const NodeStats s = node.Stats();
  std::string out = node.id() + ": sealed " + std::to_string(s.messages_sealed) + ", opened " +
                    std::to_string(s.messages_opened) + ", setups " +
                    std::to_string(s.setups_started) + "/" + std::to_string(s.setups_answered) +
                    ", channels " + std::to_string(s.channels_live) + ", ChannelUnknown sent " +
                    std::to_string(s.channel_unknown_sent) + " acted " +
                    std::to_string(s.channel_unknown_acted) + ", setups answered again " +
                    std::to_string(s.setups_answered_again) + ", resent " +
                    std::to_string(s.messages_resent) + ", refused";
  for (const auto& [code, n] : s.refused) out += " " + code + "=" + std::to_string(n);
  return out;
}

void Exchange(Node& from, Node& to, const std::string& tag) {
  REQUIRE(from.Send(to.id(), {"note", tag, tag, ""}).ok());
  auto got = to.Receive(from.id(), tag, seconds(30));
  REQUIRE_MESSAGE(got.ok(), got.status() << "; " << Counters(from) << "; " << Counters(to));
  CHECK(got->message.payload == tag);
}

uint64_t RefusedCount(Node& node, const std::string& code) {
  const auto refused = node.Stats().refused;
  auto it = refused.find(code);
  return it == refused.end() ? 0 : it->second;
}

TEST_CASE("lost state: a participant back with a new key is refused KEY_CHANGED under TOFU") {
  TestFederation fed({"lab-a", "lab-b"});
  fed.StartHub();
  Node& a = fed.StartNode("lab-a");
  Exchange(fed.StartNode("lab-b"), a, "first");  // lab-a pins lab-b's key
  fed.StopNode("lab-b");

  // lab-b's store is lost; a new one with a new key and a valid certificate for the same id.
  std::filesystem::remove(fed.StorePath("lab-b"));
  fed.CreateStore("lab-b");
  Node& b = fed.StartNode("lab-b");
  absl::Status sent = b.Send("lab-a", {"note", "again", "again", ""}, seconds(3));
  CHECK_FALSE(sent.ok());
  REQUIRE(process::WaitFor([&] { return RefusedCount(a, "KEY_CHANGED") > 0; }, seconds(30)));
  CHECK_FALSE(a.Receive("lab-b", "again", milliseconds(200)).ok());
}

TEST_CASE("lost state: the same identity without its channels recovers through ChannelUnknown") {
  TestFederation fed({"lab-a", "lab-b"});
  const std::string before = fed.StorePath("lab-b") + ".before-channels";
  std::filesystem::copy_file(fed.StorePath("lab-b"), before);
  fed.StartHub();
  Node& a = fed.StartNode("lab-a");
  Exchange(a, fed.StartNode("lab-b"), "first");
  fed.StopNode("lab-b");
  // Read before lab-b is back: recovery may start as soon as it connects (second route below).
  const uint64_t setups_before = a.Stats().setups_started;

  // lab-b comes back from a backup taken before the channel existed: same key, no channel.
  std::filesystem::copy_file(before, fed.StorePath("lab-b"),
                             std::filesystem::copy_options::overwrite_existing);
  Node& b = fed.StartNode("lab-b");
  // Sealed on the old channel, answered ChannelUnknown, resent on a new one. Or, when the hub
  // hands lab-b lab-a's old SetupRequest again (lab-b's receipt for it was lost as it stopped),
  // lab-b answers it a second time and lab-a sets up anew on that answer.
  Exchange(a, b, "after-restore");
  CHECK(a.Stats().setups_started > setups_before);
  CHECK(a.Stats().channel_unknown_acted + a.Stats().setups_answered_again >= 1);
  CHECK(a.Stats().messages_resent >= 1);
  Exchange(b, a, "reply");
}

TEST_CASE("lost state: a clock two hours ahead is refused STALE and said at both ends") {
  StreamRig rig;
  rig.fed.StartHub();
  auto receiver = rig.Start(kReceiver, 1);
  std::string asan_options = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  auto sender = process::Subprocess::Start(
      {BinPath("nodelink_stream_peer"), "send", "--store", rig.fed.StorePath(kSender),
       "--passphrase-file", rig.fed.Passphrase(), "--hub", rig.fed.HubAddress(), "--peer",
       kReceiver, "--count", "1", "--log", rig.LogOf(kSender), "--timeout-ms", "3000"},
      {"LD_PRELOAD=" + BinPath("libnodelink_clock_shift.so"), "NODELINK_TEST_CLOCK_SHIFT_S=7200",
       // The shim comes before the sanitizer runtime in that build.
       "ASAN_OPTIONS=" + asan_options + ":verify_asan_link_order=0"},
      /*capture_stderr=*/true);
  REQUIRE(sender != nullptr);
  CHECK(sender->WaitForStderrLine("clock differs from the hub's", seconds(60)).has_value());
  CHECK(sender->Wait(seconds(60)) == 1);  // its message never got a channel
  auto failed = sender->WaitForStderrLine("sending 0 failed", seconds(5));
  REQUIRE(failed.has_value());
  CHECK_MESSAGE(failed->find("clock is 120 minutes ahead of the hub's") != std::string::npos,
                *failed);
  CHECK(rig.Logged(kSender).empty());

  receiver->Signal(SIGTERM);
  const nlohmann::json counters = StreamRig::Finish(*receiver);
  CHECK(Refused(counters, "STALE") > 0);
  CHECK(rig.Logged(kReceiver).empty());
}

}  // namespace
}  // namespace nodelink::testing
