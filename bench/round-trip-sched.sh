#!/usr/bin/env bash
# Where the round trip's wake-ups wait: request/reply round trips, one in flight, with
# `perf sched record` for 3 s in the middle, then each thread's wake-to-run delay and, for the
# delays above 0.5 ms, what held the CPU the thread then ran on. Needs perf and root. Uses the
# stores of a federation that `nodelink-bench --keep` left behind (see bench/round-trip-cpu.sh):
#   bench/round-trip-sched.sh DIR [BIN_DIR] [sqlite|memory|raw]
set -euo pipefail
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf) and root" >&2; exit 1; }
fed=${1:?usage: bench/round-trip-sched.sh FEDERATION_DIR [BIN_DIR] [sqlite|memory|raw]}
bin=${2:-build/bin}
queue=${3:-sqlite}
# Long enough to cover the recording (checked below): 7-20 s here, the raw relay ~4x faster.
count=12000
if [[ $queue == raw ]]; then count=48000; fi
size=64
max_in_flight=256
# shellcheck source=bench/kept-federation.sh
source "$(dirname "$0")/kept-federation.sh"

participant sink --role "${raw}echo" --concurrency 1 >"$work/echo.out" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do grep -q ready "$work/echo.out" && break; sleep 0.1; done
participant source --role "${raw}requester" --peer sink --concurrency 1 >"$work/requester.out" 2>&1 &
requester=$!
pids+=("$requester")
sleep 2  # past the requester's start and channel setup
perf sched record -o "$work/sched.data" -- sleep 3 >/dev/null 2>&1 ||
  { echo "perf sched record failed (it needs root)" >&2; exit 1; }
wait "$requester" || { cat "$work/requester.out" >&2; exit 1; }
perf sched timehist -i "$work/sched.data" 2>/dev/null | tail -n +4 >"$work/timehist.txt"
python3 - "$work/timehist.txt" "$work/requester.out" <<'PY'
import bisect, collections, json, re, sys
r = next(json.loads(l) for l in open(sys.argv[2]) if l.startswith("{") and "replies" in l)
seconds = (r["end_ns"] - r["start_ns"]) / 1e9
if seconds < 6:  # it starts within the first 2 s, so it covered the 3 s recorded (2-5 s) only if
    sys.exit(f"the round trips took {seconds:.1f} s, too few to cover the recording: raise count")
trips = r["replies"] / seconds * 3  # in the 3 s recorded, at the run's mean rate
print(f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us over the run; "
      f"~{trips:.0f} round trips in the 3 s recorded")
runs = collections.defaultdict(list)  # cpu -> [(start, end, thread name)]
stats = collections.defaultdict(lambda: [0, 0.0, 0.0, 0])  # name -> runs, run ms, delay ms, >0.5
late = []  # (woken, started, cpu, name, delay ms)
for line in open(sys.argv[1]):
    f = line.split()
    try:
        end, cpu, delay, run = float(f[0]), int(f[1].strip("[]")), float(f[-2]), float(f[-1])
    except (ValueError, IndexError):
        continue
    name = re.sub(r"\[.*", "", f[2])
    start = end - run / 1000
    runs[cpu].append((start, end, name))
    if name == "<idle>":
        continue
    s = stats[name]
    s[0] += 1; s[1] += run; s[2] += delay
    if delay > 0.5:
        s[3] += 1
        late.append((start - delay / 1000, start, cpu, name, delay))
idle = sum(e - s for c in runs.values() for s, e, n in c if n == "<idle>") * 1000
busy = sum(s[1] for s in stats.values())
print(f"CPU time: busy {busy:.0f} ms, idle {idle:.0f} ms; per round trip: {busy / trips:.2f} ms")
print(f"{'thread':18} {'runs/trip':>9} {'CPU us/trip':>11} {'mean delay':>10} {'>0.5 ms':>8}")
for name, (n, run, delay, over) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
    if run >= 20:
        print(f"{name:18} {n / trips:9.1f} {1000 * run / trips:11.0f} {delay / n:7.3f} ms {over:8d}")
held = collections.Counter()
held_ms = collections.Counter()
for c in runs.values():
    c.sort()
for woken, started, cpu, name, delay in late:
    on_cpu = collections.Counter()
    c = runs[cpu]
    for s, e, holder in c[bisect.bisect_left(c, (woken - 0.1,)):]:  # no run is 0.1 s long
        if s > started:
            break
        if min(e, started) > max(s, woken):
            on_cpu[holder] += min(e, started) - max(s, woken)
    holder = on_cpu.most_common(1)[0][0] if on_cpu else "?"
    held[holder] += 1
    held_ms[holder] += delay
print(f"{len(late)} wake-ups waited > 0.5 ms ({len(late) / trips:.2f} per round trip, "
      f"{sum(x[4] for x in late) / trips:.2f} ms); what held the CPU each then ran on:")
for holder, n in held.most_common(8):
    print(f"  {holder:18} {n:5d} wake-ups, {held_ms[holder]:7.1f} ms")
PY
