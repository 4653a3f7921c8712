#!/usr/bin/env python3
"""The Bayeux endpoint (/cometd) driven by a third-party CometD client: `aiocometd-noloop` (PyPI).

Run by run_all.py (or by hand with a built gateway):
    python3 Tests/Browser/bayeux_client_test.py --gateway .build/debug/comet-gateway

It starts a small application (Python's http.server) that receives relayed client publishes (bayeux.relay_url),
a gateway configured to relay to it, and a TCP relay in front of the gateway that can drop one HTTP response on
its way to the client (a /meta/connect reply lost in the network). Then, with aiocometd's long-polling and
websocket transports:
  - a plain, a one-segment (/chat/*) and a deep (/news/**) subscription; a burst published with the curl command
    (libcurl, as a legacy backend's webhook) arrives in order, exactly once, JSON bodies parsed, text as strings;
  - a client publish is relayed to the application (channel, data, clientId, the client's headers) and broadcast
    to Bayeux subscribers and to /sub/ (SSE) subscribers; one the application refuses fails with its status;
  - a /sub/ WebSocket client's publish message is relayed the same way (Python's `websockets` package);
  - a /service/ publish goes to the application only, whose JSON answer comes back to the caller alone;
  - with the CometD ack extension (written against aiocometd's Extension API, as CometD's is), a connect reply lost
    on the way is delivered again; the same over a new WebSocket with the same clientId (the `websockets` package).
Every check raises on failure; exit status 0 when all pass.
"""
import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import websockets
from aiocometd_noloop import Client, ConnectionType
from aiocometd_noloop.exceptions import ServerError
from aiocometd_noloop.extensions import Extension

# aiocometd logs the cancellation of its own tasks at exit as errors; they are not failures.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
logging.getLogger("aiocometd_noloop").setLevel(logging.CRITICAL)

