#!/usr/bin/env python3
"""GRIP holds as Pushpin's users make them: an application built with the `gripcontrol` package (PyPI) behind the
gateway, publishing with `GripPubControl`.

Run by run_all.py (or by hand with a built gateway):
    python3 Tests/Browser/grip_hold_test.py --gateway .build/debug/comet-gateway

It starts a small application (Python's http.server) whose endpoints answer with gripcontrol's helpers
(create_hold_stream, create_hold_response, create_grip_channel_header) and check every request's Grip-Sig with
gripcontrol's validate_sig, and a gateway configured to proxy to it with a signature key. Then it holds a stream, a
long poll (instruct body) and a long poll with Grip-Channel prev-id, and publishes with GripPubControl. Every check
raises on failure; exit status 0 when all pass.
"""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gripcontrol import (Channel, GripPubControl, HttpResponseFormat, HttpStreamFormat, Response,
                         create_grip_channel_header, create_hold_response, create_hold_stream, validate_sig)
from pubcontrol import Item

KEY = "grip-test-key-of-at-least-32-bytes!"
ISSUER = "comet-gateway"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App(BaseHTTPRequestHandler):
    """The application: every answer is a GRIP instruction made with gripcontrol."""
    signatures = []  # (path, valid) per request

    def log_message(self, *args):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        valid = validate_sig(self.headers.get("Grip-Sig", ""), KEY, ISSUER)
        App.signatures.append((path, valid))
        if not valid:
            return self.answer(403, {"Content-Type": "text/plain"}, b"not through the gateway\n")
        channel = params.get("channel", "")
        if path == "/stream":
            body = create_hold_stream(channel, Response(headers={"Content-Type": "text/plain"}, body="start\n"))
            self.answer(200, {"Content-Type": "application/grip-instruct"}, body.encode())
        elif path == "/poll":
            body = create_hold_response(channel, Response(headers={"Content-Type": "application/json"},
                                                          body='{"messages": []}'), timeout=20)
            self.answer(200, {"Content-Type": "application/grip-instruct"}, body.encode())
        elif path == "/poll-prev":
            header = create_grip_channel_header(Channel(channel, prev_id=params["prev"]))
            self.answer(200, {"Grip-Hold": "response", "Grip-Channel": header, "Grip-Timeout": "20",
                              "Content-Type": "application/json"}, b'{"messages": []}')
        else:
            self.answer(404, {"Content-Type": "text/plain"}, b"no such page\n")

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def wait_for(predicate, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def subscribers(publish_url):
    with urllib.request.urlopen(f"{publish_url}/healthz", timeout=5) as r:
        return json.loads(r.read())["subscribers"]


def get_in_thread(url, results):
    def run():
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                results.append((r.status, dict(r.headers), r.read().decode()))
        except Exception as error:  # noqa: BLE001 - reported by the check that reads results
            results.append((0, {}, f"{type(error).__name__}: {error}"))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    args = parser.parse_args()

    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    public_port, publish_port = free_port(), free_port()
    public, publish = f"http://127.0.0.1:{public_port}", f"http://127.0.0.1:{publish_port}"
    workdir = tempfile.mkdtemp(prefix="comet-grip-")
    config = os.path.join(workdir, "gateway.conf")
    with open(config, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{public_port}"
publish_listen = "127.0.0.1:{publish_port}"
threads = 2
[proxy]
grip_signature_key = "{KEY}"
[[proxy.route]]
upstream = "http://127.0.0.1:{app.server_address[1]}"
""")
    log = open(os.path.join(workdir, "gateway.log"), "wb")
    gateway = subprocess.Popen([args.gateway, "--config", config], stdout=log, stderr=subprocess.STDOUT)
    try:
        def healthy():
            try:
                return subscribers(publish) == 0
            except OSError:
                return False
        wait_for(healthy, "the gateway to start")
        pub = GripPubControl({"control_uri": publish})
        stamp = int(time.time() * 1000)

        # A stream hold: create_hold_stream's start, then publish_http_stream content, then a close.
        channel = f"s{stamp}"
        with urllib.request.urlopen(f"{public}/stream?channel={channel}", timeout=10) as stream:
            assert stream.status == 200 and stream.headers["Content-Type"] == "text/plain", stream.headers
            assert stream.readline() == b"start\n"
            pub.publish_http_stream(channel, "first line\n")
            assert stream.readline() == b"first line\n"
            pub.publish(channel, Item(HttpStreamFormat("second line\n")))
            assert stream.readline() == b"second line\n"
            pub.publish(channel, Item(HttpStreamFormat(close=True)))
            assert stream.read() == b"", "the close action ends the stream"
        print("ok: stream hold (create_hold_stream, publish_http_stream, close)")

        # A response hold from an instruct body: answered by publish_http_response.
        channel = f"r{stamp}"
        results = []
        thread = get_in_thread(f"{public}/poll?channel={channel}", results)
        wait_for(lambda: subscribers(publish) == 1, "the hold to register")
        pub.publish(channel, Item(HttpResponseFormat(code=200, headers={"Content-Type": "application/json",
                                                                        "X-From": "publisher"},
                                                     body='{"messages": ["hello"]}')))
        thread.join(10)
        assert results and results[0][0] == 200, results
        assert results[0][1].get("X-From") == "publisher", results[0][1]
        assert json.loads(results[0][2]) == {"messages": ["hello"]}, results[0][2]
        print("ok: response hold (create_hold_response, publish_http_response)")

        # prev-id in Grip-Channel (create_grip_channel_header): what came after it is answered at once.
        channel = f"p{stamp}"
        pub.publish(channel, Item(HttpResponseFormat(body="one"), id="1"))
        pub.publish(channel, Item(HttpResponseFormat(body="two"), id="2", prev_id="1"))
        with urllib.request.urlopen(f"{public}/poll-prev?channel={channel}&prev=1", timeout=5) as r:
            assert r.read() == b"two"
        results = []
        thread = get_in_thread(f"{public}/poll-prev?channel={channel}&prev=2", results)
        wait_for(lambda: subscribers(publish) == 1, "the caught-up hold to register")
        pub.publish(channel, Item(HttpResponseFormat(body="three"), id="3", prev_id="2"))
        thread.join(10)
        assert results and results[0][2] == "three", results
        print("ok: prev-id (create_grip_channel_header): caught up at once, then held")

        assert App.signatures and all(valid for _, valid in App.signatures), App.signatures
        print(f"ok: all {len(App.signatures)} requests carried a Grip-Sig that validate_sig accepts")
    finally:
        gateway.terminate()
        try:
            gateway.wait(10)
        except subprocess.TimeoutExpired:
            gateway.kill()
        app.shutdown()


if __name__ == "__main__":
    main()
