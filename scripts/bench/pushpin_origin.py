#!/usr/bin/env python3
"""Tiny GRIP origin for benchmarking Pushpin (stdlib only, threaded).

Pushpin proxies every client request here; we answer with GRIP instructions:

  GET /sub/<ch>       SSE:        Grip-Hold: stream, Content-Type: text/event-stream
  GET /grip/<ch>      the same, for the gateway's GRIP scenario (bench.sh scenario 11)
  GET /stream/<ch>    raw stream: Grip-Hold: stream, Content-Type: text/plain
  GET /poll/<ch>?last_event_id=N
                      long-poll with a cursor. Messages newer than N are
                      returned at once from our log; otherwise the request is
                      held (Grip-Hold: response, Grip-Channel: <ch>; prev-id=N).
                      Pushpin delivers a published item to held requests whose
                      prev-id matches, and re-asks us (retry) for the others,
                      so no message is lost between polls.
  POST /pub/<ch>      long-poll publish: append to the channel log, then
                      publish {"id": n, "prev-id": n-1, http-response} to
                      Pushpin's HTTP publish endpoint (in order, one at a time).
  POST /sub/<ch>      WebSocket-over-HTTP (routes use over_http): Pushpin turns
                      a client's WebSocket into POSTs of
                      application/websocket-events; on OPEN we accept with
                      Sec-WebSocket-Extensions: grip and subscribe the
                      connection to <ch> (a "c:" control TEXT event); messages
                      are then published with the ws-message format.
  GET /healthz        200

Response bodies of the long-poll endpoint use the same JSON shape as
comet-gateway: {"messages":[{"channel":..,"id":..,"data":..}],"last_event_id":..}

SSE/stream publishes do not pass through here: the load generator posts them
straight to Pushpin's /publish/ endpoint.

Usage: pushpin_origin.py --port ORIGIN_PORT --publish-port PUSHPIN_PUBLISH_PORT
"""
import argparse
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOG_CAP = 2000      # messages kept per channel for long-poll catch-up
BATCH_CAP = 200     # messages returned per long-poll response
HOLD_TIMEOUT = 55   # seconds Pushpin holds a long-poll before the timeout body

_lock = threading.Lock()        # protects _logs
_pub_lock = threading.Lock()    # serializes publishes (ids must be in order)
_logs = {}                      # channel -> {"last": int, "msgs": [(id, data)]}
_publish_port = 0
_pub_conn = None


def _channel_log(ch):
    log = _logs.get(ch)
    if log is None:
        log = _logs[ch] = {"last": 0, "msgs": []}
    return log


def _poll_body(ch, msgs, cursor):
    return json.dumps({
        "messages": [{"channel": ch, "id": str(i), "data": d} for i, d in msgs],
        "last_event_id": str(msgs[-1][0] if msgs else cursor),
    }, separators=(",", ":"))


def _publish_to_pushpin(items):
    """POST items to Pushpin's /publish/ over one keep-alive connection."""
    global _pub_conn
    body = json.dumps({"items": items}, separators=(",", ":")).encode()
    for attempt in range(2):
        try:
            if _pub_conn is None:
                _pub_conn = http.client.HTTPConnection("127.0.0.1", _publish_port, timeout=10)
            _pub_conn.request("POST", "/publish/", body, {"Content-Type": "application/json"})
            resp = _pub_conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            _pub_conn = None
            if attempt:
                return 502
    return 502


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep quiet
        pass

    def _send(self, code, body=b"", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        parts = url.path.split("/", 2)
        if url.path == "/healthz":
            return self._send(200, "ok\n")
        if len(parts) < 3 or not parts[2]:
            return self._send(404, "not found\n")
        kind, ch = parts[1], parts[2]
        if kind in ("sub", "grip"):  # /grip/CH: the gateway's GRIP scenario (its own /sub/ is never proxied)
            return self._send(200, b"", [("Content-Type", "text/event-stream"),
                                         ("Grip-Hold", "stream"), ("Grip-Channel", ch)])
        if kind == "stream":
            return self._send(200, b"", [("Content-Type", "text/plain"),
                                         ("Grip-Hold", "stream"), ("Grip-Channel", ch)])
        if kind == "poll":
            q = parse_qs(url.query)
            cur = q.get("last_event_id", [None])[0]
            with _lock:
                log = _channel_log(ch)
                cursor = int(cur) if cur and cur.isdigit() else log["last"]
                msgs = [m for m in log["msgs"] if m[0] > cursor][:BATCH_CAP]
            if msgs:
                return self._send(200, _poll_body(ch, msgs, cursor), [("Content-Type", "application/json")])
            return self._send(200, _poll_body(ch, [], cursor), [
                ("Content-Type", "application/json"),
                ("Grip-Hold", "response"),
                ("Grip-Channel", "%s; prev-id=%d" % (ch, cursor)),
                ("Grip-Timeout", str(HOLD_TIMEOUT)),
            ])
        return self._send(404, "not found\n")

    def _websocket_events(self, ch, body):
        """WebSocket-over-HTTP: answer OPEN with a subscription, CLOSE with CLOSE."""
        out = b""
        if body.startswith(b"OPEN"):
            control = ('c:{"type":"subscribe","channel":"%s"}' % ch).encode()
            out = b"OPEN\r\nTEXT %x\r\n%s\r\n" % (len(control), control)
        elif b"CLOSE" in body:
            out = b"CLOSE\r\n"
        return self._send(200, out, [("Content-Type", "application/websocket-events"),
                                     ("Sec-WebSocket-Extensions", "grip")])

    def do_POST(self):
        url = urlsplit(self.path)
        parts = url.path.split("/", 2)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.headers.get("Content-Type", "").startswith("application/websocket-events"):
            if len(parts) < 3 or parts[1] != "sub" or not parts[2]:
                return self._send(404, "not found\n")
            return self._websocket_events(parts[2], raw)
        data = raw.decode("utf-8", "replace")
        if len(parts) < 3 or parts[1] != "pub" or not parts[2]:
            return self._send(404, "not found\n")
        ch = parts[2]
        with _pub_lock:
            with _lock:
                log = _channel_log(ch)
                mid = log["last"] + 1
                log["last"] = mid
                log["msgs"].append((mid, data))
                if len(log["msgs"]) > LOG_CAP:
                    del log["msgs"][: len(log["msgs"]) - LOG_CAP]
            item = {
                "channel": ch,
                "id": str(mid),
                "prev-id": str(mid - 1),
                "formats": {"http-response": {
                    "code": 200,
                    "headers": [["Content-Type", "application/json"]],
                    "body": _poll_body(ch, [(mid, data)], mid),
                }},
            }
            status = _publish_to_pushpin([item])
        code = 200 if status == 200 else 502
        return self._send(code, json.dumps({"channel": ch, "id": str(mid)}) + "\n",
                          [("Content-Type", "application/json")])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096
    allow_reuse_address = True


def main():
    global _publish_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--publish-port", type=int, required=True)
    a = ap.parse_args()
    _publish_port = a.publish_port
    srv = Server(("127.0.0.1", a.port), Handler)
    print("origin listening on 127.0.0.1:%d" % a.port, file=sys.stderr, flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
