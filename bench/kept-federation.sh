# Sourced by bench/per-process.sh and bench/round-trip-cpu.sh: starts a hub for the stores of a
# federation that `nodelink-bench --keep` left behind, and defines what both read /proc with.
# Needs fed, bin, queue, count, size and max_in_flight; sets work, tag, pids, hub and port.
work=$(mktemp -d)
tag=run-$$-$RANDOM  # this run's messages only
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # A source or requester blocks SIGTERM until its count is done: one stopped early (an error
  # here) would run on against a hub that is gone, so whatever is left after 2 s is killed.
  for _ in $(seq 20); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }  # clock ticks
participant() {  # run with &: exec makes $! the participant itself
  exec "$bin/nodelink-bench" participant --store "$fed/$1.db" --passphrase-file "$fed/passphrase" \
    --hub "127.0.0.1:$port" --tag "$tag" --count "$count" --size "$size" \
    --max-in-flight "$max_in_flight" "${@:2}"
}

"$bin/nodelink-hub" --federation bench --listen 127.0.0.1:0 --tls-cert "$fed/hub.pem" \
  --tls-key "$fed/hub.key" --tls-ca "$fed/ca/ca.pem" --data-dir "$work" \
  --port-file "$work/port" --metrics-listen off --log-level warn --queue "$queue" 2>/dev/null &
hub=$!
pids+=("$hub")
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")
