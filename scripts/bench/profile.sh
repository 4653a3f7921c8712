#!/usr/bin/env bash
# Where a server's CPU time goes in one benchmark load: kernel (by system call), SwiftNIO, the gateway's own code.
#
#   bash scripts/bench/profile.sh [--server gateway|nchan] [--load fanout|longpoll|bayeux|publish|grip]
#                                 [--rate MSG_PER_S] [--subs N] [--seconds S] [--size BYTES] [--freq HZ]
#
# Starts the server pinned to CPU 0 (the gateway with --threads 1, nginx with one worker), drives it with the
# benchmark's load generator on CPU 1 (127.0.0.1 only, bounded in time), records the server's stacks with
# `perf record -g` in the middle of the load, and prints the split (perf_split.py) in percent and in microseconds
# per delivery (fan-out, long poll) or per publish. Needs root (perf), perf (Debian: linux-perf), gcc, and for
# nchan nginx with libnginx-mod-nchan. Defaults: gateway, fanout, 100 msg/s, 1000 subscribers (publish: 0), 12 s,
# 128-byte payloads (as scripts/bench.sh), 4999 samples/s. Sampling slows the server; a load near its capacity then
# batches more per write than without perf: --freq 499 (and more --seconds) disturbs it least.
# Uses the release build of scripts/bench.sh (.build-bench); builds it when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$ROOT/scripts/bench"
OUT="$BENCH/out/profile-$(date +%Y%m%d-%H%M%S)"
SERVER=gateway LOAD=fanout RATE=100 SUBS= SECONDS_=12 SIZE=128 FREQ=4999
while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVER=$2; shift ;;
        --load) LOAD=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --subs) SUBS=$2; shift ;;
        --seconds) SECONDS_=$2; shift ;;
        --size) SIZE=$2; shift ;;
        --freq) FREQ=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$SERVER" in gateway|nchan) ;; *) echo "--server: gateway or nchan" >&2; exit 2 ;; esac
case "$LOAD" in fanout|longpoll|bayeux|publish|grip) ;; *) echo "--load: fanout, longpoll, bayeux, publish or grip" >&2; exit 2 ;; esac
[ "$SECONDS_" -ge 6 ] && [ "$SECONDS_" -le 120 ] || { echo "--seconds: 6 to 120" >&2; exit 2; }
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }

SUB_PORT=${BENCH_PORT_BASE:-18400}
PUB_PORT=$((SUB_PORT + 1))
mkdir -p "$OUT"
LOADGEN="$BENCH/out/loadgen"
[ -x "$LOADGEN" ] || gcc -O2 -Wall -o "$LOADGEN" "$BENCH/loadgen.c" -lm
GATEWAY="$ROOT/.build-bench/release/comet-gateway"
if [ "$SERVER" = gateway ] && [ ! -x "$GATEWAY" ]; then
    (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product comet-gateway) >"$OUT/build.log" 2>&1
fi

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -f "$OUT/nginx.pid" ]; then kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT

CONFIG=()
if [ "$LOAD" = grip ]; then
    # GRIP stream holds (bench.sh scenario 11): /grip/CH goes to the GRIP origin on CPU 1, which answers Grip-Hold.
    ORIGIN_PORT=$((PUB_PORT + 1))
    printf '[[proxy.route]]\npath_prefix = "/grip"\nupstream = "http://127.0.0.1:%s"\n' "$ORIGIN_PORT" >"$OUT/gateway.conf"
    CONFIG=(--config "$OUT/gateway.conf")
    (exec taskset -c 1 python3 "$BENCH/pushpin_origin.py" --port "$ORIGIN_PORT" --publish-port "$PUB_PORT") \
        >"$OUT/origin.log" 2>&1 &
    PIDS+=($!)
    sleep 1
fi
if [ "$SERVER" = gateway ]; then
    (ulimit -n 20000; exec taskset -c 0 "$GATEWAY" "${CONFIG[@]}" --listen "127.0.0.1:$SUB_PORT" \
        --publish-listen "127.0.0.1:$PUB_PORT" --threads 1 --log-level warning) >"$OUT/server.log" 2>&1 &
    PIDS+=($!)
    TARGET=$!
else
    mkdir -p "$OUT/tmp"
    sed -e "s#@RUNDIR@#$OUT#g" -e "s#@SUBPORT@#$SUB_PORT#g" -e "s#@PUBPORT@#$PUB_PORT#g" \
        "$BENCH/nchan.conf.in" >"$OUT/nginx.conf"
    (ulimit -n 20000; exec taskset -c 0 nginx -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/error.log") \
        >"$OUT/server.log" 2>&1 &
    PIDS+=($!)
fi
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PUB_PORT/healthz" && break
    sleep 0.1
done
[ "$SERVER" = nchan ] && TARGET=$(pgrep -f "nginx: worker process" -n)

case "$LOAD" in
    fanout) ARGS=(--mode fanout --kind sse --subs "${SUBS:-1000}" --rates "$RATE" --pub-conns 1 --pipeline 16 --settle 2) ;;
    grip) ARGS=(--mode fanout --kind sse --grip --subs "${SUBS:-1000}" --rates "$RATE" --pub-conns 1 --pipeline 16 --settle 2) ;;
    longpoll) ARGS=(--mode fanout --kind longpoll --subs "${SUBS:-1000}" --rates "$RATE" --pub-conns 1 --pipeline 16 --settle 2) ;;
    bayeux) ARGS=(--mode fanout --kind bayeux --subs "${SUBS:-1000}" --rates "$RATE" --pub-conns 1 --pipeline 16 --settle 2) ;;
    publish) ARGS=(--mode pubtput --subs "${SUBS:-0}" --pub-conns 8 --pipeline 1 --pub-order any) ;;
esac
RECORD=$((SECONDS_ - 5))
(sleep 4; exec taskset -c 1 perf record -B -F "$FREQ" -g -o "$OUT/perf.data" -a -C 0 -- sleep "$RECORD" >"$OUT/perf.log" 2>&1) &
PERF=$!
taskset -c 1 "$LOADGEN" --server "$SERVER" --sub-port "$SUB_PORT" --pub-port "$PUB_PORT" --pids "$TARGET" \
    "${ARGS[@]}" --size "$SIZE" --duration "$SECONDS_" --drain 2 --deadline $((SECONDS_ + 120)) >"$OUT/loadgen.json" 2>"$OUT/loadgen.log"
wait "$PERF" || true
grep -E "ok=" "$OUT/loadgen.log" || true
PER_OP=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=d.get('result') or d['steps'][0]; \
v=r['cpu_us_per_publish'] if sys.argv[2]=='publish' else r['cpu_us_per_delivery']; print(v if v and v>0 else '')" \
    "$OUT/loadgen.json" "$LOAD")
echo "$SERVER, $LOAD: server CPU ${PER_OP:-?} us per $([ "$LOAD" = publish ] && echo publish || echo delivery)"
perf script -i "$OUT/perf.data" --pid "$TARGET" -F ip,sym 2>/dev/null | python3 "$BENCH/perf_split.py" ${PER_OP:+--per-op-us "$PER_OP"}
echo "raw: $OUT"
