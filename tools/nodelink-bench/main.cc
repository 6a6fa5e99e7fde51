// nodelink-bench: the end-to-end benchmark (bench_run.h), and the participant roles it starts
// as separate processes (roles.h). Results and the command lines that produced them are kept in
// bench/RESULTS.md.
#include <CLI/CLI.hpp>

#include "bench_run.h"
#include "participant_flags.h"
#include "roles.h"

int main(int argc, char** argv) {
  CLI::App app{
      "nodelink-bench: measures nodelink end to end on this machine. Creates a federation in a "
      "temporary directory, starts a real nodelink-hub (TLS; the durable SQLite queue, then the "
      "in-memory queue) and participants as separate processes, and reports sealed messages per "
      "second and MB/s per payload size beside a raw relay of the same sizes (same hub and TLS, "
      "no crypto, no durability: the transport ceiling) and the crypto floor (Seal and Open "
      "timed in-process); request/reply round-trip latency at light and saturating load; and "
      "secure-sum time over N cold node daemons. Benchmarks, not tests: nothing is asserted."};
  nodelink::bench::BenchOptions options;
  app.add_option("--sizes", options.sizes,
                 "payload sizes in bytes, comma-separated (default 64,4096,1048576,15728640; at "
                 "most 16 MiB less the envelope's own bytes)")
      ->delimiter(',')
      ->check(CLI::Range(size_t{1}, size_t{16} << 20));
  app.add_option("--scale", options.scale,
                 "multiplies every message count (default 1; 0.05 for a quick look)")
      ->check(CLI::Range(0.001, 100.0));
  app.add_option("--secure-sum", options.secure_sum_parties,
                 "party counts of the secure sums, comma-separated (default 3,10)")
      ->delimiter(',')
      ->check(CLI::Range(3, 100));
  app.add_option("--only", options.parts,
                 "run only these parts, comma-separated: throughput, round-trips, secure-sum")
      ->delimiter(',')
      ->check(CLI::IsMember({"throughput", "round-trips", "secure-sum"}));
  app.add_flag("--json", options.json, "print the results as JSON (progress stays on stderr)");
  app.add_flag("--keep", options.keep, "keep the temporary directory");

  nodelink::bench::RoleFlags role;
  CLI::App* participant =
      app.add_subcommand("participant", "one participant role; nodelink-bench starts these itself");
  nodelink::tools::AddParticipantFlags(*participant, role.participant);
  participant->add_option("--role", role.role, "what this participant does")
      ->required()
      ->check(CLI::IsMember(nodelink::bench::RoleNames()));
  participant->add_option("--peer", role.peer, "the other participant's node id");
  participant->add_option("--tag", role.tag, "names this run's messages");
  participant->add_option("--count", role.count, "messages to send or to wait for");
  participant->add_option("--size", role.size, "payload bytes");
  participant->add_option("--concurrency", role.concurrency, "sends or requests in flight")
      ->check(CLI::Range(1, 4096));
  participant->add_option("--latency-log", role.latency_log,
                          "requester: write each round trip's start and duration (ns) here");

  bool should_exit = false;
  int rc = nodelink::tools::ParseOrExit(app, argc, argv, should_exit);
  if (should_exit) return rc;
  if (*participant) return nodelink::bench::RunRole(role);
  return nodelink::bench::RunBench(options);
}
