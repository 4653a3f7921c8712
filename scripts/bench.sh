#!/usr/bin/env bash
# Side-by-side benchmark: comet-gateway vs Nchan (nginx module) vs Pushpin, and the "floor"
# (scripts/bench/floor.c: a minimal C epoll SSE server, one write() per delivery).
#
#   bash scripts/bench.sh [--quick] [--servers gateway,nchan,pushpin,floor]
#                         [--scenarios 1,2,3,4,5,6,7,8,9,10,11,12,13] [--no-install] [--no-build]
#                         [--md-out FILE] [--wait-idle SECONDS] [--repeat N]
#                         [--storm-subs N] [--storm-rate CONNECTS_PER_S] [--base-bin PATH]
#
# --base-bin PATH adds the server "gateway-base": that gateway binary (say, built from the commit
# before a change), run and loaded exactly like "gateway", so a change is measured before and
# after in one run (with --repeat, interleaved round by round); the tables add gw/gateway-base.
#
# Every server runs pinned to CPU 0 (taskset -c 0, children inherit it), the
# load generator (scripts/bench/loadgen.c) pinned to CPU 1. Only 127.0.0.1 is
# ever targeted; every load phase is bounded in count and time.
#
# Scenarios:
#   1 capacity      idle SSE subscribers (10k, 19k) -> RSS per connection, connect time
#   2 fan-out       1 channel x 1k SSE subscribers, rising publish rates
#   3 wide fan-out  1 channel x 10k SSE subscribers at 10 msg/s
#   4 long-poll     1k long-poll subscribers at 50 msg/s, resuming with a cursor
#   5 many channels 10k channels x 1 SSE subscriber, 2000 msg/s spread over them
#   6 publish       POSTs/s with 0 and 1 subscriber
#   7 websocket     1 channel x 1k WebSocket subscribers at 100 msg/s (not floor)
#   8 connect storm 10k SSE subscribers connect at 5,000/s (time to the first response byte,
#                   server CPU per connection), then all reconnect at once with ?last_event_id=
#                   (--storm-subs, --storm-rate; --quick: 2k) (not pushpin)
#   9 iframe        gateway only: 1 channel x 1k forever-iframe subscribers at 100 msg/s
#  10 jsonp         gateway only: 1k JSONP long-poll subscribers at 50 msg/s (compared with 2 and 4)
#  11 grip          gateway and pushpin: scenario 2 through GRIP stream holds (a GRIP origin on CPU 1 answers
#                   Grip-Hold: stream; publishes are EPCP http-stream items to /publish/), compared with 2
#  12 cluster       gateway and nchan: two nodes and one Redis (the gateway's broker.type = "redis", Nchan's
#                   nchan_redis_pass), subscribers on one node, publishes on the other: 1k SSE at 100 and
#                   1,000 msg/s, latency across nodes (needs redis-server); then the gateway alone: 1k SSE on
#                   one node and spread over three nodes (all with the Redis broker), 4 channels (each
#                   published on its own connection) at 500 to 5,000 msg/s in all: deliveries/s of three
#                   nodes against one
#  13 bayeux        gateway only: 1k Bayeux long-polling clients (/cometd: handshake, subscribe, /meta/connect
#                   held) at 50 msg/s (compared with 4), then 10k clients (--quick: 2k) handshaking and
#                   subscribing at once, held at 2 msg/s (connect time, nothing lost, RSS per client)
# The floor runs 1, 2, 3, 5, 6 and 8 (it speaks SSE only); skipped scenarios leave {"skipped":...}.
#
# --repeat N runs scenarios 2-11 N times, all servers in each round (so they are
# interleaved in time); the tables show the median of the rounds for every
# metric, and the maximum for loss, duplicates, reordering and errors.
#
# Results: a table per scenario on stdout, bench-results/bench-YYYYmmdd-HHMMSS.json
# (all raw loadgen output + metadata) and a Markdown file next to it
# (also copied to bench-results/latest.md, and to --md-out FILE if given).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
OUTBASE="$BENCH/out"             # scratch (git-ignored)
RESULTS_DIR="$ROOT/bench-results" # git-ignored

QUICK=0
SERVERS="gateway,nchan,pushpin,floor"
BASE_BIN=""
SCENARIOS="1,2,3,4,5,6,7,8,9,10,11,12,13"
DO_INSTALL=1
DO_BUILD=1
MD_OUT=""
WAIT_IDLE=0 # seconds to wait for an idle machine before starting
REPEAT=1    # rounds of scenarios 2-10 (servers interleaved); the report shows medians
STORM_SUBS="" # scenario 8: subscribers in the connect storm (default 10000, --quick 2000)
STORM_RATE=5000 # scenario 8: connects per second
PORT_BASE=${BENCH_PORT_BASE:-18400}

usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --base-bin) BASE_BIN="$2"; shift ;;
    --base-bin=*) BASE_BIN="${1#*=}" ;;
    --servers) SERVERS="$2"; shift ;;
    --servers=*) SERVERS="${1#*=}" ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --scenarios=*) SCENARIOS="${1#*=}" ;;
    --no-install) DO_INSTALL=0 ;;
    --no-build) DO_BUILD=0 ;;
    --md-out) MD_OUT="$2"; shift ;;
    --wait-idle) WAIT_IDLE="$2"; shift ;;
    --repeat) REPEAT="$2"; shift ;;
    --storm-subs) STORM_SUBS="$2"; shift ;;
    --storm-rate) STORM_RATE="$2"; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
    shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }
if [ -n "$BASE_BIN" ]; then
    [ -x "$BASE_BIN" ] || { echo "--base-bin: $BASE_BIN is not an executable" >&2; exit 2; }
    has "$SERVERS" gateway-base || SERVERS="$SERVERS,gateway-base"
fi

