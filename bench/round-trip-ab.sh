#!/usr/bin/env bash
# Two builds side by side: round trips (bench/round-trip-cpu.sh) with build A and build B in
# alternated pairs, the order flipped every pair (A B, B A, A B, ...) so that the machine's drift
# over a sitting (±15 % within minutes here) weighs on both alike. Prints each run and a summary:
# the median p50 and p99 of each build, the median of the per-pair ratios B/A, and in how many
# pairs B was lower. Uses the stores of a federation that `nodelink-bench --keep` left behind:
#   build/bin/nodelink-bench --only round-trips --scale 0.05 --keep    # prints "kept DIR"
#   bench/round-trip-ab.sh DIR BIN_DIR_A BIN_DIR_B [PAIRS] [COUNT] [sqlite|memory|raw]
# Defaults: 6 pairs of 3000 round trips on the durable (sqlite) hub.
set -euo pipefail
fed=${1:?usage: bench/round-trip-ab.sh FEDERATION_DIR BIN_DIR_A BIN_DIR_B [PAIRS] [COUNT] [QUEUE]}
bin_a=${2:?missing BIN_DIR_A}
bin_b=${3:?missing BIN_DIR_B}
pairs=${4:-6}
count=${5:-3000}
queue=${6:-sqlite}
here=$(dirname "$0")

results=$(mktemp)
trap 'rm -f "$results"' EXIT
run() {  # run LABEL BIN_DIR PAIR
  local line
  line=$("$here/round-trip-cpu.sh" "$fed" "$2" "$queue" "$count" 2>/dev/null | grep '^p50') ||
    { echo "round-trip-ab: run $1 ($2) failed; run bench/round-trip-cpu.sh alone to see why" >&2; exit 1; }
  echo "pair $3 $1: $line"
  echo "$3 $1 $line" >>"$results"
}
for ((i = 1; i <= pairs; i++)); do
  if ((i % 2)); then run A "$bin_a" "$i"; run B "$bin_b" "$i"; else run B "$bin_b" "$i"; run A "$bin_a" "$i"; fi
done

python3 - "$results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    pair, label = line.split()[:2]
    p50, p99 = (int(x) for x in re.search(r"p50 (\d+) us, p99 (\d+) us", line).groups())
    runs.setdefault(int(pair), {})[label] = (p50, p99)
a = [r["A"] for r in runs.values()]
b = [r["B"] for r in runs.values()]
ratios = [r["B"][0] / r["A"][0] for r in runs.values()]
med = lambda xs, k: statistics.median(x[k] for x in xs)
print(f"A: p50 median {med(a, 0):.0f} us, p99 median {med(a, 1):.0f} us")
print(f"B: p50 median {med(b, 0):.0f} us, p99 median {med(b, 1):.0f} us")
print(f"B/A p50 per pair: median {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f}); B lower in "
      f"{sum(r < 1 for r in ratios)} of {len(ratios)} pairs")
PY
