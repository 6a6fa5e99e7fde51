// The end-to-end benchmark: a fresh federation in a temporary directory, a real nodelink-hub
// (TLS; durable SQLite queue, then the in-memory queue for comparison) and participants as
// separate processes (this binary's `participant` roles, and nodelink-node daemons for the
// secure sums). Prints a table, or JSON with --json.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nodelink::bench {

struct BenchOptions {
  std::vector<size_t> sizes = {64, 4096, size_t{1} << 20, size_t{15} << 20};
  double scale = 1.0;                         // multiplies every message count
  std::vector<int> secure_sum_parties = {3, 10};
  // Which parts run: "throughput", "round-trips", "secure-sum" (all by default).
  std::vector<std::string> parts = {"throughput", "round-trips", "secure-sum"};
  bool json = false;
  bool keep = false;  // keep the temporary directory
};

// 0 when every measurement ran; 1 if any failed (the output says which).
int RunBench(const BenchOptions& options);

}  // namespace nodelink::bench