# ----------------------------------------------------------------------------
# Parameters (full run ~45 min for the four servers; --quick ~5 min)
# ----------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    CAP_COUNTS="1000 2000"
    FAN_SUBS=200;  FAN_RATES="100,500,2000"; FAN_DUR=2
    WIDE_SUBS=1000; WIDE_RATE=10; WIDE_DUR=3
    LP_SUBS=200;   LP_RATE=50;   LP_DUR=3
    MC_CHANS=1000; MC_RATE=500;  MC_DUR=3
    PT_DUR=2
    WS_SUBS=200;   WS_RATE=100;  WS_DUR=2
    STORM_SUBS=${STORM_SUBS:-2000}
    BAYEUX_HOLD=2000
    DRAIN=2
    CAP_SETTLE=1
else
    CAP_COUNTS="10000 19000"
    FAN_SUBS=1000; FAN_RATES="100,200,500,1000,2000,5000"; FAN_DUR=8
    WIDE_SUBS=10000; WIDE_RATE=10; WIDE_DUR=20
    LP_SUBS=1000;  LP_RATE=50;   LP_DUR=15
    MC_CHANS=10000; MC_RATE=2000; MC_DUR=15
    PT_DUR=10
    WS_SUBS=1000;  WS_RATE=100;  WS_DUR=8
    STORM_SUBS=${STORM_SUBS:-10000}
    BAYEUX_HOLD=10000
    DRAIN=3
    CAP_SETTLE=3
fi
PAYLOAD=${BENCH_PAYLOAD:-128}   # bytes per published message
PUB_CONNS=${BENCH_PUB_CONNS:-8} # publisher keep-alive connections
# Fan-out scenarios publish each channel on one fixed connection (per-channel
# order is then defined) with up to PIPELINE requests in flight on it.
# Pushpin's publish endpoint closes the connection after every response, so
# the load generator never pipelines there (see loadgen.c).
PIPELINE=${BENCH_PIPELINE:-16}
PT_PIPELINE=${BENCH_PT_PIPELINE:-1} # publish-throughput scenario (6)
# Scenarios 9 and 10 use the subscriber counts and durations of 2 and 4 (the tables compare them);
# the iframe rate is the first rate of the scenario-2 sweep.
IFRAME_RATE=100
case "$STORM_SUBS" in '' | *[!0-9]*) STORM_SUBS=0 ;; esac
[ "$STORM_SUBS" -ge 1 ] && [ "$STORM_SUBS" -le 19000 ] || { echo "--storm-subs: 1 to 19000" >&2; exit 2; }
awk -v r="$STORM_RATE" 'BEGIN { exit !(r > 0 && r <= 50000) }' || { echo "--storm-rate: 1 to 50000" >&2; exit 2; }

SUB_PORT=$PORT_BASE
PUB_PORT=$((PORT_BASE + 1))
ORIGIN_PORT=$((PORT_BASE + 2))
ZMQ_BASE=$((PORT_BASE + 3)) # pushpin zmq specs use +3..+5
REDIS_PORT=$((PORT_BASE + 6)) # scenario 12; its nodes' other listeners use +7 to +10
CLUSTER_PID_B="" CLUSTER_PID_C=""
CLUSTER_RATES="100,1000"
# scenario 12's second part: deliveries/s of one node and of three nodes (Redis broker), rising rates
if [ "$QUICK" = 1 ]; then CLUSTER_TPUT_RATES="500,2000"; else CLUSTER_TPUT_RATES="500,1000,2000,5000"; fi

TS=$(date +%Y%m%d-%H%M%S)
RUN="$OUTBASE/$TS"
mkdir -p "$RUN/results" "$RESULTS_DIR"
GATEWAY_BIN="$ROOT/.build-bench/release/comet-gateway"  # built by the script (--no-build: must exist)
LOADGEN="$OUTBASE/loadgen"
FLOOR_BIN="$OUTBASE/floor"

# ----------------------------------------------------------------------------
# Process bookkeeping: everything we start is tracked and stopped by PID.
# ----------------------------------------------------------------------------
SERVER_PID=""
ORIGIN_PID=""
LOADGEN_PIDS=()

descendants() { # pid -> pid and all its descendants
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null || true); do descendants "$c"; done
}

stop_pid() { # pid [grace seconds]: TERM, wait, KILL (with descendants)
    local pid=$1 grace=${2:-5} all i p
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    all=$(descendants "$pid" | tac)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}

stop_server() {
    stop_pid "$SERVER_PID" 8
    SERVER_PID=""
    stop_pid "$ORIGIN_PID" 3
    ORIGIN_PID=""
}

