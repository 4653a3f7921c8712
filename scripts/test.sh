#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the Swift toolchain.
# Installs what the tests need (libcurl for the webhook publisher, pkg-config, prlimit), builds everything
# with our own code held to zero warnings, and runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
# Warnings in this repository's sources fail the build (dependencies are not ours to fix).
if grep -E "^$(pwd)/(Sources|Tests)/.*: warning:" "$log"; then
  echo "error: the build has warnings in Sources/ or Tests/" >&2
  exit 1
fi
swift test --skip-build "$@"
