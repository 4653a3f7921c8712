#!/usr/bin/env python3
"""Browser and client tests of comet-gateway, against the built gateway binary.

    python3 Tests/Browser/run_all.py --gateway .build/debug/comet-gateway

Starts, all on loopback and on free ports:
  - the gateway (public listener 127.0.0.1:P, publisher 127.0.0.1:PP) with a temporary configuration;
  - a TCP relay 127.0.0.1:R -> the public listener that can cut every open connection at once (RST both sides).
    Browsers reach the gateway only through it, as http://localhost:R;
  - a page server on 127.0.0.1:S (an allowed origin) and one on 127.0.0.2:S2 (not allowed) serving test.html,
    which loads http://localhost:R/comet.js and harness.js;
  - headless Chromium through selenium.

Then, for every transport (websocket, sse, stream, poll, iframe, jsonp) and both modes (same origin: the gateway's
own demo page, into which harness.js is injected; cross origin: test.html on 127.0.0.1:S), it subscribes through
comet.js on a fresh channel, publishes a burst of hostile payloads with the curl CLI, cuts every connection,
publishes more, and checks that everything arrives exactly once, in order, byte for byte, with the publish
receipts' ids. A page on a non-allowed origin checks comet.js's fallback and the gateway's refusals. Last, it runs
ws_client_test.py (Python's `websockets` client), grip_publish_test.py (Pushpin's Python publishing libraries) and
grip_hold_test.py (an application built with gripcontrol, behind a gateway of its own) and bayeux_client_test.py (a
CometD client, aiocometd-noloop, against /cometd of a gateway of its own)
against the gateway.

Prints one line per check and a summary; exits 0 only when every check passed. Every wait is bounded, and the
whole run is held to a time budget (about a minute when all pass). See README.md next to this file.
"""
import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
TRANSPORTS = ["websocket", "sse", "stream", "poll", "iframe", "jsonp"]
MODES = ["same-origin", "cross-origin"]
# Transports on which comet.js reports 'open' as soon as the connection starts (poll and jsonp: with their first
# answer, which for a subscription without a cursor is the first message).
STREAMING = {"websocket", "sse", "stream", "iframe"}

# The first burst. Each one is hostile to one layer: HTML (a script end tag, a comment opener, markup, &), JavaScript
# (quotes, backslashes, escapes written out, the two line terminators JSON allows in strings but older JavaScript
# did not), line framing (LF, CRLF, a lone CR, a trailing newline) and UTF-8 (non-BMP emoji, CJK, combining marks).
# If an encoding ever let markup through (an iframe script ended early, say), the script or the onerror handler
# would set window.__injected in the page (same-origin pages; cross origin, the payload comparison catches it).
BURST = [
    "plain ASCII",
    "</script><script>top.__injected = 'script end tag'</script>",
    "<!-- not a comment --> <![CDATA[ ]]> <b>bold</b> <img src=x onerror=\"top.__injected='img'\">",
    "quotes \" and ' and ` and \\\" and \\' ",
    "backslashes \\ \\\\ and escapes written out: \\n \\u2028 \\x3c/script> \\/",
    "two\nlines",
    "CRLF\r\nline\r\nand a lone CR\rhere\n",
    "line separator \u2028 and paragraph separator \u2029 in text",
    "emoji 🎉👍🏽🇫🇷, CJK 日本語 中文 한국어, ünïcødé and a combining accent e\u0301",
    "ampersands & &amp; &lt;&gt; &#x3c; && <>",
]
# Published right after the cut, while the client reconnects.
AFTER_CUT = [f"after cut #{i}: </script> <!-- & \" \\ \u2028 \u2029 \r\n 🚀 {i}" for i in range(1, 6)]
OUTAGE = 1.0           # s after a cut during which the relay resets every new connection (the network is down)
PUBLISH_SPACING = 0.3  # s between the after-cut publishes: the first ones land during the outage (only a resume
                       # from the cursor can deliver them), the last ones around and after the reconnect