cleanup() {
    local p
    for p in "${LOADGEN_PIDS[@]:-}"; do stop_pid "$p" 2; done
    stop_pid "$CLUSTER_PID_B" 2
    stop_pid "$CLUSTER_PID_C" 2
    stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # port path timeout_s
    local port=$1 path=$2 t=$3 i
    for ((i = 0; i < t * 10; i++)); do
        if curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port$path" 2>/dev/null | grep -q '^200$'; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ----------------------------------------------------------------------------
# Setup: packages, loadgen, gateway
# ----------------------------------------------------------------------------
install_deps() {
    local need=() pkgs
    pkgs="gcc curl python3 procps util-linux"
    has "$SERVERS" nchan && pkgs="$pkgs nginx libnginx-mod-nchan"
    has "$SERVERS" pushpin && pkgs="$pkgs pushpin"
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        log "installing: ${need[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    fi
    # Debian's packages start their system services where they can; the
    # benchmark runs its own instances on its own ports and leaves those alone.
    if has "$SERVERS" nchan && command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
        log "note: system nginx service is running (left alone; we use port $SUB_PORT)"
    fi
}

build_loadgen() {
    mkdir -p "$OUTBASE"
    gcc -O2 -Wall -o "$LOADGEN" "$BENCH/loadgen.c" -lm
    if has "$SERVERS" floor; then gcc -O2 -Wall -o "$FLOOR_BIN" "$BENCH/floor.c"; fi
}

GATEWAY_OK=1
build_gateway() {
    if [ "$DO_BUILD" = 1 ]; then
        log "building comet-gateway (release, --scratch-path .build-bench)"
        if ! (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product comet-gateway) \
            >"$RUN/gateway-build.log" 2>&1; then
            log "gateway build FAILED (see $RUN/gateway-build.log); skipping gateway"
            tail -20 "$RUN/gateway-build.log" >&2 || true
            GATEWAY_OK=0
            return
        fi
    fi
    [ -x "$GATEWAY_BIN" ] || { log "no gateway binary at $GATEWAY_BIN; skipping gateway"; GATEWAY_OK=0; }
}

# ----------------------------------------------------------------------------
# Servers. start_<server> sets SERVER_PID (and ORIGIN_PID for pushpin) and
# SERVER_PIDS (comma list measured for CPU/RSS).
# ----------------------------------------------------------------------------
SERVER_PIDS=""

collect_pids() { SERVER_PIDS=$(descendants "$SERVER_PID" | paste -sd, -); }

# gateway-base: another build of the gateway (--base-bin PATH, e.g. the commit before a change), run exactly like
# the gateway, so that a change is measured before and after in one run, interleaved.
start_gateway-base() {
    GATEWAY_BIN="$BASE_BIN" start_gateway "$1"
}

start_gateway() {
    local dir=$1 config=()
    if [ "${GATEWAY_GRIP:-0}" = 1 ]; then
        # Scenario 11: /grip/… goes to the GRIP origin (on CPU 1, not counted, as Pushpin's), which answers
        # Grip-Hold: stream.
        printf '[[proxy.route]]\npath_prefix = "/grip"\nupstream = "http://127.0.0.1:%s"\n' "$ORIGIN_PORT" >"$dir/gateway.conf"
        config=(--config "$dir/gateway.conf")
        (exec taskset -c 1 python3 "$BENCH/pushpin_origin.py" --port "$ORIGIN_PORT" --publish-port "$PUB_PORT") \
            >"$dir/origin.log" 2>&1 &
        ORIGIN_PID=$!
        wait_http "$ORIGIN_PORT" /healthz 10 || return 1
    fi
    (
        ulimit -n 20000
        exec taskset -c 0 "$GATEWAY_BIN" "${config[@]}" --listen "127.0.0.1:$SUB_PORT" \
            --publish-listen "127.0.0.1:$PUB_PORT" --threads 1 --log-level warning
    ) >"$dir/gateway.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$SUB_PORT" /healthz 30 && wait_http "$PUB_PORT" /healthz 10 || return 1
    collect_pids
}

start_nchan() {
    local dir=$1
    mkdir -p "$dir/tmp"
    sed -e "s#@RUNDIR@#$dir#g" -e "s#@SUBPORT@#$SUB_PORT#g" -e "s#@PUBPORT@#$PUB_PORT#g" \
        "$BENCH/nchan.conf.in" >"$dir/nginx.conf"
    (
        ulimit -n 20000
        exec taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
    ) >"$dir/nginx.out" 2>&1 &
    SERVER_PID=$!
    wait_http "$SUB_PORT" /healthz 15 && wait_http "$PUB_PORT" /healthz 5 || return 1
    collect_pids
}

start_floor() {
    local dir=$1
    (
        ulimit -n 20000
        exec taskset -c 0 "$FLOOR_BIN" --sub-port "$SUB_PORT" --pub-port "$PUB_PORT"
    ) >"$dir/floor.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$SUB_PORT" /healthz 10 && wait_http "$PUB_PORT" /healthz 5 || return 1
    collect_pids
}

# floor_stats NAME OUTFILE: the floor's own counters (events written, dropped on EAGAIN, partial writes)
floor_stats() {
    [ "$1" = floor ] || return 0
    curl -s -m 2 "http://127.0.0.1:$PUB_PORT/stats" >"$2" 2>/dev/null || rm -f "$2"
}

# skip NAME SCENARIO REASON: a result file that says why the scenario did not run for NAME
skip() {
    log "$1: scenario $2 skipped: $3"
    printf '{"skipped":"%s"}\n' "$3" >"$RES/$1-s$2.json"
}

# probe_transport KIND: does the running server (the gateway) serve this subscriber transport? Returns 0 if so;
# otherwise prints why not (its answer). WebSocket must answer 101; iframe and JSONP must not be refused
# (a held request, which times out here, or a 200 counts as served).
probe_transport() {
    local kind=$1 code body f="$RUN/probe-$1.out"
    case "$kind" in
    ws)
        code=$(curl -s -o "$f" -m 2 -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
            -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: Y29tZXQtYmVuY2gta2V5IQ==' \
            "http://127.0.0.1:$SUB_PORT/sub/bench-probe" 2>/dev/null || true)
        [ "$code" = 101 ] && return 0
        ;;
    *)
        code=$(curl -s -o "$f" -m 2 -w '%{http_code}' \
            "http://127.0.0.1:$SUB_PORT/sub/bench-probe?transport=$kind&callback=cb" 2>/dev/null || true)
        case "$code" in 000 | 200) return 0 ;; esac
        ;;
    esac
    body=$(head -c 120 "$f" 2>/dev/null | tr -d '"\\' | tr -c '[:print:]' ' ' || true)
    echo "the gateway has no $kind transport yet (probe: HTTP $code${body:+, $body})"
    return 1
}

