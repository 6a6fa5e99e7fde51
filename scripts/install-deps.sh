#!/usr/bin/env bash
# Installs, from Debian 12 packages only, whatever nodelink needs to build, test and run that is
# not installed yet. Says what it installs; does nothing when everything is present.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # gRPC needs all four (find_package is FATAL otherwise)
  libssl-dev libsodium-dev libsqlitecpp-dev libsqlite3-dev nlohmann-json3-dev
  libspdlog-dev libcli11-dev
  doctest-dev libbenchmark-dev                 # tests and micro-benchmarks
  clang libclang-rt-14-dev                     # libFuzzer targets (CI)
  python3 procps                               # test helpers: ps for RSS figures
  libgoogle-perftools-dev                      # tcmalloc for the hub and node daemons
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
