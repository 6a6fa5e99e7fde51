// nodelink-researcher: runs secure aggregation over a set of parties (PROTOCOL.md section 8) as
// the researcher participant, prints the outcome, and exits.
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nodelink/node.hpp"
#include "participant_flags.h"
#include "process_guard.h"

namespace {

using nlohmann::json;

std::vector<std::string> SplitParties(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int Report(const absl::StatusOr<nodelink::AggregationResult>& result, bool as_json,
           const char* what) {
  if (!result.ok()) {
    std::cerr << "nodelink-researcher: " << result.status().message() << "\n";
    return 1;
  }
  const nodelink::AggregationResult& r = *result;
  if (as_json) {
    json out = {{"context_id", r.context_id}, {"parties", r.parties},
                {"ok", r.ok()},               {"failed", r.failed},
                {"elapsed_ms", r.elapsed_ms}};
    if (!r.sum.empty()) out["sum"] = r.sum;
    std::cout << out.dump(2) << "\n";
  } else if (r.ok()) {
    std::cout << what << " over " << r.parties.size() << " parties (context " << r.context_id
              << ", " << r.elapsed_ms << " ms)";
    if (!r.sum.empty()) {
      std::cout << ":\nsum:";
      for (const std::string& v : r.sum) std::cout << " " << v;
    }
    std::cout << "\n";
  } else {
    std::cerr << what << " failed (context " << r.context_id << "); parties that did not "
              << "deliver:\n";
    for (const auto& [party, why] : r.failed) std::cerr << "  " << party << ": " << why << "\n";
  }
  return r.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  nodelink::tools::DisableCoreDumps();
  nodelink::tools::LogToStderr();
  CLI::App app{
      "nodelink-researcher: runs secure aggregation over parties connected to the hub. The "
      "researcher learns the sum, never a single party's input.\n"
      "The store passphrase comes from --passphrase-file, --key-file or NODELINK_PASSPHRASE."};
  app.require_subcommand(1);
  app.fallthrough();  // common flags may follow the subcommand
  nodelink::tools::ParticipantFlags flags;
  nodelink::tools::AddParticipantFlags(app, flags);
  std::string parties;
  double timeout_s = 30;
  bool as_json = false;
  app.add_option("--timeout", timeout_s, "seconds to wait for every party (default 30)")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_flag("--json", as_json, "print the outcome as JSON");

  uint32_t modulus_bits = 64, elements = 1;
  CLI::App* sum = app.add_subcommand(
      "secure-sum", "Sum the parties' secret inputs (additive secret sharing over Z_(2^k)).");
  sum->add_option("--parties", parties, "comma-separated node ids, e.g. lab-1,lab-2,lab-3")
      ->required();
  sum->add_option("--modulus-bits", modulus_bits, "k of the ring Z_(2^k) (default 64)")
      ->check(CLI::Range(8, 4096));
  sum->add_option("--elements", elements, "length of each party's input vector (default 1)")
      ->check(CLI::Range(1, 1 << 24));
  CLI::App* keys = app.add_subcommand(
      "pairwise-keys", "Have every pair of parties agree a key for a fresh context.");
  keys->add_option("--parties", parties, "comma-separated node ids")->required();

  bool should_exit = false;
  int rc = nodelink::tools::ParseOrExit(app, argc, argv, should_exit);
  if (should_exit) return rc;
  if (*sum && modulus_bits % 8 != 0) {
    std::cerr << "nodelink-researcher: --modulus-bits must be a multiple of 8\n";
    return 2;
  }
  auto options = nodelink::tools::OptionsFromFlags(flags);
  if (!options.ok()) {
    std::cerr << "nodelink-researcher: " << options.status().message() << "\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  auto node = nodelink::Node::Start(std::move(*options));
  if (!node.ok()) {
    std::cerr << "nodelink-researcher: " << node.status().message() << "\n";
    return 1;
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  if (!(*node)->WaitConnected(timeout)) {
    std::cerr << "nodelink-researcher: could not reach the hub at " << flags.hub << " within "
              << timeout_s << " s: TLS handshake failed or hub unreachable; check the hub "
              << "address, this store's certificate and the federation CA\n";
    return 1;
  }
  // Progress goes to stderr in every mode: stdout carries only the result (--json parses it).
  auto progress = [](const std::string& party, bool ok, const std::string& why, size_t done,
                     size_t total) {
    std::cerr << "  [" << done << "/" << total << "] " << party
              << (ok ? " answered" : " failed: " + why) << "\n";
  };
  std::vector<std::string> list = SplitParties(parties);
  std::cerr << "nodelink-researcher: connected to the hub; asking " << list.size()
            << " parties for " << (*sum ? "a secure sum" : "pairwise keys") << "\n";
  int status;
  if (*sum) {
    nodelink::SecureSumRequest request;
    request.parties = list;
    request.modulus_bits = modulus_bits;
    request.element_count = elements;
    request.timeout = timeout;
    request.on_answer = progress;
    status = Report((*node)->SecureSum(request), as_json, "secure sum");
  } else {
    status = Report((*node)->PairwiseKeys(list, timeout, progress), as_json, "pairwise keys");
  }
  (*node)->Stop();
  return status;
}