start_pushpin() {
    local dir=$1
    mkdir -p "$dir/run" "$dir/log"
    sed -e "s#@RUNDIR@#$dir#g" -e "s#@HTTPPORT@#$SUB_PORT#g" -e "s#@PUBPORT@#$PUB_PORT#g" \
        -e "s#@ZMQBASE0@#$ZMQ_BASE#g" -e "s#@ZMQBASE2@#$((ZMQ_BASE + 1))#g" -e "s#@ZMQBASE3@#$((ZMQ_BASE + 2))#g" \
        "$BENCH/pushpin.conf.in" >"$dir/pushpin.conf"
    sed -e "s#@ORIGINPORT@#$ORIGIN_PORT#g" "$BENCH/pushpin_routes.in" >"$dir/routes"
    # The GRIP origin is an application-side helper: it runs on CPU 1 (with
    # the load generator) and is NOT counted in Pushpin's CPU/RSS.
    (
        ulimit -n 20000
        exec taskset -c 1 python3 "$BENCH/pushpin_origin.py" --port "$ORIGIN_PORT" --publish-port "$PUB_PORT"
    ) >"$dir/origin.log" 2>&1 &
    ORIGIN_PID=$!
    (
        ulimit -n 20000
        exec taskset -c 0 pushpin --config "$dir/pushpin.conf"
    ) >"$dir/pushpin.out" 2>&1 &
    SERVER_PID=$!
    wait_http "$ORIGIN_PORT" /healthz 10 || return 1
    wait_http "$SUB_PORT" /healthz 30 || return 1
    local i
    for ((i = 0; i < 100; i++)); do port_free "$PUB_PORT" || break; sleep 0.1; done
    sleep 1 # let all pushpin services finish wiring their zmq sockets
    collect_pids
}

# start_server NAME TAG -> 0 on success
start_server() {
    local name=$1 tag=$2 dir="$RUN/$1-$2" p
    rm -rf "$dir"; mkdir -p "$dir"
    for p in "$SUB_PORT" "$PUB_PORT" "$ORIGIN_PORT" "$ZMQ_BASE" $((ZMQ_BASE + 1)) $((ZMQ_BASE + 2)); do
        port_free "$p" || { log "port $p is busy; set BENCH_PORT_BASE"; return 1; }
    done
    if ! "start_$name" "$dir"; then
        log "$name failed to start (logs in $dir)"
        stop_server
        return 1
    fi
    log "$name up (pids $SERVER_PIDS)"
}

