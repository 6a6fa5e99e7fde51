# Sourced by bench/per-process.sh and bench/round-trip-cpu.sh: starts a hub for the stores of a
# federation that `nodelink-bench --keep` left behind, and defines what both read /proc with.
# Needs fed, bin, queue, count, size and max_in_flight; sets work, tag, pids, hub, port and raw.
# NODELINK_HUB_FLAGS, NODELINK_PARTICIPANT_FLAGS: more flags for the hub and each participant,
# e.g. "--sqlite-synchronous full" and "--store-synchronous full" (what surviving power loss costs).
work=$(mktemp -d)
tag=run-$$-$RANDOM  # this run's messages only
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# queue=raw: the raw relay's roles (no crypto, no store; role names prefixed raw-) on the
# memory-queue hub, the transport's own share.
raw=""
if [[ $queue == raw ]]; then queue=memory raw=raw-; fi

# A process's user + system clock ticks, read with builtins only (round-trip-cpu.sh samples every
# 50 ms, where an awk per sample took cores the round trips waited for). VAR keeps its value if
# the process has ended (round-trip-cpu.sh relies on that for the requester's last sample).
cpu_into() {  # cpu_into VAR PID
  local stat
  read -r stat 2>/dev/null <"/proc/$2/stat" || return 0
  local fields=(${stat##*) })
  printf -v "$1" '%d' $((fields[11] + fields[12]))
}
cpu() { local ticks=0; cpu_into ticks "$1"; echo "$ticks"; }
participant() {  # run with &: exec makes $! the participant itself
  # shellcheck disable=SC2086  # NODELINK_PARTICIPANT_FLAGS split into flags on purpose
  exec "$bin/nodelink-bench" participant --store "$fed/$1.db" --passphrase-file "$fed/passphrase" \
    --hub "127.0.0.1:$port" --tag "$tag" --count "$count" --size "$size" \
    --max-in-flight "$max_in_flight" ${NODELINK_PARTICIPANT_FLAGS:-} "${@:2}"
}

# shellcheck disable=SC2086  # NODELINK_HUB_FLAGS likewise
"$bin/nodelink-hub" --federation bench --listen 127.0.0.1:0 --tls-cert "$fed/hub.pem" \
  --tls-key "$fed/hub.key" --tls-ca "$fed/ca/ca.pem" --data-dir "$work" \
  --port-file "$work/port" --metrics-listen off --log-level warn --queue "$queue" \
  ${NODELINK_HUB_FLAGS:-} 2>/dev/null &
hub=$!
pids+=("$hub")
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")
