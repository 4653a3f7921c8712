#!/usr/bin/env bash
# Proxied requests: requests/s and server CPU per request through the gateway's reverse proxy ([[proxy.route]])
# against nginx proxy_pass (and Pushpin, when installed), in one run, to the same trivial upstream.
#
#   bash scripts/bench/proxy.sh [--rounds N] [--seconds S] [--connections C] [--no-build] [--base-bin PATH]
#
# The server under test runs pinned to CPU 0 (the gateway with --threads 1, nginx with one worker, Pushpin's
# processes); the upstream (nginx answering `200 ok` from memory, one worker) and the load generator (wrk, one
# thread, C keep-alive connections) share CPU 1. Only 127.0.0.1 is targeted; every run is bounded in time.
# Each round runs every server in turn; the table shows the median of the rounds. Server CPU = utime+stime of the
# server's processes over the run, from /proc. Needs gcc-free tools only: wrk, nginx, curl (installed if missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/scripts/bench/out/proxy-$(date +%Y%m%d-%H%M%S)"
ROUNDS=3 SECONDS_=10 CONNS=64 BUILD=1 BASE_BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --seconds) SECONDS_=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --base-bin) BASE_BIN=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "--rounds: 1 to 20" >&2; exit 2; }
[ "$SECONDS_" -ge 2 ] && [ "$SECONDS_" -le 120 ] || { echo "--seconds: 2 to 120" >&2; exit 2; }
[ "$CONNS" -ge 1 ] && [ "$CONNS" -le 1000 ] || { echo "--connections: 1 to 1000" >&2; exit 2; }

need=()
for tool in wrk nginx curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
mkdir -p "$OUT"
GATEWAY="$ROOT/.build-bench/release/comet-gateway"
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product comet-gateway) >"$OUT/build.log" 2>&1
fi
[ -x "$GATEWAY" ] || { echo "no gateway binary at $GATEWAY" >&2; exit 1; }

UPSTREAM_PORT=18611 SERVER_PORT=18610 PUBLISH_PORT=18612
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { # port path
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    return 1
}

# The upstream: nginx answering from memory, one worker, on CPU 1.
mkdir -p "$OUT/upstream"
cat >"$OUT/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/upstream/nginx.pid;
error_log $OUT/upstream/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        location / { default_type text/plain; return 200 "ok from the application\n"; }
    }
}
EOF
taskset -c 1 nginx -c "$OUT/upstream/nginx.conf" -p "$OUT/upstream" >"$OUT/upstream/out.log" 2>&1 &
PIDS+=($!)
wait_http "$UPSTREAM_PORT" /

cpu_ticks() { # comma-separated pids -> utime+stime ticks of them and their threads
    local total=0 p
    for p in ${1//,/ }; do
        [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}

start_server() { # name -> sets SERVER_PID and SERVER_PIDS
    local name=$1 dir="$OUT/$1"
    mkdir -p "$dir"
    case "$name" in
    gateway | gateway-base)
        local bin=$GATEWAY
        [ "$name" = gateway-base ] && bin=$BASE_BIN
        cat >"$dir/gateway.conf" <<EOF
[server]
listen = "127.0.0.1:$SERVER_PORT"
publish_listen = "127.0.0.1:$PUBLISH_PORT"
threads = 1
[log]
level = "warning"
[[proxy.route]]
upstream = "http://127.0.0.1:$UPSTREAM_PORT"
EOF
        taskset -c 0 "$bin" --config "$dir/gateway.conf" >"$dir/out.log" 2>&1 &
        SERVER_PID=$!
        ;;
    nginx)
        cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$SERVER_PORT backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
        taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/out.log" 2>&1 &
        SERVER_PID=$!
        ;;
    pushpin)
        # The benchmark's Pushpin configuration (its own zurl, no rate limiter), routing everything to the upstream.
        mkdir -p "$dir/run" "$dir/log"
        sed -e "s#@RUNDIR@#$dir#g" -e "s#@HTTPPORT@#$SERVER_PORT#g" -e "s#@PUBPORT@#$PUBLISH_PORT#g" \
            -e "s#@ZMQBASE0@#18613#g" -e "s#@ZMQBASE2@#18614#g" -e "s#@ZMQBASE3@#18615#g" \
            "$ROOT/scripts/bench/pushpin.conf.in" >"$dir/pushpin.conf"
        echo "* 127.0.0.1:$UPSTREAM_PORT" >"$dir/routes"
        taskset -c 0 pushpin --config "$dir/pushpin.conf" >"$dir/out.log" 2>&1 &
        SERVER_PID=$!
        ;;
    esac
    PIDS+=("$SERVER_PID")
    wait_http "$SERVER_PORT" / || return 1
    sleep 0.5
    SERVER_PIDS=$(pgrep -P "$SERVER_PID" | paste -sd, -)
    SERVER_PIDS=$SERVER_PID${SERVER_PIDS:+,$SERVER_PIDS}
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    sleep 0.5
}