rss_kb() { # comma list of pids -> summed VmRSS in KiB
    local total=0 p v
    for p in ${1//,/ }; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# ----------------------------------------------------------------------------
# Running the load generator
# ----------------------------------------------------------------------------
# lg NAME OUTFILE args... : run loadgen on CPU 1, JSON to OUTFILE (bounded by --deadline)
lg() {
    local name=$1 out=$2
    shift 2
    local pport=$PUB_PORT
    taskset -c 1 "$LOADGEN" --server "${name%-base}" --sub-port "$SUB_PORT" --pub-port "$pport" \
        --origin-port "$ORIGIN_PORT" --pids "$SERVER_PIDS" ${ORIGIN_PID:+--aux-pids "$ORIGIN_PID"} \
        --size "$PAYLOAD" "$@" \
        >"$out" 2>"${out%.json}.log" || log "loadgen exited with $? (see ${out%.json}.log)"
    grep -E 'ok=|connected in' "${out%.json}.log" | sed 's/^/    /' >&2 || true
}

scenario_capacity() {
    local name=$1 n out procs per i ready before after t0
    for n in $CAP_COUNTS; do
        start_server "$name" "cap$n" || continue
        sleep 1
        before=$(rss_kb "$SERVER_PIDS")
        procs=1
        [ "$n" -gt 15000 ] && procs=2
        per=$((n / procs))
        LOADGEN_PIDS=()
        for ((i = 0; i < procs; i++)); do
            taskset -c 1 "$LOADGEN" --mode capacity --server "${name%-base}" --sub-port "$SUB_PORT" --subs "$per" \
                --channel-prefix "cap$i-" --hold 300 --connect-conc 256 --connect-timeout 150 \
                --ready-file "$RUN/ready-$name-$n-$i" --label "capacity-$n-$i" \
                >"$RUN/results/$name-s1-$n-part$i.json" 2>"$RUN/results/$name-s1-$n-part$i.log" &
            LOADGEN_PIDS+=($!)
        done
        t0=$(date +%s)
        while :; do
            ready=0
            for ((i = 0; i < procs; i++)); do [ -f "$RUN/ready-$name-$n-$i" ] && ready=$((ready + 1)); done
            [ "$ready" = "$procs" ] && break
            [ $(($(date +%s) - t0)) -gt 170 ] && { log "capacity: connect phase timed out"; break; }
            sleep 0.5
        done
        sleep "$CAP_SETTLE" # let the server settle (lazy allocations, GC)
        collect_pids
        after=$(rss_kb "$SERVER_PIDS")
        for p in "${LOADGEN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${LOADGEN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        LOADGEN_PIDS=()
        printf '{"subs":%d,"procs":%d,"rss_kb_before":%d,"rss_kb_after":%d,"pids":"%s"}\n' \
            "$n" "$procs" "$before" "$after" "$SERVER_PIDS" >"$RUN/results/$name-s1-$n-rss.json"
        log "  capacity $n: RSS ${before} -> ${after} KiB"
        grep -h 'connected in' "$RUN/results/$name-s1-$n-part"*.log | sed 's/^/    /' >&2 || true
        stop_server
        sleep 1
    done
}

scenario_fanout() {
    local name=$1
    start_server "$name" fanout || return 0
    lg "$name" "$RES/$name-s2.json" --mode fanout --kind sse --subs "$FAN_SUBS" --rates "$FAN_RATES" \
        --duration "$FAN_DUR" --drain "$DRAIN" --pub-conns "$PUB_CONNS" --pipeline "$PIPELINE" \
        --stop-after-fail 2 --deadline 300 --label fanout
    floor_stats "$name" "$RES/$name-s2-floor.json"
    stop_server
}

scenario_wide() {
    local name=$1
    start_server "$name" wide || return 0
    lg "$name" "$RES/$name-s3.json" --mode fanout --kind sse --subs "$WIDE_SUBS" --rates "$WIDE_RATE" \
        --duration "$WIDE_DUR" --drain "$((DRAIN + 2))" --pub-conns 1 --pipeline "$PIPELINE" --settle 3 \
        --deadline 300 --label wide
    floor_stats "$name" "$RES/$name-s3-floor.json"
    stop_server
}

scenario_longpoll() {
    local name=$1
    [ "$name" = floor ] && { skip floor 4 "the floor server speaks SSE only (no long-poll)"; return 0; }
    start_server "$name" longpoll || return 0
    lg "$name" "$RES/$name-s4.json" --mode fanout --kind longpoll --subs "$LP_SUBS" --rates "$LP_RATE" \
        --duration "$LP_DUR" --drain "$((DRAIN + 2))" --pub-conns 1 --pipeline "$PIPELINE" --settle 2 --deadline 240 --label longpoll
    stop_server
}

scenario_channels() {
    local name=$1
    start_server "$name" channels || return 0
    lg "$name" "$RES/$name-s5.json" --mode fanout --kind sse --subs "$MC_CHANS" --channels "$MC_CHANS" \
        --rates "$MC_RATE" --duration "$MC_DUR" --drain "$DRAIN" --pub-conns "$PUB_CONNS" --pipeline "$PIPELINE" \
        --settle 3 --deadline 300 --label channels
    floor_stats "$name" "$RES/$name-s5-floor.json"
    stop_server
}

scenario_publish() {
    local name=$1 s
    for s in 0 1; do
        start_server "$name" "pub$s" || continue
        lg "$name" "$RES/$name-s6-$s.json" --mode pubtput --subs "$s" --duration "$PT_DUR" \
            --drain "$DRAIN" --pub-conns "$PUB_CONNS" --pipeline "$PT_PIPELINE" --pub-order any \
            --deadline 120 --label "publish-$s"
        stop_server
    done
}

scenario_websocket() {
    local name=$1 why
    [ "$name" = floor ] && { skip floor 7 "the floor server speaks SSE only (no WebSocket)"; return 0; }
    start_server "$name" websocket || return 0
    if [ "$name" = gateway ] && ! why=$(probe_transport ws); then skip gateway 7 "$why"; stop_server; return 0; fi
    lg "$name" "$RES/$name-s7.json" --mode fanout --kind ws --subs "$WS_SUBS" --rates "$WS_RATE" \
        --duration "$WS_DUR" --drain "$DRAIN" --pub-conns 1 --pipeline "$PIPELINE" --settle 2 --deadline 240 \
        --label websocket
    stop_server
}

# Scenario 8: the connect storm and the reconnect storm (loadgen --mode connect).
scenario_connect() {
    local name=$1
    if [ "$name" = pushpin ]; then
        # Pushpin proxies every new subscription to the GRIP origin, a Python stand-in on the load
        # generator's CPU: the time to the first byte would be the origin's, not Pushpin's.
        skip pushpin 8 "every subscribe is proxied to the GRIP origin (a Python stand-in on the load generator's CPU), so connect latency would measure the origin"
        return 0
    fi
    start_server "$name" connect || return 0
    lg "$name" "$RES/$name-s8.json" --mode connect --subs "$STORM_SUBS" --connect-rate "$STORM_RATE" \
        --pub-conns 1 --pipeline 1 --prime-msgs 3 --connect-timeout 30 --deadline 200 --label connect
    floor_stats "$name" "$RES/$name-s8-floor.json"
    stop_server
}

# Scenario 9: the gateway's forever-iframe transport, run like scenario 2's first rate.
scenario_iframe() {
    local name=$1
    local why
    [ "$name" = gateway ] || { skip "$name" 9 "gateway-only transport (forever iframe)"; return 0; }
    start_server "$name" iframe || return 0
    if ! why=$(probe_transport iframe); then skip gateway 9 "$why"; stop_server; return 0; fi
    lg "$name" "$RES/$name-s9.json" --mode fanout --kind iframe --subs "$FAN_SUBS" --rates "$IFRAME_RATE" \
        --duration "$FAN_DUR" --drain "$DRAIN" --pub-conns "$PUB_CONNS" --pipeline "$PIPELINE" \
        --deadline 240 --label iframe
    stop_server
}

# Scenario 10: the gateway's JSONP long-poll transport, run like scenario 4.
scenario_jsonp() {
    local name=$1
    local why
    [ "$name" = gateway ] || { skip "$name" 10 "gateway-only transport (JSONP long-poll)"; return 0; }
    start_server "$name" jsonp || return 0
    if ! why=$(probe_transport jsonp); then skip gateway 10 "$why"; stop_server; return 0; fi
    lg "$name" "$RES/$name-s10.json" --mode fanout --kind jsonp --subs "$LP_SUBS" --rates "$LP_RATE" \
        --duration "$LP_DUR" --drain "$((DRAIN + 2))" --pub-conns 1 --pipeline "$PIPELINE" --settle 2 --deadline 240 \
        --label jsonp
    stop_server
}

# Scenario 13: Bayeux long-polling on the gateway's /cometd, run like scenario 4; then BAYEUX_HOLD clients that
# handshake and subscribe at once and are held at 2 msg/s (one node holding them, nothing lost).
scenario_bayeux() {
    local name=$1 code
    case "$name" in gateway | gateway-base) ;; *) skip "$name" 13 "gateway-only endpoint (Bayeux)"; return 0 ;; esac
    start_server "$name" bayeux || return 0
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]' \
        "http://127.0.0.1:$SUB_PORT/cometd" 2>/dev/null || true)
    if [ "$code" != 200 ]; then skip gateway 13 "the gateway has no Bayeux endpoint (probe: HTTP $code)"; stop_server; return 0; fi
    lg "$name" "$RES/$name-s13.json" --mode fanout --kind bayeux --subs "$LP_SUBS" --rates "$LP_RATE" \
        --duration "$LP_DUR" --drain "$((DRAIN + 2))" --pub-conns 1 --pipeline "$PIPELINE" --settle 2 --deadline 240 \
        --label bayeux
    stop_server
    [ "$name" = gateway ] || return 0  # the base build: the row against long-poll only
    start_server "$name" bayeux-hold || return 0
    lg "$name" "$RES/$name-s13-hold.json" --mode fanout --kind bayeux --subs "$BAYEUX_HOLD" --rates 2 \
        --duration "$LP_DUR" --drain "$((DRAIN + 3))" --pub-conns 1 --pipeline 1 --settle 3 --deadline 300 \
        --label bayeux-hold
    stop_server
}

