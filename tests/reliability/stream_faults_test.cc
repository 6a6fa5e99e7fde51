// "Every message accepted by the hub is processed exactly once by the recipient's application,
// in order per sender": a numbered stream between two participant processes through a real TLS
// hub, while the test kills the hub, kills either end, or cuts the network.
#include <signal.h>

#include "process/tcp_proxy.h"
#include "stream_rig.h"

namespace nodelink::testing {
namespace {

#ifndef NODELINK_STREAM_COUNT
#define NODELINK_STREAM_COUNT 10000
#endif
constexpr uint64_t kCount = NODELINK_STREAM_COUNT;

TEST_CASE("stream: the hub killed with SIGKILL mid-stream and restarted loses nothing") {
  StreamRig rig;
  rig.fed.StartHub();
  auto receiver = rig.Start(kReceiver, kCount);
  auto sender = rig.Start(kSender, kCount);
  for (uint64_t at : {kCount / 3, 2 * kCount / 3}) {
    REQUIRE(rig.WaitLogged(kReceiver, at));
    rig.fed.hub().Kill();
    rig.fed.StartHub();  // same port, same data directory
  }
  rig.FinishExactlyOnceInOrder(*sender, *receiver, kCount);
}

TEST_CASE("stream: either end killed with SIGKILL and restarted with its store loses nothing") {
  StreamRig rig;
  rig.fed.StartHub();
  auto receiver = rig.Start(kReceiver, kCount, kCount / 3);
  auto sender = rig.Start(kSender, kCount, 2 * kCount / 3);
  // The receiver dies a third of the way, while the sender goes on (its messages queue at the
  // hub); then the sender dies too, and both come back.
  REQUIRE(receiver->Wait(kStreamWait) == 128 + SIGKILL);
  receiver = rig.Start(kReceiver, kCount);
  REQUIRE(sender->Wait(kStreamWait) == 128 + SIGKILL);
  CHECK(rig.Logged(kSender).size() == 2 * kCount / 3);
  sender = rig.Start(kSender, kCount);
  rig.FinishExactlyOnceInOrder(*sender, *receiver, kCount);
}

TEST_CASE("stream: the network cut between both ends and the hub, then restored, loses nothing") {
  StreamRig rig;
  rig.fed.StartHub();
  auto proxy = process::TcpProxy::Start(rig.fed.hub_port());
  REQUIRE(proxy != nullptr);
  const std::string via = "127.0.0.1:" + std::to_string(proxy->port());
  auto receiver = rig.Start(kReceiver, kCount, 0, via);
  auto sender = rig.Start(kSender, kCount, 0, via);
  for (uint64_t at : {kCount / 4, kCount / 2, 3 * kCount / 4}) {
    REQUIRE(rig.WaitLogged(kReceiver, at));
    const size_t refused_before = proxy->refused();
    proxy->Cut();
    // Down until both ends have tried to reconnect and been refused.
    REQUIRE(process::WaitFor([&] { return proxy->refused() >= refused_before + 2; },
                             kStreamWait));
    proxy->Restore();
  }
  rig.FinishExactlyOnceInOrder(*sender, *receiver, kCount);
  CHECK(proxy->connections() >= 8);  // 2 at first, 2 after each cut
}

}  // namespace
}  // namespace nodelink::testing
