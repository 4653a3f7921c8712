#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the Swift toolchain.
# Installs what the tests need (libcurl for the webhook publisher, pkg-config, prlimit, curl, openssl for the HTTPS
# tests' certificate, redis-server for the Redis tests, which start their own on loopback ports; headless Chromium and
# its driver, Python's selenium, websockets, gripcontrol and pubcontrol for
# the browser and client tests), builds everything with our
# own code held to zero warnings, runs `swift test`, then the browser and client tests of Tests/Browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

# selenium 4.52 asks for a newer certifi than the package registry here serves; 4.51 works.
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install -q 'selenium>=4.40,<4.52'
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q 'websockets>=12'
python3 -c 'import gripcontrol, pubcontrol' 2>/dev/null || python3 -m pip install -q 'gripcontrol>=4' 'pubcontrol>=3'
python3 -c 'import aiocometd_noloop' 2>/dev/null || python3 -m pip install -q 'aiocometd-noloop>=0.4.9'

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
# Warnings in this repository's sources fail the build (dependencies are not ours to fix).
if grep -E "^$(pwd)/(Sources|Tests)/.*: warning:" "$log"; then
  echo "error: the build has warnings in Sources/ or Tests/" >&2
  exit 1
fi
# A fresh build leaves about 1 GB of output to write back, which the kernel starts about 30 s later
# (vm.dirty_expire_centisecs), in the middle of the live tests: on this VM that writeback stalls processes for
# seconds (/proc/pressure/io), enough for a held request to miss its test's timeout. Write it back first.
sync
swift test --skip-build "$@"
# Browser transports in headless Chromium (same and cross origin, cut and resumed) and the Python WebSocket client,
# against the gateway binary just built. Skipped when a filter was given to swift test.
if [ "$#" -eq 0 ]; then
  python3 Tests/Browser/run_all.py --gateway "$(swift build --show-bin-path)/comet-gateway"
fi