# Scenario 11: SSE through GRIP stream holds, run like scenario 2: Pushpin's own way (every subscribe proxied to the
# GRIP origin, which answers Grip-Hold: stream; publishes to /publish/ as http-stream items), and the gateway's
# (subscribers GET /grip/CH, proxied to the same origin; publishes to its /publish/, Pushpin's format).
scenario_grip() {
    local name=$1
    case "$name" in
    gateway) GATEWAY_GRIP=1 start_server "$name" grip || return 0 ;;
    pushpin) start_server "$name" grip || return 0 ;;
    *) skip "$name" 11 "GRIP holds are Pushpin's and the gateway's (not a --base-bin build's, which may predate them)"; return 0 ;;
    esac
    lg "$name" "$RES/$name-s11.json" --mode fanout --kind sse --grip --subs "$FAN_SUBS" --rates "$FAN_RATES" \
        --duration "$FAN_DUR" --drain "$DRAIN" --pub-conns "$PUB_CONNS" --pipeline "$PIPELINE" \
        --stop-after-fail 2 --deadline 300 --label grip
    stop_server
}

# Scenario 12: two gateway nodes and one Redis (broker.type = "redis"): the subscribers on node A, the publishes on
# node B, so every delivery crossed Redis (publish-to-delivery latency across nodes). Both nodes on CPU 0, Redis on
# CPU 1 with the load generator (a third core would be fairer to both; this machine has two). Server CPU counts both
# nodes; Redis's is reported as a helper's.
# Then deliveries/s of three nodes against one: the same sweep (CLUSTER_TPUT_RATES) against one node with the Redis
# broker, and against three nodes (the subscribers spread round-robin over them, publishes on the first). The nodes
# share CPU 0, Redis and the load generator CPU 1: two cores leave no room to give each node its own, so this row
# shows what spreading subscribers over nodes costs per delivery, not the throughput more cores would add.

# start_redis DIR: a scratch redis-server on CPU 1 (its pid is ORIGIN_PID, reported as a helper's CPU)
start_redis() {
    command -v redis-server >/dev/null || { log "redis-server missing"; return 1; }
    (exec taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --logfile "$1/redis.log") >/dev/null 2>&1 &
    ORIGIN_PID=$!
}

# launch_node DIR NAME SUBPORT PUBPORT: a gateway node with the Redis broker on CPU 0; its pid is NODE_PID
launch_node() {
    printf '[broker]\ntype = "redis"\nredis_url = "redis://127.0.0.1:%s"\n' "$REDIS_PORT" >"$1/node-$2.conf"
    (
        ulimit -n 20000
        exec taskset -c 0 "$GATEWAY_BIN" --config "$1/node-$2.conf" --listen "127.0.0.1:$3" \
            --publish-listen "127.0.0.1:$4" --threads 1 --log-level warning
    ) >"$1/node-$2.log" 2>&1 &
    NODE_PID=$!
}

# wait_nodes PUBPORT...: each node's /healthz answers and reports its broker connected (bounded: 30 s + 10 s)
wait_nodes() {
    local p i
    for p in "$@"; do
        wait_http "$p" /healthz 30 || return 1
        for ((i = 0; i < 100; i++)); do
            curl -s "http://127.0.0.1:$p/healthz" | grep -q '"broker_connected":true' && break
            sleep 0.1
        done
    done
}

start_gateway-cluster() {
    start_redis "$1" || return 1
    launch_node "$1" a "$SUB_PORT" "$((PORT_BASE + 7))"; SERVER_PID=$NODE_PID
    launch_node "$1" b "$((PORT_BASE + 8))" "$PUB_PORT"; CLUSTER_PID_B=$NODE_PID
    wait_http "$SUB_PORT" /healthz 30 || return 1
    wait_nodes "$PUB_PORT" "$((PORT_BASE + 7))" || return 1
    SERVER_PIDS="$SERVER_PID,$CLUSTER_PID_B"
}

# One node with the Redis broker: subscribers and publishes on it.
start_gateway-redis1() {
    start_redis "$1" || return 1
    launch_node "$1" a "$SUB_PORT" "$PUB_PORT"; SERVER_PID=$NODE_PID
    wait_nodes "$PUB_PORT" || return 1
    SERVER_PIDS="$SERVER_PID"
}

start_gateway-base-redis1() { GATEWAY_BIN="$BASE_BIN" start_gateway-redis1 "$1"; }
start_gateway-base-redis3() { GATEWAY_BIN="$BASE_BIN" start_gateway-redis3 "$1"; }