SERVERS=(gateway nginx)
[ -n "$BASE_BIN" ] && SERVERS=(gateway gateway-base nginx)
command -v pushpin >/dev/null && SERVERS+=(pushpin)
HZ=$(getconf CLK_TCK)
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
for ((round = 1; round <= ROUNDS; round++)); do
    for name in "${SERVERS[@]}"; do
        start_server "$name" || { echo "$name did not start (see $OUT/$name)" >&2; stop_server; continue; }
        body=$(curl -s -m 2 "http://127.0.0.1:$SERVER_PORT/x")
        [ "$body" = "ok from the application" ] || { echo "$name: unexpected answer '$body'" >&2; stop_server; continue; }
        before=$(cpu_ticks "$SERVER_PIDS")
        wrk_out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECONDS_}s" --latency "http://127.0.0.1:$SERVER_PORT/x" 2>&1)
        after=$(cpu_ticks "$SERVER_PIDS")
        echo "$wrk_out" >"$OUT/$name-round$round.wrk"
        rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
        total=$(echo "$wrk_out" | awk '/requests in/ {print $1}')
        errors=$(echo "$wrk_out" | awk '/Non-2xx|Socket errors/ {s = s $0 "; "} END {print s}')
        p99=$(echo "$wrk_out" | awk '$1 == "99%" {print $2}')
        cpu_us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$total" 'BEGIN { printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$cpu_us" "$p99" "${errors:-none}" >>"$RESULTS"
        echo "round $round $name: $rps req/s, $cpu_us us CPU per request, p99 $p99, errors: ${errors:-none}" >&2
        stop_server
    done
done

echo
echo "Proxied GET, $CONNS keep-alive connections, ${SECONDS_} s per run, median of $ROUNDS rounds (raw: $OUT)"
python3 - "$RESULTS" "${SERVERS[@]}" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
servers = sys.argv[2:]
def med(name, col):
    values = [float(r[col]) for r in rows if r[1] == name and r[col] not in ("", "0")]
    return statistics.median(values) if values else None
print(f"| server | requests/s | server CPU per request (us) | gateway/server req/s | gateway/server CPU |")
print("|---|---:|---:|---:|---:|")
g_rps, g_cpu = med("gateway", 2), med("gateway", 3)
for name in servers:
    rps, cpu = med(name, 2), med(name, 3)
    if rps is None:
        print(f"| {name} | n/a | n/a | | |"); continue
    ratio_rps = f"{g_rps / rps:.2f}x" if g_rps and name != "gateway" else ""
    ratio_cpu = f"{g_cpu / cpu:.2f}x" if g_cpu and cpu and name != "gateway" else ""
    print(f"| {name} | {rps:,.0f} | {cpu:.2f} | {ratio_rps} | {ratio_cpu} |")
PY