QUIET = 1.5            # s to wait after the last expected message for anything extra (a repeat)
IFRAME_STALL_TIMEOUT = 6  # s: comet.js's stallTimeout for the iframe cases (see transport_case)
BUDGET = 240.0         # s: past this the remaining cases are failed, not run
HARD_LIMIT = 285       # s: past this the run is stopped wherever it is (then cleaned up): it stays under 5 min


def sse_data(payload):
    """What an EventSource can deliver of a payload: SSE ends a data line at CR, LF or CRLF and joins the lines
    with LF, so every CR and CRLF arrives as LF (a property of the format, documented in README's SSE section)."""
    return re.sub(r"\r\n?", "\n", payload)


class Timeout(Exception):
    """A bounded wait ran out."""


class Stopped(BaseException):
    """SIGTERM or the hard time limit: stop wherever the run is, then clean up (like KeyboardInterrupt)."""


def stop_run(signum, _frame):
    raise Stopped("SIGTERM" if signum == signal.SIGTERM else f"hard time limit of {HARD_LIMIT} s")


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns something truthy (returned) or `timeout` seconds pass (Timeout, saying
    `what` was awaited; `what` may be a function, called then, to describe the state at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- the gateway ------------------------------------------------------------------------------------------------

class Gateway:
    """The gateway binary with a temporary configuration: public listener on 127.0.0.1:`port`, publisher on a free
    loopback port. stop() ends it: SIGTERM (a graceful drain), then SIGKILL if it is still there 5 s later."""

    def __init__(self, binary, port, allowed_origins, workdir):
        self.binary = binary
        self.port = port
        self.publish_port = free_port()
        self.config = os.path.join(workdir, "gateway.conf")
        self.logfile = os.path.join(workdir, "gateway.log")
        origins = ", ".join(json.dumps(o) for o in allowed_origins)
        with open(self.config, "w") as f:
            f.write(f"""# written by Tests/Browser/run_all.py
[server]
listen = "127.0.0.1:{self.port}"
publish_listen = "127.0.0.1:{self.publish_port}"
threads = 2
[transports]
allowed_origins = [{origins}]
# Short, so that every case also sees heartbeats (SSE comments, empty NDJSON lines, iframe heartbeat scripts)
# and WebSocket pings that Chromium must answer.
heartbeat_interval = 2.0
""")
        self.process = None
        self.log = None

    @property
    def public_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def publish_url(self):
        return f"http://127.0.0.1:{self.publish_port}"

    def start(self):
        self.log = open(self.logfile, "wb")
        self.process = subprocess.Popen([self.binary, "--config", self.config], stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                for url in (self.public_url, self.publish_url):
                    with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                        if r.status != 200:
                            return False
                return True
            except OSError:
                return False
        wait_until(healthy, 20, "the gateway's /healthz on both listeners", interval=0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: graceful drain
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.log:
            self.log.close()

    def log_tail(self, lines=30):
        try:
            with open(self.logfile, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- the publisher listener. Publishing goes through the curl CLI (libcurl), as a legacy backend's would.

    def publish(self, channel, payload):
        """POST /pub/{channel} with curl; returns the receipt ({"channel", "id", "subscribers"})."""
        out = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--max-time", "10", "-X", "POST",
             "-H", "Content-Type: text/plain; charset=utf-8", "--data-binary", "@-",
             f"{self.publish_url}/pub/{channel}"],
            input=payload.encode("utf-8"), capture_output=True, timeout=15)
        if out.returncode != 0:
            raise RuntimeError(f"curl publish to {channel} failed ({out.returncode}): "
                               f"{out.stdout.decode(errors='replace')}{out.stderr.decode(errors='replace')}")
        return json.loads(out.stdout)

    def subscribers(self, channel):
        """The number of subscriber connections of a channel (GET /pub/{channel}; 404 = none and no message)."""
        try:
            with urllib.request.urlopen(f"{self.publish_url}/pub/{channel}", timeout=5) as r:
                return json.loads(r.read())["subscribers"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return 0
            raise


# ---- the relay --------------------------------------------------------------------------------------------------

class Relay:
    """A TCP relay on 127.0.0.1 to the gateway's public port, run by an asyncio loop on its own thread.

    Bytes are copied as they come, both ways (HTTP, chunked streams and WebSocket frames alike), and an end of
    stream is passed on as a half close. cut() drops every open connection at once: both sockets are closed with
    SO_LINGER 0, so the browser and the gateway each get a RST, as when a proxy or a mobile network dies; for
    `outage` seconds after, every new connection is reset as soon as it is accepted (the network is still down).
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.pairs = set()  # (browser-side writer, gateway-side writer) of each open connection
        self.accepted = 0         # connections relayed
        self.refused = 0          # connections reset during an outage
        self.down_until = 0.0     # time.monotonic() until which new connections are reset
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="relay", daemon=True)
        self.server = None
        self.port = None

    def start(self):
        self.thread.start()

        async def listen():
            return await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = self._run(listen())
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self):
        if not self.thread.is_alive():
            return

        async def shutdown():
            self.server.close()
            self._abort_all()
        try:
            self._run(shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def cut(self, outage=0.0):
        """Drops every open connection (RST both ways) and resets new ones for `outage` seconds; returns how many
        connections were open."""
        async def cut():
            self.down_until = time.monotonic() + outage
            return self._abort_all()
        return self._run(cut())

    def _run(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _abort_all(self):
        pairs = list(self.pairs)
        self.pairs.clear()
        for pair in pairs:
            for writer in pair:
                self._reset(writer)
        return len(pairs)

    @staticmethod
    def _reset(writer):
        sock = writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError):
            pass  # already closed
        writer.transport.abort()

    async def _serve(self, browser_reader, browser_writer):
        if time.monotonic() < self.down_until:
            self.refused += 1
            self._reset(browser_writer)
            return
        self.accepted += 1
        try:
            gateway_reader, gateway_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target_port), 5)
        except (OSError, asyncio.TimeoutError):
            self._reset(browser_writer)
            return
        pair = (browser_writer, gateway_writer)
        self.pairs.add(pair)
        try:
            await asyncio.gather(self._pump(browser_reader, gateway_writer, pair),
                                 self._pump(gateway_reader, browser_writer, pair))
        finally:
            if pair in self.pairs:  # ended by itself (not cut): close both sides normally
                self.pairs.discard(pair)
                for writer in pair:
                    writer.close()

    async def _pump(self, reader, writer, pair):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()  # pass the half close on
        except (OSError, RuntimeError):
            # One side failed (reset, or cut): fail the other side the same way.
            if pair in self.pairs:
                self.pairs.discard(pair)
                for w in pair:
                    self._reset(w)


# ---- the page servers -------------------------------------------------------------------------------------------

TEST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>comet.js cross-origin test</title></head>
<body>
<p>comet.js test page on {page_origin}; gateway {gateway}.</p>
<script src="{gateway}/comet.js"></script>
<script src="/harness.js"></script>
</body></html>
"""


class PageServer:
    """Serves test.html and harness.js on host:port (a page origin other than the gateway's)."""

    def __init__(self, host, gateway_origin):
        with open(os.path.join(HERE, "harness.js"), "rb") as f:
            harness = f.read()
        port = free_port(host)
        origin = f"http://{host}:{port}"
        page = TEST_PAGE.format(page_origin=origin, gateway=gateway_origin).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                if path == "/test.html":
                    self._send(200, "text/html; charset=utf-8", page)
                elif path == "/harness.js":
                    self._send(200, "application/javascript; charset=utf-8", harness)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.origin = origin
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"pages {origin}", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the browser ------------------------------------------------------------------------------------------------

class Browser:
    """Headless Chromium through selenium and the system's chromedriver (never downloads a driver)."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            raise RuntimeError("chromium or chromedriver is missing (scripts/test.sh installs them)")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                     "--window-size=1280,900"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.driver.set_page_load_timeout(15)
        self.driver.set_script_timeout(10)
        self.version = self.driver.capabilities.get("browserVersion", "?")

    def open(self, url):
        self.console()  # drop what the previous page logged
        self.driver.get(url)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def console(self):
        """The browser console since the last call, as text lines."""
        try:
            return [f"{e.get('level')}: {e.get('message')}" for e in self.driver.get_log("browser")]
        except Exception:  # noqa: BLE001 - diagnostics only
            return []

    def quit(self):
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 - best effort at the end
            pass


# ---- checks and reporting ---------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, case, what, ok, detail=""):
        line = f"{'PASS' if ok else 'FAIL'}  {case:<26} {what}"
        if detail:
            line += f"  [{detail}]"
        print(line, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(f"{case}: {what}")
        return ok

    def note(self, text):
        print(f"      {text}", flush=True)


class PageLog:
    """The harness's log in one page, read incrementally."""

    def __init__(self, browser):
        self.browser = browser
        self.entries = []
        self.transports = []
        self.injected = None

    def refresh(self):
        state = self.browser.js("return window.__cometTest.state(arguments[0]);", len(self.entries))
        self.entries += state["log"]
        self.transports = state["transports"]
        self.injected = state["injected"]
        return self

    def of(self, kind, sub=0):
        return [e for e in self.entries if e["kind"] == kind and e.get("sub") == sub]

    def messages(self, sub=0):
        return self.of("message", sub)

    def statuses(self, sub=0):
        return self.of("status", sub)

    def mark(self, what):
        self.browser.js("window.__cometTest.mark(arguments[0]);", what)
        self.refresh()
        return [e for e in self.entries if e["kind"] == "mark" and e["what"] == what][-1]["seq"]

    def wait_messages(self, count, timeout, sub=0):
        return wait_until(lambda: len(self.refresh().messages(sub)) >= count, timeout,
                          lambda: f"{count} messages (have {len(self.messages(sub))})")

    def wait_status(self, status, timeout, sub=0):
        return wait_until(lambda: [s for s in self.refresh().statuses(sub) if s["status"] == status], timeout,
                          f"status {status!r}")

    def status_line(self, sub=0):
        return " ".join(s["status"] + ("" if s["detail"] is None else ":" + json.dumps(s["detail"]))
                        for s in self.statuses(sub))


def compare(got, expected_data, expected_ids, channel):
    """'' when the messages are exactly the expected ones (data, order, ids, channel); else what differs."""
    data = [m["data"] for m in got]
    ids = [m["id"] for m in got]
    if data != expected_data:
        for i, (a, b) in enumerate(zip(data, expected_data)):
            if a != b:
                return f"message {i}: got {a!r}, expected {b!r}"
        return f"got {len(data)} messages, expected {len(expected_data)}: {data[len(expected_data):]!r}"
    if ids != expected_ids:
        return f"ids {ids} != receipts {expected_ids}"
    channels = {m["channel"] for m in got}
    if channels != {channel}:
        return f"channels {channels}, expected {channel}"
    return ""


# ---- the cases --------------------------------------------------------------------------------------------------

class Suite:
    def __init__(self, gateway, relay, pages, foreign_pages, browser, report):
        self.gateway = gateway
        self.relay = relay
        self.pages = pages
        self.foreign_pages = foreign_pages
        self.browser = browser
        self.report = report
        self.gateway_origin = f"http://localhost:{relay.port}"  # the gateway as browsers see it
        self.token = secrets.token_hex(3)

    def open_page(self, mode, pages=None):
        """Opens a page with comet.js and harness.js installed; returns its PageLog."""
        if mode == "same-origin":
            # The gateway's demo page has comet.js; harness.js is injected into it.
            self.browser.open(self.gateway_origin + "/")
            wait_until(lambda: self.browser.js("return !!window.Comet;"), 10, "comet.js on the demo page")
            with open(os.path.join(HERE, "harness.js")) as f:
                self.browser.js(f.read())
        else:
            self.browser.open((pages or self.pages).origin + "/test.html")
        wait_until(lambda: self.browser.js("return !!(window.Comet && window.__cometTest);"), 10,
                   "comet.js and harness.js in the page")
        return PageLog(self.browser)

    def diagnostics(self, page):
        """Prints what helps explain a failure: comet.js statuses, the page log, the console, the gateway log."""
        r = self.report
        if page is not None:
            try:
                page.refresh()
            except Exception:  # noqa: BLE001 - the page itself may be the problem
                pass
            for sub in sorted({e.get("sub") for e in page.entries if e.get("sub") is not None}):
                r.note(f"statuses[{sub}]: {page.status_line(sub)}")
            for e in page.entries:
                if e["kind"] not in ("status", "message"):
                    r.note(f"page: {json.dumps(e)}")
            r.note(f"messages: {[(m['id'], m['data'][:24]) for m in page.messages()]}")
        for line in self.browser.console():
            r.note(f"console: {line[:300]}")
        r.note(f"gateway log (tail):\n{self.gateway.log_tail(12)}")

    def transport_case(self, transport, mode):
        case = f"{transport}/{mode}"
        check = self.report.check
        channel = f"b-{transport}-{'so' if mode == 'same-origin' else 'xo'}-{self.token}"
        expect = [sse_data(p) for p in BURST + AFTER_CUT] if transport == "sse" else BURST + AFTER_CUT
        failures = len(self.report.failed)
        page = None
        try:
            page = self.open_page(mode)
            # A forever frame whose connection drops gets no load or error event in Chromium (its document stays
            # 'loading'), so comet.js can only notice the drop with its stall timer: stallTimeout seconds without
            # even a heartbeat. The default is 45 s; the test gateway's heartbeat is every 2 s, so 6 s is ample.
            options = {"stallTimeout": IFRAME_STALL_TIMEOUT} if transport == "iframe" else None
            self.browser.js("return window.__cometTest.start(arguments[0], arguments[1], arguments[2], arguments[3]);",
                            channel, self.gateway_origin, [transport], options)
            # The gateway has registered the subscription: nothing published from now on can be missed.
            wait_until(lambda: self.gateway.subscribers(channel) >= 1, 15, "the gateway to count the subscriber")
            if transport in STREAMING:
                page.wait_status("open", 15)
            page.refresh()
            check(case, f"subscribes on {transport}", page.transports[0] == transport,
                  f"handle.transport = {page.transports[0]}")

            # 1. A burst of hostile payloads, exact and in order, with the receipts' ids.
            receipts = [self.gateway.publish(channel, p)["id"] for p in BURST]
            page.wait_messages(len(BURST), 15)
            first = page.messages()[:len(BURST)]
            diff = compare(first, expect[:len(BURST)], receipts, channel)
            check(case, f"burst: {len(BURST)} hostile payloads exact, in order, id = receipt id", not diff,
                  diff or ("SSE framing: CR and CRLF arrive as LF" if transport == "sse" else ""))
            opened = [s["detail"] for s in page.statuses() if s["status"] == "open"]
            check(case, "status 'open' names the transport", opened[:1] == [transport], page.status_line())

            # 2. The forever frame ran each script while its response was still open.
            if transport == "iframe":
                self.iframe_checks(case, mode, page, first, self.gateway.subscribers(channel))

            # 3. Cut every connection, publish more while the client reconnects.
            cut_at = page.mark("cut")
            accepted, refused = self.relay.accepted, self.relay.refused
            dropped = self.relay.cut(OUTAGE)
            cut_time = time.monotonic()
            for p in AFTER_CUT:
                receipts.append(self.gateway.publish(channel, p)["id"])
                time.sleep(PUBLISH_SPACING)
            page.wait_messages(len(expect), 30)
            delivered = time.monotonic() - cut_time
            time.sleep(QUIET)  # anything extra (a repeat) would arrive now
            page.refresh()
            after = [s for s in page.statuses() if s["seq"] > cut_at]
            reconnects = sum(1 for s in after if s["status"] == "reconnecting")
            reopened = [s["detail"] for s in after if s["status"] == "open"]
            back, refused = self.relay.accepted - accepted, self.relay.refused - refused
            seen = f"comet.js after the cut: {' '.join(s['status'] for s in after) or 'nothing'}"
            # Every transport must have seen the drop and come back on itself. (A held poll cut before its answer
            # is first retried by Chromium itself, invisibly to comet.js, but that retry falls into the outage.)
            ok = reconnects >= 1 and reopened[:1] == [transport] and page.transports[0] == transport
            check(case, f"cut: {dropped} connection(s) reset, {refused} refused during a {OUTAGE:g} s outage, "
                  f"back on {back}", ok and dropped >= 1 and back >= 1,
                  f"{seen}; all delivered {delivered:.1f} s after the cut")
            diff = compare(page.messages(), expect, receipts, channel)
            check(case, f"after the cut: all {len(expect)} exactly once, in order, nothing extra", not diff, diff)
            check(case, "no payload ran as markup or script", page.injected is None, str(page.injected))
            errors = [e["message"] for e in page.entries if e["kind"] == "page-error"]
            gaps = [e for e in page.entries if e["kind"] == "gap"]
            check(case, "no page error, no gap reported", not errors and not gaps, f"{errors} {gaps}")
            if len(self.report.failed) > failures:
                self.diagnostics(page)
        except Exception as error:  # noqa: BLE001 - a case that cannot go on fails, the run goes on
            check(case, "case completed", False, f"{type(error).__name__}: {error}")
            self.diagnostics(page)

    def iframe_checks(self, case, mode, page, first, held):
        """The forever frame ran each script as it arrived, while its response was still open: the gateway still
        held the frame's connection (held: its subscriber count once the burst was in) and the frame's document
        had not finished loading."""
        check = self.report.check
        frames = page.of("frame")
        loads = [e["seq"] for e in page.of("frame-load") if e["frame"] == 0]
        if mode == "same-origin":
            # Read synchronously inside each message's callback, i.e. while the frame's script was running.
            states = [m["frame"] for m in first]
            check(case, "iframe: every script ran while the frame was loading (readyState 'loading')",
                  len(frames) == 1 and held == 1 and all(s == "loading" for s in states),
                  f"readyState at each message: {sorted(set(states))}; gateway subscribers {held}")
        else:
            # A cross-origin frame's document cannot be read: its load event (the end of its document) must not
            # have come before the last message of the burst.
            states = {m["frame"] for m in first}
            ok = (len(frames) == 1 and held == 1 and states == {"cross-origin"}
                  and all(seq > first[-1]["seq"] for seq in loads))
            check(case, "iframe: every message was posted before the frame's load (response open)", ok,
                  f"frame loads at seq {loads or 'none'}, last message at seq {first[-1]['seq']}; "
                  f"gateway subscribers {held}")

    def foreign_origin_case(self):
        """A page whose origin is not in allowed_origins: comet.js falls back to JSONP (which needs no allowlist);
        the WebSocket and the iframe's postMessage target are refused with 403, SSE and XHR streaming by CORS."""
        case = "foreign-origin"
        check = self.report.check
        failures = len(self.report.failed)
        page = None
        try:
            origin = self.foreign_pages.origin
            for transport, query in (("iframe", f"?transport=iframe&origin={origin}"), ("sse", "?transport=sse")):
                status = http_status(f"{self.gateway.public_url}/sub/refused{query}", origin)
                want = 403 if transport == "iframe" else 200
                check(case, f"gateway: {transport} from {origin} answers {want}"
                      + ("" if want == 403 else " without Access-Control-Allow-Origin"),
                      status[0] == want and (want == 403 or status[1] is None), f"status {status}")

            page = self.open_page("cross-origin", self.foreign_pages)
            channel = f"b-foreign-{self.token}"
            self.browser.js("return window.__cometTest.start(arguments[0], arguments[1], null);",
                            channel, self.gateway_origin)
            wait_until(lambda: self.gateway.subscribers(channel) >= 1, 20, "the gateway to count the subscriber")
            receipts = [self.gateway.publish(channel, p)["id"] for p in BURST]
            page.wait_messages(len(BURST), 15)
            time.sleep(QUIET)
            page.refresh()
            diff = compare(page.messages(), BURST, receipts, channel)
            check(case, f"default order delivers the burst exactly (on {page.transports[0]})", not diff, diff)
            tried = [s["detail"] for s in page.statuses() if s["status"] == "connecting"]
            check(case, "falls back to jsonp after the refused WebSocket, never an iframe",
                  page.transports[0] == "jsonp" and tried[:1] == ["websocket"] and "iframe" not in tried
                  and not page.of("frame"), page.status_line())
            self.browser.js("window.__cometTest.stop(0);")

            # Each refused transport alone: comet.js reports an error and never opens.
            for index, transport in enumerate(("websocket", "iframe", "sse", "stream"), start=1):
                refused = f"b-refused-{transport}-{self.token}"
                self.browser.js("return window.__cometTest.start(arguments[0], arguments[1], arguments[2]);",
                                refused, self.gateway_origin, [transport])
                page.wait_status("error", 10, sub=index)
                opened = [s for s in page.statuses(index) if s["status"] == "open"]
                check(case, f"{transport} alone is refused: 'error', never 'open'",
                      not opened and not page.messages(index), page.status_line(index))
                self.browser.js("window.__cometTest.stop(arguments[0]);", index)
            if len(self.report.failed) > failures:
                self.diagnostics(page)
        except Exception as error:  # noqa: BLE001
            check(case, "case completed", False, f"{type(error).__name__}: {error}")
            self.diagnostics(page)

    def ws_client_case(self):
        """Tests/Browser/ws_client_test.py: the WebSocket transport from Python's websockets package."""
        self.python_client_case("ws_client_test.py", timeout=90)

    def grip_publish_case(self):
        """Tests/Browser/grip_publish_test.py: publishing with Pushpin's Python libraries (gripcontrol, pubcontrol)."""
        self.python_client_case("grip_publish_test.py", timeout=60)

    def grip_hold_case(self):
        """Tests/Browser/grip_hold_test.py: an application built with gripcontrol behind its own gateway."""
        self.own_gateway_case("grip_hold_test.py", timeout=90)

    def bayeux_client_case(self):
        """Tests/Browser/bayeux_client_test.py: a CometD client (aiocometd-noloop) against /cometd, own gateway."""
        self.own_gateway_case("bayeux_client_test.py", timeout=150)

    def own_gateway_case(self, script, timeout):
        """Runs a script of this folder that starts a gateway of its own; it must exit 0 within `timeout` s."""
        try:
            out = subprocess.run([sys.executable, os.path.join(HERE, script), "--gateway", self.gateway.binary],
                                 capture_output=True, text=True, timeout=timeout)
            for line in (out.stdout + out.stderr).splitlines():
                self.report.note(f"{script.removesuffix('.py')}: {line}")
            self.report.check(script, "exits 0", out.returncode == 0, f"status {out.returncode}")
        except subprocess.TimeoutExpired:
            self.report.check(script, "exits 0", False, f"timed out after {timeout} s")

    def python_client_case(self, script, timeout):
        """Runs a Python client script of this folder against the gateway; it must exit 0 within `timeout` s."""
        try:
            out = subprocess.run(
                [sys.executable, os.path.join(HERE, script),
                 "--public", self.gateway.public_url, "--publish", self.gateway.publish_url],
                capture_output=True, text=True, timeout=timeout)
            for line in (out.stdout + out.stderr).splitlines():
                self.report.note(f"{script.removesuffix('.py')}: {line}")
            self.report.check(script, "exits 0", out.returncode == 0, f"status {out.returncode}")
        except subprocess.TimeoutExpired:
            self.report.check(script, "exits 0", False, f"timed out after {timeout} s")


def http_status(url, origin):
    """(status, Access-Control-Allow-Origin) of a GET with an Origin header; the body is not read."""
    request = urllib.request.Request(url, headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Access-Control-Allow-Origin")


# ---- main -------------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True, help="the comet-gateway binary")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="subset to run (comma-separated)")
    parser.add_argument("--modes", default=",".join(MODES), help="subset of same-origin,cross-origin")
    parser.add_argument("--skip-foreign", action="store_true", help="skip the non-allowed origin case")
    parser.add_argument("--skip-ws-client", action="store_true", help="skip ws_client_test.py")
    args = parser.parse_args()
    if not os.access(args.gateway, os.X_OK):
        parser.error(f"{args.gateway}: not an executable")
    if not shutil.which("curl"):
        parser.error("the curl command is missing")

    started = time.monotonic()
    signal.signal(signal.SIGTERM, stop_run)
    signal.signal(signal.SIGALRM, stop_run)
    signal.alarm(HARD_LIMIT)
    report = Report()
    workdir = tempfile.mkdtemp(prefix="comet-browser-")
    gateway = relay = pages = foreign = browser = None
    try:
        # Order of set-up: the relay forwards to the gateway's port; the pages load comet.js through the relay;
        # the gateway's configuration allows the page origin.
        gateway_port = free_port()
        relay = Relay(gateway_port)
        relay.start()
        gateway_origin = f"http://localhost:{relay.port}"
        pages = PageServer("127.0.0.1", gateway_origin)
        foreign = PageServer("127.0.0.2", gateway_origin)
        gateway = Gateway(os.path.abspath(args.gateway), gateway_port, [pages.origin], workdir)
        gateway.start()
        pages.start()
        foreign.start()
        browser = Browser()
        print(f"gateway {gateway.public_url} (publisher {gateway.publish_url}), relay {gateway_origin}, "
              f"pages {pages.origin} (allowed) and {foreign.origin} (not allowed), Chromium {browser.version}",
              flush=True)

        suite = Suite(gateway, relay, pages, foreign, browser, report)
        cases = [(t, m) for t in args.transports.split(",") for m in args.modes.split(",")]
        for transport, mode in cases:
            if time.monotonic() - started > BUDGET:
                report.check(f"{transport}/{mode}", "run", False, "time budget exhausted")
                continue
            suite.transport_case(transport, mode)
        if not args.skip_foreign:
            suite.foreign_origin_case()
        if not args.skip_ws_client:
            suite.ws_client_case()
            suite.grip_publish_case()
            suite.grip_hold_case()
            suite.bayeux_client_case()
    except KeyboardInterrupt:
        report.check("run", "interrupted", False)
    except Stopped as stop:
        report.check("run", "stopped", False, str(stop))
    except Exception as error:  # noqa: BLE001 - set-up failed: report it, clean up, exit non-zero
        report.check("run", "set-up", False, f"{type(error).__name__}: {error}")
    finally:
        signal.alarm(0)
        for stop in (browser and browser.quit, gateway and gateway.stop, relay and relay.stop,
                     pages and pages.stop, foreign and foreign.stop):
            if stop:
                try:
                    stop()
                except Exception as error:  # noqa: BLE001 - keep cleaning up
                    print(f"cleanup: {type(error).__name__}: {error}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    total = report.passed + len(report.failed)
    print(f"\n{report.passed}/{total} checks passed, {len(report.failed)} failed, in {elapsed:.1f} s")
    for failure in report.failed:
        print(f"  failed: {failure}")
    return 0 if not report.failed and total else 1


if __name__ == "__main__":
    sys.exit(main())