# Three nodes: A (SUB_PORT, PUB_PORT), B (+7, +8) and C (+9, +10).
start_gateway-redis3() {
    start_redis "$1" || return 1
    launch_node "$1" a "$SUB_PORT" "$PUB_PORT"; SERVER_PID=$NODE_PID
    launch_node "$1" b "$((PORT_BASE + 7))" "$((PORT_BASE + 8))"; CLUSTER_PID_B=$NODE_PID
    launch_node "$1" c "$((PORT_BASE + 9))" "$((PORT_BASE + 10))"; CLUSTER_PID_C=$NODE_PID
    wait_nodes "$PUB_PORT" "$((PORT_BASE + 8))" "$((PORT_BASE + 10))" || return 1
    SERVER_PIDS="$SERVER_PID,$CLUSTER_PID_B,$CLUSTER_PID_C"
}

# Nchan's side of scenario 12: two nginx + Nchan instances storing channels in the same Redis (nchan_redis_pass),
# subscribers on instance A, publishes on instance B.
start_nchan-cluster() {
    local dir=$1 node sub pub
    start_redis "$dir" || return 1
    for node in a b; do
        if [ $node = a ]; then sub=$SUB_PORT pub=$((PORT_BASE + 7)); else sub=$((PORT_BASE + 8)) pub=$PUB_PORT; fi
        mkdir -p "$dir/$node/tmp"
        sed -e "s#@RUNDIR@#$dir/$node#g" -e "s#@SUBPORT@#$sub#g" -e "s#@PUBPORT@#$pub#g" \
            -e "s#^\( *\)nchan_shared_memory_size 512m;#&\n\1upstream comet_redis { nchan_redis_server \"redis://127.0.0.1:$REDIS_PORT\"; }#" \
            -e "s#^\( *\)nchan_channel_id \$1;#&\n\1nchan_redis_pass comet_redis;#" \
            "$BENCH/nchan.conf.in" >"$dir/$node/nginx.conf"
        (
            ulimit -n 20000
            exec taskset -c 0 nginx -c "$dir/$node/nginx.conf" -p "$dir/$node" -e "$dir/$node/error.log"
        ) >"$dir/$node/nginx.out" 2>&1 &
        [ $node = a ] && SERVER_PID=$! || CLUSTER_PID_B=$!
    done
    wait_http "$SUB_PORT" /healthz 15 && wait_http "$PUB_PORT" /healthz 15 || return 1
    sleep 1 # let both connect to Redis
    SERVER_PIDS="$(descendants "$SERVER_PID" | paste -sd, -),$(descendants "$CLUSTER_PID_B" | paste -sd, -)"
}

scenario_cluster() {
    local name=$1
    case "$name" in
    gateway | gateway-base | nchan) ;;
    *) skip "$name" 12 "Redis scale-out: the gateway's and Nchan's"; return 0 ;;
    esac
    if [ "$name" != gateway-base ]; then
        start_server "$name-cluster" cluster || return 0
        lg "$name" "$RES/$name-s12.json" --mode fanout --kind sse --subs "$FAN_SUBS" --rates "$CLUSTER_RATES" \
            --duration "$FAN_DUR" --drain "$DRAIN" --pub-conns 1 --pipeline "$PIPELINE" --settle 2 \
            --stop-after-fail 2 --deadline 240 --label cluster
        stop_cluster
    fi
    [ "$name" != nchan ] || return 0
    local nodes
    for nodes in 1 3; do
        start_server "$name-redis$nodes" tput || { stop_cluster; continue; }
        lg "$name" "$RES/$name-s12-nodes$nodes.json" --mode fanout --kind sse --subs "$FAN_SUBS" --channels 4 \
            --sub-ports "$([ $nodes = 1 ] && echo "$SUB_PORT" || echo "$SUB_PORT,$((PORT_BASE + 7)),$((PORT_BASE + 9))")" \
            --rates "$CLUSTER_TPUT_RATES" --duration "$FAN_DUR" --drain "$DRAIN" --pub-conns 4 --pipeline "$PIPELINE" \
            --settle 2 --stop-after-fail 2 --deadline 300 --label "redis-nodes$nodes"
        stop_cluster
    done
}

# stop_cluster: the extra nodes of scenario 12, then the first node and Redis
stop_cluster() {
    stop_pid "$CLUSTER_PID_B" 5
    stop_pid "$CLUSTER_PID_C" 5
    CLUSTER_PID_B="" CLUSTER_PID_C=""
    stop_server
}

# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || log "warning: not root; apt-get and nginx may fail"
[ "$DO_INSTALL" = 1 ] && install_deps
command -v taskset >/dev/null || { log "taskset missing (util-linux)"; exit 1; }
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; server and load generator will share a core"
build_loadgen
if has "$SERVERS" gateway; then build_gateway; fi

# The numbers are only meaningful on an otherwise idle machine: sample CPU
# idle time for 2 s before starting and record it (and warn).
cpu_idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
    for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
    echo $(( total > 0 ? 100 * idle / total : 0 ))
}
IDLE_BEFORE=$(cpu_idle_pct)
WAIT_END=$(($(date +%s) + WAIT_IDLE))
while [ "$IDLE_BEFORE" -lt 90 ] && [ "$(date +%s)" -lt "$WAIT_END" ]; do
    log "machine ${IDLE_BEFORE}% idle; waiting for it to quiet down (--wait-idle $WAIT_IDLE)"
    sleep 8
    IDLE_BEFORE=$(cpu_idle_pct)
done
if [ "$IDLE_BEFORE" -lt 90 ]; then
    log "WARNING: machine only ${IDLE_BEFORE}% idle before the run (other processes busy); results will be noisy"
    ps -eo pid,psr,pcpu,comm --sort=-pcpu | head -6 >&2
fi

