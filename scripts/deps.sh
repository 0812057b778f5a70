#!/usr/bin/env bash
# Installs the Debian 12 packages raftkit needs, only those that are missing.
# Run as root (or with sudo available). Idempotent: a second run installs nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost1.81-dev libssl-dev openssl
  capnproto libcapnp-dev
  libfmt-dev catch2 libbenchmark-dev libcli11-dev
  python3 curl  # the docs test (tests/docs) runs the README's commands
)
# clang is only needed for the libFuzzer targets; install it when asked.
if [[ "${RAFTKIT_WITH_FUZZ:-0}" == 1 ]]; then packages+=(clang libclang-rt-14-dev); fi
# A headless browser only for the test suite (scripts/test.sh asks): the live
# page of `scripts/demo.sh --web` is tested in it (tests/integration/live_page_test.py).
if [[ "${RAFTKIT_WITH_BROWSER:-0}" == 1 ]]; then packages+=(chromium chromium-driver python3-selenium); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "raftkit: installing missing packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "raftkit: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
