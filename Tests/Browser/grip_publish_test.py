#!/usr/bin/env python3
"""Publishing to the gateway exactly as Pushpin's users do: the `gripcontrol` and `pubcontrol` packages (PyPI).

Run by run_all.py (or by hand against a running gateway):
    python3 Tests/Browser/grip_publish_test.py --public http://127.0.0.1:8080 --publish http://127.0.0.1:8081

A subscriber reads the channel as NDJSON (`?transport=stream`) while GripPubControl publishes an http-stream, an
http-response and a ws-message item, and a raw EPCP body with all three formats; each must arrive once, in order,
with its content. Bad bodies must get Pushpin's answers. Every check raises on failure; exit status 0 when all pass.
"""
import argparse
import json
import threading
import time
import urllib.error
import urllib.request

from gripcontrol import GripPubControl, HttpResponseFormat, HttpStreamFormat, WebSocketMessageFormat
from pubcontrol import Item


def read_stream(url, lines, stop):
    with urllib.request.urlopen(url, timeout=15) as response:
        while not stop.is_set():
            line = response.readline()
            if not line:
                return
            if line.strip():  # a blank line is the stream's heartbeat (transports.heartbeat_interval)
                lines.append(json.loads(line))


def post(url, body, accept=None):
    request = urllib.request.Request(url, data=body, method="POST")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--public", required=True)
    parser.add_argument("--publish", required=True)
    args = parser.parse_args()
    channel = f"grip-{int(time.time() * 1000)}"
    lines, stop = [], threading.Event()
    reader = threading.Thread(target=read_stream, args=(f"{args.public}/sub/{channel}?transport=stream", lines, stop),
                              daemon=True)
    reader.start()
    deadline = time.time() + 5
    while not lines and time.time() < deadline:
        time.sleep(0.05)
    assert lines and "last_event_id" in lines[0], f"the stream started: {lines}"

    pub = GripPubControl({"control_uri": args.publish})
    pub.publish_http_stream(channel, "stream content: ünïcødé\n")
    pub.publish_http_response(channel, "response body </script>")
    pub.publish(channel, Item(WebSocketMessageFormat("ws content \"quoted\"")))
    pub.publish(channel, Item([HttpStreamFormat("all three: stream"), HttpResponseFormat(body="all three: response"),
                               WebSocketMessageFormat("all three: ws")]))
    expected = ["stream content: ünïcødé\n", "response body </script>", "ws content \"quoted\"", "all three: stream"]
    deadline = time.time() + 5
    while len([m for m in lines if "data" in m]) < len(expected) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    got = [m["data"] for m in lines if "data" in m]
    assert got == expected, f"messages in order, once each: {got}"
    print(f"ok: {len(got)} GripPubControl publishes arrived in order")

    url = f"{args.publish}/publish/"
    checks = [
        (b"not json", None, 400, "Body is not valid JSON.\n"),
        (b"[]", None, 400, "Invalid format.\n"),
        (b"{}", None, 400, "Invalid format: object does not contain 'items'\n"),
        (b'{"items": 3}', None, 400, "Invalid format: object contains 'items' with wrong type\n"),
        (b'{"items": [{"formats": {"http-stream": {"content": "x"}}}]}', None, 400,
         "Invalid format: publish item object does not contain 'channel'\n"),
        (b'{"items": [{"channel": "c"}]}', None, 400, "Invalid format: no formats specified\n"),
        (b'{"items": []}', "application/json", 200, '{"message": "Published"}\n'),
        (b'{"items": []}', "image/png", 406, "Not Acceptable. Supported formats are text/plain and application/json.\n"),
    ]
    for body, accept, status, text in checks:
        got_status, _, got_text = post(url, body, accept)
        assert (got_status, got_text) == (status, text), f"{body!r}: {got_status} {got_text!r}"
    print(f"ok: {len(checks)} EPCP answers as Pushpin gives them")


if __name__ == "__main__":
    main()