TYPES = {"long-polling": ConnectionType.LONG_POLLING, "websocket": ConnectionType.WEBSOCKET}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App(BaseHTTPRequestHandler):
    """The application behind the relay: records each publish; refuses /chat/forbidden; answers /service/echo."""
    received = []  # (headers, body) per relayed publish

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        App.received.append((dict(self.headers), body))
        if body["channel"] in ("/chat/forbidden", "chat.forbidden.x"):
            return self.answer(403, b"no\n")
        if body["channel"] == "/service/echo":
            return self.answer(200, json.dumps({"echo": body["data"]}).encode(), "application/json")
        self.answer(204, b"")

    def answer(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DroppingRelay:
    """A TCP relay to the gateway that, when armed, drops the next HTTP response whose body holds `marker` (the
    client's connection is closed instead), as a network losing a /meta/connect reply."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.armed = None  # the marker, while armed
        self.dropped = 0

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def serve(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def up():
            try:
                while data := await client_reader.read(65536):
                    upstream_writer.write(data)
                    await upstream_writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            upstream_writer.close()

        async def down():
            try:
                while True:
                    head = await upstream_reader.readuntil(b"\r\n\r\n")
                    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))
                    body = await upstream_reader.readexactly(length)
                    if self.armed and self.armed in body:
                        self.armed = None
                        self.dropped += 1
                        break
                    client_writer.write(head + body)
                    await client_writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, StopIteration, asyncio.CancelledError):
                pass
            client_writer.close()
            upstream_writer.close()

        await asyncio.gather(up(), down())


class AckExtension(Extension):
    """CometD's acknowledgement extension, as its JavaScript and Java clients implement it."""

    def __init__(self):
        self.enabled = False
        self.batch = None

    async def outgoing(self, payload, headers):
        for message in payload:
            if message["channel"] == "/meta/handshake":
                message.setdefault("ext", {})["ack"] = True
            elif message["channel"] == "/meta/connect" and self.enabled and self.batch is not None:
                message.setdefault("ext", {})["ack"] = self.batch

    async def incoming(self, payload, headers=None):
        for message in payload:
            ext = message.get("ext") or {}
            if message["channel"] == "/meta/handshake":
                self.enabled = ext.get("ack") is True
                self.batch = None
            elif message["channel"] == "/meta/connect" and message.get("successful") and isinstance(ext.get("ack"), int):
                self.batch = ext["ack"]


def publish(publish_url, channel, body, content_type="application/json"):
    out = subprocess.run(["curl", "-sS", "--fail", "-X", "POST", "-H", f"Content-Type: {content_type}",
                          "--data-binary", "@-", f"{publish_url}/pub/{channel}"],
                         input=body.encode(), capture_output=True, check=True, timeout=10)
    return json.loads(out.stdout)


async def publish_async(publish_url, channel, body, content_type="application/json"):
    return await asyncio.to_thread(publish, publish_url, channel, body, content_type)


async def collect(client, count, timeout=15):
    got = []
    async def run():
        async for message in client:
            got.append(message)
            if len(got) == count:
                return
    await asyncio.wait_for(run(), timeout)
    return got


async def burst_case(public, publish_url, kind, stamp):
    """Plain, one-segment and deep wildcard subscriptions; a libcurl burst arrives in order, exactly once."""
    room, news = f"/chat{stamp}/room1", f"/news{stamp}"
    async with Client(f"{public}/cometd", connection_types=[TYPES[kind]]) as client:
        await client.subscribe(room)
        await client.subscribe(f"/chat{stamp}/*")  # matches room1 too: each message still arrives once
        await client.subscribe(f"{news}/**")
        expected = []
        for n in range(40):
            receipt = await publish_async(publish_url, f"chat{stamp}.room1", json.dumps({"n": n, "text": "</script>\u2028"}))
            expected.append((room, receipt["id"], {"n": n, "text": "</script>\u2028"}))
        # Not matched: two segments below /chat{stamp}/*, and a sibling of the deep wildcard's root.
        await publish_async(publish_url, f"chat{stamp}.room1.deeper", '"no"')
        await publish_async(publish_url, f"newsx{stamp}", '"no"')
        receipt = await publish_async(publish_url, f"news{stamp}.a.b", "plain text, not JSON", "text/plain")
        expected.append((f"{news}/a/b", receipt["id"], "plain text, not JSON"))
        receipt = await publish_async(publish_url, f"news{stamp}.a", "{broken json", "application/json")
        expected.append((f"{news}/a", receipt["id"], "{broken json"))
        got = await collect(client, len(expected))
        actual = [(m["channel"], m["id"], m["data"]) for m in got]
        assert actual == expected, f"{kind}: {actual[:3]}… != {expected[:3]}…"
        await asyncio.sleep(0.3)
        assert client.has_pending_messages is False, f"{kind}: more than expected arrived"
    print(f"ok: {kind}: plain, /* and /** subscriptions; {len(expected)} messages in order, once each, "
          "JSON parsed and text as strings")


def sse_lines(url, lines, stop):
    with urllib.request.urlopen(url, timeout=20) as stream:
        while not stop.is_set():
            line = stream.readline()
            if not line:
                return
            lines.append(line.decode().rstrip("\n"))


async def relay_case(public, publish_url, stamp):
    """A client publish goes to the application, then to Bayeux and /sub/ subscribers; a refusal carries the status."""
    channel = f"/chat{stamp}/room2"
    lines, stop = [], threading.Event()
    reader = threading.Thread(target=sse_lines, args=(f"{public}/sub/chat{stamp}.room2?transport=sse", lines, stop),
                              daemon=True)
    reader.start()
    deadline = time.time() + 10
    while not lines and time.time() < deadline:  # the stream's start (retry:) says it is subscribed
        await asyncio.sleep(0.02)
    assert lines, "the SSE subscriber started"
    async with Client(f"{public}/cometd", connection_types=[ConnectionType.LONG_POLLING]) as listener, \
            Client(f"{public}/cometd", connection_types=[ConnectionType.WEBSOCKET]) as sender:
        await listener.subscribe(channel)
        before = len(App.received)
        reply = await sender.publish(channel, {"text": "hi", "n": 1})
        assert reply["successful"] is True, reply
        got = await collect(listener, 1)
        assert got[0]["channel"] == channel and got[0]["data"] == {"text": "hi", "n": 1}, got
        headers, body = App.received[before]
        assert body == {"channel": channel, "gateway_channel": f"chat{stamp}.room2", "data": {"text": "hi", "n": 1},
                        "clientId": sender._transport.client_id, "source": "bayeux"}, body
        assert headers.get("Content-Type") == "application/json", headers
        deadline = time.time() + 10
        while not any(line.startswith("data: ") for line in lines) and time.time() < deadline:
            await asyncio.sleep(0.05)
        data = next(line[6:] for line in lines if line.startswith("data: "))
        assert json.loads(data) == {"text": "hi", "n": 1}, data
        try:
            await sender.publish("/chat/forbidden", {"x": 1})
            raise AssertionError("a refused publish succeeded")
        except ServerError as error:
            assert "403" in str(error.response.get("error")), error.response
        # A service: to the application only; its JSON answer comes back to the caller.
        reply = await sender.publish("/service/echo", {"q": 7})
        assert reply["successful"] is True, reply
        answer = await collect(sender, 1)
        assert answer[0]["channel"] == "/service/echo" and answer[0]["data"] == {"echo": {"q": 7}}, answer
    stop.set()
    print("ok: client publishes relayed to the application (channel, data, clientId), broadcast to Bayeux and "
          "SSE subscribers; a refusal carries the application's 403; a /service/ answer returns to its caller")


async def websocket_publish_case(public, stamp):
    """A /sub/ WebSocket client publishes with a control message: relayed (with the handshake's cookie), then
    delivered to the channel's subscribers, itself included, and acknowledged with the message id."""
    channel = f"wspub{stamp}.room"
    url = public.replace("http://", "ws://") + f"/sub/{channel}"
    async with websockets.connect(url, additional_headers={"Cookie": "session=ws"}) as ws:
        subscribed = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert subscribed["type"] == "subscribed", subscribed
        before = len(App.received)
        await ws.send(json.dumps({"type": "publish", "channel": channel, "data": {"from": "ws", "n": [1, 2]}}))
        frames = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
        published = next(f for f in frames if f.get("type") == "published")
        message = next(f for f in frames if "data" in f)
        assert published["channel"] == channel and published["id"] == message["id"], frames
        assert json.loads(message["data"]) == {"from": "ws", "n": [1, 2]}, message
        headers, body = App.received[before]
        assert body == {"channel": channel, "gateway_channel": channel, "data": {"from": "ws", "n": [1, 2]},
                        "source": "websocket"}, body
        assert headers.get("Cookie") == "session=ws", headers
        await ws.send(json.dumps({"type": "publish", "channel": "chat.forbidden.x", "data": 1}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error" and error["status"] == 403, error
    print("ok: a /sub/ WebSocket client's publish message is relayed with its cookie, broadcast and acknowledged; "
          "a refusal comes back as an error with the application's status")


async def ack_case(public, publish_url, public_port, stamp):
    """A lost connect reply is delivered again (ack extension), through a relay that drops it."""
    relay = DroppingRelay(public_port)
    port = await relay.start()
    ack = AckExtension()
    channel = f"/ack{stamp}/room"
    async with Client(f"http://127.0.0.1:{port}/cometd", connection_types=[ConnectionType.LONG_POLLING],
                      extensions=[ack]) as client:
        await client.subscribe(channel)
        assert ack.enabled, "the handshake reply enables ack"
        relay.armed = f'"channel":"{channel}"'.encode()
        expected = []
        for n in range(3):
            receipt = await publish_async(publish_url, f"ack{stamp}.room", json.dumps(n))
            expected.append(receipt["id"])
        got = await collect(client, 3, timeout=20)
        assert relay.dropped == 1, "the relay dropped a reply that carried the messages"
        for n in range(3, 6):
            receipt = await publish_async(publish_url, f"ack{stamp}.room", json.dumps(n))
            expected.append(receipt["id"])
        got += await collect(client, 3)
        assert [m["id"] for m in got] == expected and [m["data"] for m in got] == list(range(6)), got
    relay.server.close()
    print("ok: ack extension: a /meta/connect reply lost on the way was delivered again, nothing lost or repeated")


async def ws_ack_case(public, publish_url, stamp):
    """With ack, events a client did not acknowledge come again on a new WebSocket with the same clientId."""
    url = public.replace("http://", "ws://") + "/cometd"
    channel = f"/wsack{stamp}/room"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps([{"channel": "/meta/handshake", "version": "1.0", "id": "1",
                                   "supportedConnectionTypes": ["websocket"], "ext": {"ack": True}}]))
        shake = json.loads(await ws.recv())[0]
        assert shake["successful"] and shake["ext"] == {"ack": True}, shake
        client_id = shake["clientId"]
        assert len(client_id) >= 16 and client_id.isalnum(), client_id
        await ws.send(json.dumps([{"channel": "/meta/subscribe", "clientId": client_id, "id": "2",
                                   "subscription": channel}]))
        assert json.loads(await ws.recv())[0]["successful"]
        await ws.send(json.dumps([{"channel": "/meta/connect", "clientId": client_id, "id": "3",
                                   "connectionType": "websocket"}]))
        first = json.loads(await ws.recv())[-1]
        assert first["channel"] == "/meta/connect" and first["successful"], first
        await ws.send(json.dumps([{"channel": "/meta/connect", "clientId": client_id, "id": "4",
                                   "connectionType": "websocket", "ext": {"ack": first["ext"]["ack"]}}]))
        await asyncio.sleep(0.2)
        receipt = await publish_async(publish_url, f"wsack{stamp}.room", '{"v": 1}')
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert [m.get("data") for m in reply[:-1]] == [{"v": 1}] and reply[-1]["channel"] == "/meta/connect", reply
        lost_batch = reply[-1]["ext"]["ack"]
    # The socket is gone before the client acknowledged that reply: a new one, the same client, the old ack.
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps([{"channel": "/meta/connect", "clientId": client_id, "id": "5",
                                   "connectionType": "websocket", "ext": {"ack": first["ext"]["ack"]}}]))
        again = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert [(m.get("id"), m.get("data")) for m in again[:-1]] == [(receipt["id"], {"v": 1})], again
        assert again[-1]["ext"]["ack"] > lost_batch, again
        await ws.send(json.dumps([{"channel": "/meta/disconnect", "clientId": client_id, "id": "6"}]))
        bye = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert bye[-1]["channel"] == "/meta/disconnect" and bye[-1]["successful"], bye
    async with websockets.connect(url) as ws:
        await ws.send("{not bayeux")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("a malformed message was answered")
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1007, closed
    print("ok: ack extension over WebSocket: an unacknowledged reply was delivered again on a new socket; "
          "a message that is not Bayeux closes the socket with 1007")


async def run(public, publish_url, public_port):
    stamp = int(time.time() * 1000) % 10_000_000
    for kind in TYPES:
        await burst_case(public, publish_url, kind, stamp)
        stamp += 1
    await relay_case(public, publish_url, stamp)
    await websocket_publish_case(public, stamp)
    await ack_case(public, publish_url, public_port, stamp)
    await ws_ack_case(public, publish_url, stamp)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    args = parser.parse_args()

    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    public_port, publish_port = free_port(), free_port()
    public, publish_url = f"http://127.0.0.1:{public_port}", f"http://127.0.0.1:{publish_port}"
    workdir = tempfile.mkdtemp(prefix="comet-bayeux-")
    config = os.path.join(workdir, "gateway.conf")
    with open(config, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{public_port}"
publish_listen = "127.0.0.1:{publish_port}"
threads = 2
[bayeux]
timeout = 5
relay_url = "http://127.0.0.1:{app.server_address[1]}/relay"
""")
    log = open(os.path.join(workdir, "gateway.log"), "wb")
    gateway = subprocess.Popen([args.gateway, "--config", config], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 15
        while True:
            try:
                urllib.request.urlopen(f"{publish_url}/healthz", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        asyncio.run(asyncio.wait_for(run(public, publish_url, public_port), 120))
    finally:
        gateway.terminate()
        try:
            gateway.wait(10)
        except subprocess.TimeoutExpired:
            gateway.kill()
        app.shutdown()


if __name__ == "__main__":
    main()
