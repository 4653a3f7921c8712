#!/usr/bin/env bash
# Fuzzes the parsers that read the network with libFuzzer and AddressSanitizer, each for a bounded time.
#
#   bash scripts/fuzz.sh [--seconds N] [--targets http,epcp,...]
#
# Targets (Sources/comet-fuzz/FuzzTargets.swift): http (the HTTP/1 request parser through the connection state
# machine, fed in two reads), epcp (Pushpin's /publish/ bodies), proxy-headers (the proxy's header rewriting),
# websocket (client frames), request-target (request targets, subscribe requests, WebSocket control messages),
# config (gateway.conf), channel-token (signed channel tokens), grip (an application's GRIP headers and instruct
# bodies, rendered as the gateway writes them), resp (what a Redis server sends, and stored messages), bayeux (Bayeux request bodies, JSON parsed, written back and
# parsed again, replies and deliveries). Default: all of them, 60 seconds each.
#
# Builds a debug build with -sanitize=fuzzer,address in .build-fuzz (about 4 minutes the first time), keeps each
# target's corpus in .build-fuzz/corpus/TARGET (so later runs start from what earlier ones found), and writes any
# crashing input to .build-fuzz/crashes/TARGET/. Prints, per target, the executions, the corpus size and the crashes;
# exits 1 if any target crashed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_=60
TARGETS="http,epcp,proxy-headers,websocket,request-target,config,channel-token,grip,resp,bayeux"
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_=$2; shift ;;
        --targets) TARGETS=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$SECONDS_" -ge 1 ] && [ "$SECONDS_" -le 86400 ] || { echo "--seconds: 1 to 86400" >&2; exit 2; }

SCRATCH="$ROOT/.build-fuzz"
mkdir -p "$SCRATCH"
echo "building comet-fuzz with libFuzzer and AddressSanitizer (log: $SCRATCH/build.log)" >&2
(cd "$ROOT" && swift build --product comet-fuzz --scratch-path "$SCRATCH" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING) >"$SCRATCH/build.log" 2>&1 \
    || { tail -30 "$SCRATCH/build.log" >&2; exit 1; }
BIN="$SCRATCH/debug/comet-fuzz"

failed=0
printf '%-16s %12s %10s %8s\n' target executions corpus crashes
for target in ${TARGETS//,/ }; do
    corpus="$SCRATCH/corpus/$target" crashes="$SCRATCH/crashes/$target"
    mkdir -p "$corpus" "$crashes"
    log="$SCRATCH/$target.log"
    # TOMLKit (the configuration's TOML library) leaks its C++ parse error on every malformed document: found by
    # this fuzzer on its first inputs, harmless for a file read once at start, and not the gateway's code. Leak
    # detection stays on for every other target.
    leaks=1
    [ "$target" = config ] && leaks=0
    set +e
    COMET_FUZZ_TARGET=$target ASAN_OPTIONS="detect_leaks=$leaks" "$BIN" "$corpus" -max_total_time="$SECONDS_" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -detect_leaks="$leaks" -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    runs=$(awk '/stat::number_of_executed_units/ {print $2; exit}' "$log")
    found=$(find "$crashes" -type f | wc -l)
    printf '%-16s %12s %10s %8s\n' "$target" "${runs:-?}" "$(find "$corpus" -type f | wc -l)" "$found"
    if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then
        failed=1
        echo "  $target: libFuzzer exited $status; see $log and $crashes" >&2
    fi
done
exit "$failed"