START=$(date +%s)
# Round 1 writes results/; rounds 2..N write results/round<N>/. The servers run one after the other within a
# round, so repeated rounds interleave them in time and the medians are not skewed by a noisy minute.
for ((round = 1; round <= REPEAT; round++)); do
    RES="$RUN/results"
    [ "$round" -gt 1 ] && RES="$RUN/results/round$round" && mkdir -p "$RES"
    [ "$REPEAT" -gt 1 ] && log "##### round $round of $REPEAT"
    for name in ${SERVERS//,/ }; do
        if [ "$name" = gateway ] && [ "$GATEWAY_OK" != 1 ]; then
            echo '{"error":"gateway build failed or binary missing"}' >"$RUN/results/gateway-skipped.json"
            continue
        fi
        log "=== $name ==="
        # Capacity (RSS per connection) is stable from run to run: measured in the first round only.
        [ "$round" = 1 ] && has "$SCENARIOS" 1 && { log "scenario 1: capacity ($CAP_COUNTS idle SSE)"; scenario_capacity "$name"; }
        has "$SCENARIOS" 2 && { log "scenario 2: fan-out 1x$FAN_SUBS at $FAN_RATES msg/s"; scenario_fanout "$name"; }
        has "$SCENARIOS" 3 && { log "scenario 3: wide fan-out 1x$WIDE_SUBS at $WIDE_RATE msg/s"; scenario_wide "$name"; }
        has "$SCENARIOS" 4 && { log "scenario 4: long-poll $LP_SUBS at $LP_RATE msg/s"; scenario_longpoll "$name"; }
        has "$SCENARIOS" 5 && { log "scenario 5: $MC_CHANS channels x 1 at $MC_RATE msg/s"; scenario_channels "$name"; }
        has "$SCENARIOS" 6 && { log "scenario 6: publish throughput"; scenario_publish "$name"; }
        has "$SCENARIOS" 7 && { log "scenario 7: WebSocket fan-out 1x$WS_SUBS at $WS_RATE msg/s"; scenario_websocket "$name"; }
        has "$SCENARIOS" 8 && { log "scenario 8: connect storm $STORM_SUBS SSE at $STORM_RATE/s, then reconnect storm"; scenario_connect "$name"; }
        has "$SCENARIOS" 9 && { log "scenario 9: iframe fan-out 1x$FAN_SUBS at $IFRAME_RATE msg/s"; scenario_iframe "$name"; }
        has "$SCENARIOS" 10 && { log "scenario 10: JSONP long-poll $LP_SUBS at $LP_RATE msg/s"; scenario_jsonp "$name"; }
        has "$SCENARIOS" 11 && { log "scenario 11: GRIP stream-hold fan-out 1x$FAN_SUBS at $FAN_RATES msg/s"; scenario_grip "$name"; }
        has "$SCENARIOS" 12 && { log "scenario 12: across two nodes and Redis 1x$FAN_SUBS at $CLUSTER_RATES msg/s"; scenario_cluster "$name"; }
        has "$SCENARIOS" 13 && { log "scenario 13: Bayeux long-polling $LP_SUBS at $LP_RATE msg/s, then $BAYEUX_HOLD clients held"; scenario_bayeux "$name"; }
    done
done
log "load phases done in $(($(date +%s) - START)) s"
IDLE_AFTER=$(cpu_idle_pct)

# Machine / version metadata for the report.
{
    printf '{"timestamp":"%s","quick":%s,"servers":"%s","scenarios":"%s",' "$TS" "$([ $QUICK = 1 ] && echo true || echo false)" "$SERVERS" "$SCENARIOS"
    printf '"idle_pct_before":%d,"idle_pct_after":%d,"duration_s":%d,' "$IDLE_BEFORE" "$IDLE_AFTER" "$(($(date +%s) - START))"
    printf '"cpu":"%s","nproc":%s,"kernel":"%s",' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //; s/"//g')" "$(nproc)" "$(uname -r)"
    printf '"nginx":"%s","nchan":"%s","pushpin":"%s","gateway_commit":"%s",' \
        "$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || echo n/a)" \
        "$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo n/a)" \
        "$(dpkg-query -W -f='${Version}' pushpin 2>/dev/null || echo n/a)" \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo n/a)"
    printf '"params":{"cap_counts":"%s","fan_subs":%d,"fan_rates":"%s","fan_dur":%s,"wide_subs":%d,"wide_rate":%s,"wide_dur":%s,' \
        "$CAP_COUNTS" "$FAN_SUBS" "$FAN_RATES" "$FAN_DUR" "$WIDE_SUBS" "$WIDE_RATE" "$WIDE_DUR"
    printf '"lp_subs":%d,"lp_rate":%s,"lp_dur":%s,"mc_chans":%d,"mc_rate":%s,"mc_dur":%s,"pt_dur":%s,"payload":%d,"pub_conns":%d,"pipeline":%d,"pt_pipeline":%d,' \
        "$LP_SUBS" "$LP_RATE" "$LP_DUR" "$MC_CHANS" "$MC_RATE" "$MC_DUR" "$PT_DUR" "$PAYLOAD" "$PUB_CONNS" "$PIPELINE" "$PT_PIPELINE"
    printf '"ws_subs":%d,"ws_rate":%s,"ws_dur":%s,"storm_subs":%d,"storm_rate":%s,"iframe_rate":%s,"cluster_rates":"%s","cluster_tput_rates":"%s","bayeux_hold":%d,"repeat":%d}}\n' \
        "$WS_SUBS" "$WS_RATE" "$WS_DUR" "$STORM_SUBS" "$STORM_RATE" "$IFRAME_RATE" "$CLUSTER_RATES" "$CLUSTER_TPUT_RATES" "$BAYEUX_HOLD" "$REPEAT"
} >"$RUN/meta.json"

python3 "$BENCH/report.py" --run "$RUN" --json-out "$RESULTS_DIR/bench-$TS.json" \
    --md-out "$RESULTS_DIR/bench-$TS.md" ${MD_OUT:+--md-copy "$MD_OUT"}
cp "$RESULTS_DIR/bench-$TS.md" "$RESULTS_DIR/latest.md"
log "results: $RESULTS_DIR/bench-$TS.json, $RESULTS_DIR/bench-$TS.md (raw: $RUN)"
