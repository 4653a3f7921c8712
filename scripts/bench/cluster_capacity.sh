#!/usr/bin/env bash
# Idle SSE subscribers held across three gateway nodes sharing one Redis: RSS per connection on each node.
#
#   bash scripts/bench/cluster_capacity.sh [--per-node N] [--no-build]     # default 19,000 per node (57,000 in all)
#
# One process may hold at most 20,000 open files here, so each node holds up to ~19.9k connections and each of the
# three load generators (scripts/bench/loadgen.c --mode capacity) opens N to its node. Nodes run with one event loop
# thread each; nothing is pinned (three nodes, three load generators and Redis share the two cores). Only 127.0.0.1
# is targeted; the connect phase is bounded (150 s) and the hold ends when the script does.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PER_NODE=19000 BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --per-node) PER_NODE=$2; shift ;;
        --no-build) BUILD=0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$PER_NODE" -ge 1 ] && [ "$PER_NODE" -le 19500 ] || { echo "--per-node: 1 to 19500" >&2; exit 2; }
OUT="$ROOT/scripts/bench/out/cluster-capacity-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
GATEWAY="$ROOT/.build-bench/release/comet-gateway"
if [ "$BUILD" = 1 ]; then (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product comet-gateway) >"$OUT/build.log" 2>&1; fi
LOADGEN="$ROOT/scripts/bench/out/loadgen"
gcc -O2 -Wall -o "$LOADGEN" "$ROOT/scripts/bench/loadgen.c" -lm
command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
REDIS_PORT=18690
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$OUT/redis.log" &
PIDS+=($!)
NODE_PIDS=()
for i in 0 1 2; do
    printf '[broker]\ntype = "redis"\nredis_url = "redis://127.0.0.1:%s"\n' "$REDIS_PORT" >"$OUT/node$i.conf"
    (ulimit -n 20000; exec "$GATEWAY" --config "$OUT/node$i.conf" --listen "127.0.0.1:$((18700 + 2 * i))" \
        --publish-listen "127.0.0.1:$((18701 + 2 * i))" --threads 1 --log-level warning) >"$OUT/node$i.log" 2>&1 &
    PIDS+=($!)
    NODE_PIDS+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$((18701 + 2 * i))/healthz" | grep -q '"broker_connected":true' && break; sleep 0.1; done
done
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
BEFORE=()
for i in 0 1 2; do BEFORE+=("$(rss "${NODE_PIDS[$i]}")"); done
LG=()
for i in 0 1 2; do
    "$LOADGEN" --mode capacity --server gateway --sub-port $((18700 + 2 * i)) --subs "$PER_NODE" --channel-prefix "n$i-" \
        --hold 600 --connect-conc 256 --connect-timeout 150 --ready-file "$OUT/ready$i" --label "node$i" \
        >"$OUT/loadgen$i.json" 2>"$OUT/loadgen$i.log" &
    LG+=($!)
    PIDS+=($!)
done
start=$(date +%s)
while :; do
    ready=0
    for i in 0 1 2; do [ -f "$OUT/ready$i" ] && ready=$((ready + 1)); done
    [ "$ready" = 3 ] && break
    [ $(($(date +%s) - start)) -gt 170 ] && { echo "connect phase timed out" >&2; break; }
    sleep 0.5
done
sleep 3
total=0 conns=0
echo "| node | subscribers | RSS before (KiB) | RSS after (KiB) | KiB per subscriber |"
echo "|---|---:|---:|---:|---:|"
for i in 0 1 2; do
    after=$(rss "${NODE_PIDS[$i]}")
    subs=$(curl -s "http://127.0.0.1:$((18701 + 2 * i))/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subscribers"])')
    per=$(awk -v a="$after" -v b="${BEFORE[$i]}" -v n="$subs" 'BEGIN { printf "%.2f", (n > 0 ? (a - b) / n : 0) }')
    echo "| $i | $subs | ${BEFORE[$i]} | $after | $per |"
    total=$((total + after - ${BEFORE[$i]})); conns=$((conns + subs))
done
awk -v t="$total" -v n="$conns" 'BEGIN { printf "all three: %d subscribers, %.2f KiB (%.0f bytes) per subscriber\n", n, t / n, t * 1024 / n }'
grep -h "connected in" "$OUT"/loadgen*.log || true
for p in "${LG[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
