// A hub that misbehaves on purpose (--inject-faults): what the recipient's application sees is
// still each message at most once, never an altered one, and every fault is accounted for by a
// counter on one side or the other.
#include <signal.h>

#include <algorithm>
#include <set>

#include "process/metrics_scrape.h"
#include "stream_rig.h"

namespace nodelink::testing {
namespace {

#ifndef NODELINK_FAULT_STREAM_COUNT
#define NODELINK_FAULT_STREAM_COUNT 2000
#endif
constexpr uint64_t kCount = NODELINK_FAULT_STREAM_COUNT;

std::vector<std::string> FaultyHub(const std::string& spec) {
  return {"--inject-faults", spec, "--metrics-listen", "127.0.0.1:0"};
}

uint64_t HubMetric(const StreamRig& rig, const std::string& name) {
  return process::MetricValue(process::ScrapeMetrics(rig.fed.metrics_port()), name);
}
uint64_t Injected(const StreamRig& rig, const std::string& kind) {
  return HubMetric(rig, "nodelink_hub_faults_injected_total{kind=\"" + kind + "\"}");
}

TEST_CASE("hostile hub: duplicated, reordered and delayed messages are processed exactly once") {
  StreamRig rig(FaultyHub("duplicate=0.05,reorder=0.05,delay=0.03,delay-ms=40,seed=11"));
  rig.fed.StartHub();
  auto receiver = rig.Start(kReceiver, kCount + 1);  // runs until SIGTERM
  auto sender = rig.Start(kSender, kCount);
  StreamRig::Finish(*sender);
  // Every copy has been refused once the receiver acknowledged it: the hub sees a receipt that
  // matches nothing (the first copy's receipt deleted the envelope).
  REQUIRE(process::WaitFor(
      [&] {
        return rig.Logged(kReceiver).size() == kCount &&
               HubMetric(rig, "nodelink_hub_delivered_unmatched_total") ==
                   Injected(rig, "duplicate");
      },
      kStreamWait, std::chrono::milliseconds(50)));
  receiver->Signal(SIGTERM);
  const nlohmann::json counters = StreamRig::Finish(*receiver);

  const std::vector<uint64_t> got = rig.Logged(kReceiver);
  REQUIRE(got.size() == kCount);
  CHECK(std::set<uint64_t>(got.begin(), got.end()).size() == kCount);
  CHECK(*std::max_element(got.begin(), got.end()) == kCount - 1);
  size_t out_of_order = 0;
  for (size_t i = 1; i < got.size(); ++i) out_of_order += got[i] < got[i - 1];

  const uint64_t duplicated = Injected(rig, "duplicate");
  MESSAGE(kCount << " messages; injected " << duplicated << " duplicates, "
                  << Injected(rig, "reorder") << " reorders, " << Injected(rig, "delay")
                  << " delays; " << out_of_order << " arrived out of order");
  CHECK(duplicated > 0);
  CHECK(Injected(rig, "reorder") > 0);
  CHECK(Injected(rig, "delay") > 0);
  CHECK(out_of_order > 0);
  // Each copy was refused by the anti-replay window, acknowledged, and never handed on.
  CHECK(Refused(counters, "DUPLICATE") == duplicated);
}

TEST_CASE("hostile hub: dropped and corrupted messages never reach the application") {
  StreamRig rig(FaultyHub("drop=0.03,corrupt=0.03,seed=5"));
  rig.fed.StartHub();
  auto receiver = rig.Start(kReceiver, kCount);
  auto sender = rig.Start(kSender, kCount);
  StreamRig::Finish(*sender);  // every Send was accepted: the losses happen after the hub
  // Everything the hub did not drop or corrupt arrives, and every corrupted one was refused
  // (acknowledged, so the hub's queue is empty).
  REQUIRE(process::WaitFor(
      [&] {
        return rig.Logged(kReceiver).size() + Injected(rig, "drop") + Injected(rig, "corrupt") ==
                   kCount &&
               HubMetric(rig, "nodelink_hub_queued_items") == 0;
      },
      kStreamWait, std::chrono::milliseconds(50)));
  receiver->Signal(SIGTERM);
  const nlohmann::json counters = StreamRig::Finish(*receiver);

  const std::vector<uint64_t> got = rig.Logged(kReceiver);
  const uint64_t dropped = Injected(rig, "drop"), corrupted = Injected(rig, "corrupt");
  MESSAGE(kCount << " messages; injected " << dropped << " drops, " << corrupted
                  << " corruptions; " << got.size() << " delivered");
  CHECK(dropped > 0);
  CHECK(corrupted > 0);
  CHECK(got.size() == kCount - dropped - corrupted);
  CHECK(std::set<uint64_t>(got.begin(), got.end()).size() == got.size());
  CHECK(std::is_sorted(got.begin(), got.end()));  // nothing reordered here
  // A flipped ciphertext bit fails the AEAD tag; the message is refused, not delivered altered.
  CHECK(Refused(counters, "DECRYPT_FAILED") == corrupted);
}

}  // namespace
}  // namespace nodelink::testing
