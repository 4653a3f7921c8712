#!/usr/bin/env bash
# Three gateway nodes sharing one Redis, on this machine (loopback only), until Ctrl-C.
#
#   bash scripts/cluster.sh [--build]      # --build: swift build -c release first
#
# Starts redis-server on 127.0.0.1:6390 (persistence off) and three nodes, each with broker.type = "redis":
#   node 1: public 127.0.0.1:8080, publisher 127.0.0.1:8081
#   node 2: public 127.0.0.1:8082, publisher 127.0.0.1:8083
#   node 3: public 127.0.0.1:8084, publisher 127.0.0.1:8085
# With two cores, the nodes run with one event loop thread each and share the cores with Redis (no pinning).
# Try it: curl -N "http://127.0.0.1:8080/sub/news?transport=sse" & curl -d hello http://127.0.0.1:8085/pub/news
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = --build ]; then (cd "$ROOT" && swift build -c release --product comet-gateway); fi
BIN="$ROOT/.build/release/comet-gateway"
[ -x "$BIN" ] || BIN="$ROOT/.build/debug/comet-gateway"
[ -x "$BIN" ] || { echo "build the gateway first (swift build -c release), or pass --build" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing (Debian: apt-get install redis-server)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/comet-cluster.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$DIR/redis.log" &
PIDS+=($!)
for i in 1 2 3; do
    public=$((8078 + 2 * i)) publish=$((8079 + 2 * i))
    cat >"$DIR/node$i.conf" <<CONF
[server]
listen = "127.0.0.1:$public"
publish_listen = "127.0.0.1:$publish"
threads = 1
[broker]
type = "redis"
redis_url = "redis://127.0.0.1:6390"
CONF
    "$BIN" --config "$DIR/node$i.conf" >"$DIR/node$i.log" 2>&1 &
    PIDS+=($!)
    echo "node $i: public http://127.0.0.1:$public, publisher http://127.0.0.1:$publish (log $DIR/node$i.log)"
done
echo "Redis 127.0.0.1:6390. Ctrl-C stops everything."
wait
