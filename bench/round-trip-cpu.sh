#!/usr/bin/env bash
# Request/reply round trips, one in flight, with each process's CPU per round trip, read from
# /proc while the run goes (nodelink-bench reports the latency only). Uses the stores of a
# federation that `nodelink-bench --keep` left behind:
#   build/bin/nodelink-bench --only round-trips --scale 0.05 --keep    # prints "kept DIR"
#   bench/round-trip-cpu.sh DIR [BIN_DIR] [sqlite|memory|raw] [COUNT]
# NODELINK_LATENCY_LOG=FILE: the requester (not the raw one) writes each round trip's start and
# duration there, in ns on CLOCK_MONOTONIC (the clock of `perf sched`).
# Defaults: build/bin, sqlite, 3000 round trips (raw: bench/kept-federation.sh). The requester's
# CPU includes its start.
set -euo pipefail
fed=${1:?usage: bench/round-trip-cpu.sh FEDERATION_DIR [BIN_DIR] [sqlite|memory|raw] [COUNT]}
bin=${2:-build/bin}
queue=${3:-sqlite}
count=${4:-3000}
size=64
max_in_flight=256
# shellcheck source=bench/kept-federation.sh
source "$(dirname "$0")/kept-federation.sh"

participant sink --role "${raw}echo" --concurrency 1 >"$work/echo.out" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
for _ in $(seq 200); do grep -q ready "$work/echo.out" && break; sleep 0.1; done
# Sampled without starting a process (an awk, a grep and a sleep per sample took ~8 % of the two
# cores, which the round trips then waited for): bash builtins only, a read with a timeout as the
# nap.
reported() {
  local line
  while IFS= read -r line; do [[ $line == *'"replies"'* ]] && return 0; done <"$work/requester.out"
  return 1
}
exec {nap}<> <(:)
hub0=0 echo0=0 h=0 e=0 r=0
cpu_into hub0 "$hub"
cpu_into echo0 "$echo_pid"
: >"$work/requester.out"  # exists before the first sample reads it
participant source --role "${raw}requester" --peer sink --concurrency 1 \
  ${NODELINK_LATENCY_LOG:+--latency-log "$NODELINK_LATENCY_LOG"} >"$work/requester.out" 2>&1 &
requester=$!
pids+=("$requester")
# Sample until the requester reports: its figures are its last sample before it exits.
while ! reported; do
  kill -0 "$requester" 2>/dev/null || { cat "$work/requester.out" >&2; exit 1; }
  cpu_into h "$hub"
  cpu_into e "$echo_pid"
  cpu_into r "$requester"
  read -r -t 0.05 -u "$nap" _ || true
done
python3 - "$work/requester.out" "$count" $((h - hub0)) $((e - echo0)) "$r" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, n, tick = sys.argv[1], int(sys.argv[2]), 1e6 / int(sys.argv[6])
r = next(json.loads(l) for l in open(out) if l.startswith("{") and "replies" in l)
hub, echo, req = (int(t) * tick / n for t in sys.argv[3:6])
print(f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, p99.9 {r['p999_us']:.0f} us; "
      f"CPU per round trip: hub {hub:.0f} us, echo {echo:.0f} us, requester {req:.0f} us")
PY
