#!/usr/bin/env bash
# One-way throughput with each process's cost: CPU per message, bytes written to disk and minor
# page faults, read from /proc while the run goes (what nodelink-bench's table cannot show).
# Uses the sink and source stores of a federation that `nodelink-bench --keep` left behind:
#   build/bin/nodelink-bench --only round-trips --scale 0.05 --keep    # prints "kept DIR"
#   bench/per-process.sh DIR [BIN_DIR] [sqlite|memory|raw] [COUNT] [SIZE]
# Defaults: build/bin, sqlite, 300 messages, 1 MiB (8 senders, 16 in flight, as nodelink-bench).
set -euo pipefail
fed=${1:?usage: bench/per-process.sh FEDERATION_DIR [BIN_DIR] [sqlite|memory|raw] [COUNT] [SIZE]}
bin=${2:-build/bin}
queue=${3:-sqlite}
count=${4:-300}
size=${5:-1048576}
max_in_flight=16
# shellcheck source=bench/kept-federation.sh
source "$(dirname "$0")/kept-federation.sh"
written() { awk '/^write_bytes/ {print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }
faults() { awk '{print $10}' "/proc/$1/stat" 2>/dev/null || echo 0; }

participant sink --role "${raw}sink" --peer source --concurrency 1 >"$work/sink.out" 2>&1 &
sink=$!
pids+=("$sink")
for _ in $(seq 200); do grep -q ready "$work/sink.out" && break; sleep 0.1; done
hub_cpu0=$(cpu "$hub") sink_cpu0=$(cpu "$sink") hub_w0=$(written "$hub") sink_w0=$(written "$sink")
participant source --role "${raw}source" --peer sink --concurrency 8 >"$work/source.out" 2>&1 &
source=$!
pids+=("$source")
# Sample until the sink reports: the source's figures are its last sample before it exits.
while ! grep -q '"received"' "$work/sink.out"; do
  kill -0 "$sink" 2>/dev/null || { echo "the sink ended early:" >&2; cat "$work/sink.out" >&2; exit 1; }
  s_cpu=$(cpu "$source") s_w=$(written "$source") s_f=$(faults "$source")
  h_cpu=$(cpu "$hub") h_w=$(written "$hub") k_cpu=$(cpu "$sink") k_w=$(written "$sink")
  sleep 0.05
done
k_f=$(faults "$sink") h_f=$(faults "$hub")
python3 - "$work" "$count" "$size" <<'PY'
import json, sys
work, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def line(name, key):
    return next(json.loads(l) for l in open(f"{work}/{name}.out") if l.startswith("{") and key in l)
sec = (line("sink", "last_ns")["last_ns"] - line("source", "start_ns")["start_ns"]) / 1e9
print(f"{n / sec:.1f} msg/s, {n * size / sec / 1e6:.1f} MB/s")
PY
tick_ms=$(( 1000 / $(getconf CLK_TCK) ))
per() { awk -v t="$1" -v n="$count" -v ms="$tick_ms" 'BEGIN {printf "%.1f", t * ms / n}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f", b / 1e6}'; }
echo "CPU per message (ms): hub $(per $((h_cpu - hub_cpu0))), receiver $(per $((k_cpu - sink_cpu0))), sender $(per "$s_cpu") (with its start)"
echo "written to disk (MB): hub $(mb $((h_w - hub_w0))), receiver $(mb $((k_w - sink_w0))), sender $(mb "$s_w")"
echo "minor page faults: hub $h_f, receiver $k_f, sender $s_f (whole process lives)"
