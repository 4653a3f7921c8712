#!/usr/bin/env python3
"""The gateway's WebSocket transport driven by a third-party client: Python's `websockets` package.

Run by run_all.py (or by hand against a running gateway):
    python3 Tests/Browser/ws_client_test.py --public http://127.0.0.1:8080 --publish http://127.0.0.1:8081

Publishing goes through the `curl` command (libcurl), as a legacy backend's webhook would. Every check raises on
failure; the exit status is 0 only when all passed.
"""
import argparse
import asyncio
import json
import subprocess
import sys

import websockets

PAYLOADS = [
    "plain",
    "</script><script>alert(1)</script>",
    'quotes " and \' and backslash \\ end',
    "two\nlines\r\nand\rmore",
    "separators \u2028 and \u2029",
    "non-ASCII: ünïcødé 日本語 🎉",
    "<!-- comment --> & ampersand",
]


def publish(base, channel, payload):
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-X", "POST", "-H", "Content-Type: text/plain; charset=utf-8",
         "--data-binary", "@-", f"{base}/pub/{channel}"],
        input=payload.encode(), capture_output=True, check=True, timeout=10)
    return json.loads(out.stdout)


def delete(base, channel):
    subprocess.run(["curl", "-sS", "--fail", "-X", "DELETE", f"{base}/pub/{channel}"],
                   capture_output=True, check=True, timeout=10)


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def burst_in_order(args):
    ws_url = args.public.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/sub/wsburst") as ws:
        ack = await recv_json(ws)
        check(ack.get("type") == "subscribed" and ack.get("channel") == "wsburst", f"first frame is the ack: {ack}")
        ids = [publish(args.publish, "wsburst", p)["id"] for p in PAYLOADS]
        got = [await recv_json(ws) for _ in PAYLOADS]
        check([m["data"] for m in got] == PAYLOADS, f"payloads arrive intact and in order: {got}")
        check([m["id"] for m in got] == ids, "ids are the publish receipts' ids")
        check(all(m["channel"] == "wsburst" for m in got), "channel field")
    print("ok: burst of hostile payloads in order", flush=True)


async def resume_after_cut(args):
    ws_url = args.public.replace("http://", "ws://")
    ws = await websockets.connect(f"{ws_url}/sub/wscut")
    await recv_json(ws)
    first = [publish(args.publish, "wscut", f"m{i}")["id"] for i in range(5)]
    got = [await recv_json(ws) for _ in range(5)]
    check([m["id"] for m in got] == first, "first half")
    last = got[-1]["id"]
    ws.transport.abort()  # cut mid-stream: no close handshake
    second = [publish(args.publish, "wscut", f"m{i}")["id"] for i in range(5, 10)]
    async with websockets.connect(f"{ws_url}/sub/wscut?last_event_id={last}") as ws2:
        ack = await recv_json(ws2)
        # The ack's position is just below the first replayed message (position N: everything up to N was seen).
        check(ack["type"] == "subscribed" and int(last) <= int(ack["last_event_id"]) < int(second[0]),
              f"resumed at the cursor: {ack}")
        got2 = [await recv_json(ws2) for _ in range(5)]
        check([m["id"] for m in got2] == second, "nothing lost after the cut")
        check([m["data"] for m in got2] == [f"m{i}" for i in range(5, 10)], "in order")
        try:
            extra = await asyncio.wait_for(ws2.recv(), 0.5)
            raise AssertionError(f"nothing repeated, got {extra}")
        except asyncio.TimeoutError:
            pass
    print("ok: resume after a cut, nothing lost or repeated")


async def control_messages(args):
    ws_url = args.public.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/sub/wsa") as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"type": "subscribe", "channel": "wsb"}))
        ack = await recv_json(ws)
        check(ack == {"type": "subscribed", "channel": "wsb", "last_event_id": ack.get("last_event_id")}, f"{ack}")
        publish(args.publish, "wsb", "to b")
        msg = await recv_json(ws)
        check(msg["channel"] == "wsb" and msg["data"] == "to b", f"{msg}")
        await ws.send("not json")
        err = await recv_json(ws)
        check(err["type"] == "error" and err["status"] == 400, f"{err}")
        await ws.send(json.dumps({"type": "unsubscribe", "channel": "wsb"}))
        check((await recv_json(ws)) == {"type": "unsubscribed", "channel": "wsb"}, "unsubscribed")
        delete(args.publish, "wsa")
        check((await recv_json(ws)) == {"type": "closed", "channel": "wsa"}, "closed")
        try:
            await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError("the socket closes after its last channel")
        except websockets.ConnectionClosed as closed:
            check(closed.rcvd is not None and closed.rcvd.code == 1000, f"close code 1000: {closed.rcvd}")
    print("ok: control messages, channel closed, close 1000")


async def foreign_origin_refused(args):
    ws_url = args.public.replace("http://", "ws://")
    try:
        async with websockets.connect(f"{ws_url}/sub/x", origin="http://evil.example"):
            raise AssertionError("a foreign origin must be refused")
    except websockets.InvalidStatus as refused:
        check(refused.response.status_code == 403, f"403: {refused.response.status_code}")
    print("ok: foreign Origin refused with 403")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--public", required=True)
    parser.add_argument("--publish", required=True)
    args = parser.parse_args()
    for test in (burst_in_order, resume_after_cut, control_messages, foreign_origin_refused):
        await asyncio.wait_for(test(args), 30)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"FAIL: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
