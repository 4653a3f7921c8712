#!/usr/bin/env python3
"""Aggregate one bench.sh run into tables (stdout + Markdown) and one JSON file.

Input: RUN/meta.json and RUN/results/*.json (loadgen output, one JSON object
per file; capacity runs also have *-rss.json written by bench.sh).
Every number printed here comes from those files; nothing is assumed.
"""
import argparse
import glob
import json
import os
import shutil

SERVERS = ["gateway", "gateway-base", "nchan", "pushpin", "floor"]
LOWER, HIGHER = "lower", "higher"


def load(path):
    try:
        with open(path) as f:
            txt = f.read().strip()
        return json.loads(txt) if txt else None
    except (OSError, ValueError):
        return None


# Counts that must be zero in every round: the merged value is the worst round, never a median.
WORST_OF = {"kernel_backlog_drops", "tcp_retrans_segs", "listen_overflows", "lost", "subs_with_loss", "dups", "reordered", "unparsed", "pub_fail", "pub_err", "disconnects",
            "connect_failures", "late_from_prev_step", "pub_late", "failed", "timed_out", "redelivered",
            "disconnects_after_reconnect", "drops", "partial", "write_errors"}


def merge_rounds(values, key=None):
    """Merge one result across rounds: numbers -> median (worst for WORST_OF keys), dicts key by key, lists
    element by element (a list longer in some rounds keeps its extra elements), anything else -> first."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    first = values[0]
    if isinstance(first, bool):
        return sorted(bool(v) for v in values)[len(values) // 2] if key not in WORST_OF else any(values)
    if isinstance(first, (int, float)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        if key in WORST_OF:
            return max(values)
        ordered = sorted(values)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return type(first)(median) if isinstance(first, int) and float(median).is_integer() else median
    if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: merge_rounds([v.get(k) for v in values], k) for k in keys}
    if isinstance(first, list) and all(isinstance(v, list) for v in values):
        longest = max(len(v) for v in values)
        return [merge_rounds([v[i] for v in values if i < len(v)], key) for i in range(longest)]
    return first


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def _ratio(g, o):
    if g is None or o is None or isinstance(g, bool) or isinstance(o, bool) or o == 0:
        return None
    return g / o


def ratio(g, o):
    r = _ratio(g, o)
    return "n/a" if r is None else f"{r:.2f}x"


class Table:
    """Rows of metric -> {column: value}. By default the columns are the servers and the ratios gateway/other;
    `columns` (keys, or (key, heading) pairs) and `ratios` ((numerator, denominator, heading) triples) override
    that, e.g. for the gateway-only transport tables that compare a transport with the gateway's SSE."""

    def __init__(self, title, note="", columns=None, ratios=None, order=None):
        self.title, self.note, self.rows = title, note, []
        self.columns, self.ratios = columns, ratios
        self.order = order if order is not None else float(title.split(".")[0])

    def add(self, metric, better, values):
        self.rows.append((metric, better, values))

    def render(self, servers, markdown):
        if self.columns is not None:
            cols = [c if isinstance(c, tuple) else (c, c) for c in self.columns]
            ratios = self.ratios or []
        else:
            cols = [(s, s) for s in servers]
            ratios = ([("gateway", o, f"gw/{o}") for o in servers if o != "gateway"] if "gateway" in servers else [])
        head = ["metric"] + [h for _, h in cols] + [h for _, _, h in ratios] + ["better"]
        body = []
        for metric, better, vals in self.rows:
            row = [metric] + [fmt(vals.get(k)) for k, _ in cols]
            row += [ratio(vals.get(n), vals.get(d)) for n, d, _ in ratios]
            row.append(better or "")
            body.append(row)
        out = []
        if markdown:
            out.append(f"### {self.title}\n")
            if self.note:
                out.append(self.note + "\n")
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|")
            for r in body:
                out.append("| " + " | ".join(r) + " |")
            out.append("")
        else:
            widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
            out.append(f"== {self.title}")
            if self.note:
                out.append("   " + self.note)
            line = lambda r: "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                                       for i, c in enumerate(r))
            out.append(line(head))
            for r in body:
                out.append(line(r))
            out.append("")
        return "\n".join(out)


def latency_rows(t, data, prefix=""):
    for key, label in [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max")]:
        t.add(f"{prefix}latency {label} (ms)", LOWER,
              {s: (d.get("latency_ms") or {}).get(key) for s, d in data.items()})


def step_rows(t, data):
    """Rows for a single-step fan-out result: data maps server -> step dict."""
    t.add("subscribers connected", HIGHER, {s: d.get("subs_connected") for s, d in data.items()})
    t.add("publish rate achieved (msg/s)", HIGHER, {s: d.get("rate_achieved") for s, d in data.items()})
    t.add("deliveries", HIGHER, {s: d.get("deliveries") for s, d in data.items()})
    t.add("lost", LOWER, {s: d.get("lost") for s, d in data.items()})
    t.add("duplicated", LOWER, {s: d.get("dups") for s, d in data.items()})
    t.add("reordered", LOWER, {s: d.get("reordered") for s, d in data.items()})
    latency_rows(t, data)
    t.add("server CPU per delivery (us)", LOWER, {s: d.get("cpu_us_per_delivery") for s, d in data.items()})
    t.add("server CPU (s)", LOWER, {s: d.get("server_cpu_s") for s, d in data.items()})
    t.add("loadgen CPU (%)", "", {s: d.get("loadgen_cpu_pct") for s, d in data.items()})
    t.add("other processes' CPU (s)", LOWER, {s: d.get("other_cpu_s") for s, d in data.items()})
    kernel_rows(t, data)


def kernel_rows(t, data, prefix=""):
    """Machine-wide kernel counters over a step: loopback packets dropped from a full input backlog and TCP
    segments retransmitted (each such drop costs a retransmission, i.e. a latency spike)."""
    if any(d.get("tcp_retrans_segs") is not None for d in data.values()):
        t.add(f"{prefix}kernel: loopback backlog drops", LOWER, {s: d.get("kernel_backlog_drops") for s, d in data.items()})
        t.add(f"{prefix}kernel: TCP retransmitted segments", LOWER, {s: d.get("tcp_retrans_segs") for s, d in data.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--json-out", required=True)
    ap.add_argument("--md-out", required=True)
    ap.add_argument("--md-copy")
    a = ap.parse_args()

    meta = load(os.path.join(a.run, "meta.json")) or {}
    rounds = {}
    for path in sorted(glob.glob(os.path.join(a.run, "results", "*.json"))
                       + glob.glob(os.path.join(a.run, "results", "round*", "*.json"))):
        rounds.setdefault(os.path.basename(path)[:-5], []).append(load(path))
    # With --repeat, every result is the merge of its rounds (median; worst for loss and errors).
    res = {name: (vals[0] if len(vals) == 1 else merge_rounds(vals)) for name, vals in rounds.items()}
    servers = [s for s in SERVERS if s in meta.get("servers", ",".join(SERVERS)).split(",")]

    def skipped_note(key):
        """' Not run for X: reason.' for every server whose result for `key` is a {"skipped": reason}."""
        out = ""
        for s in servers:
            why = (get(s, key) or {}).get("skipped")
            if why:
                out += f" Not run for {s}: {why}."
        return out
    params = meta.get("params", {})
    tables = []
    summary = {}

    def get(server, key):
        return res.get(f"{server}-{key}")

    # 1. capacity -------------------------------------------------------------
    caps = [int(x) for x in str(params.get("cap_counts", "")).split()]
    if any(get(s, f"s1-{n}-rss") for s in servers for n in caps):
        t = Table("1. Capacity: idle SSE subscribers",
                  "RSS delta = summed VmRSS of the server's processes after all subscribers "
                  "connected minus before (nginx: master+worker; pushpin: its own processes, "
                  "GRIP origin excluded).")
        for n in caps:
            conn, secs, delta, per = {}, {}, {}, {}
            for s in servers:
                rss = get(s, f"s1-{n}-rss")
                parts = [get(s, f"s1-{n}-part{i}") for i in range(2)]
                parts = [p for p in parts if p]
                if not rss or not parts:
                    continue
                c = sum(p.get("connected", 0) for p in parts)
                conn[s] = c
                secs[s] = max(p.get("connect_secs", 0) for p in parts)
                d = rss["rss_kb_after"] - rss["rss_kb_before"]
                delta[s] = d / 1024.0
                per[s] = d / c if c else None
                summary.setdefault(s, {})[f"capacity_{n}"] = {
                    "connected": c, "connect_secs": secs[s], "rss_delta_kb": d,
                    "rss_kb_per_conn": per[s], "still_connected": sum(p.get("still_connected", 0) for p in parts)}
            t.add(f"{n}: connected", HIGHER, conn)
            t.add(f"{n}: time to connect all (s)", LOWER, secs)
            t.add(f"{n}: RSS delta (MiB)", LOWER, delta)
            t.add(f"{n}: RSS per connection (KiB)", LOWER, per)
        tables.append(t)

    def floor_rows(t, key):
        """The floor server's own counters for scenario `key` (whole run): writes that found the socket full."""
        fs = get("floor", f"{key}-floor")
        if "floor" in servers and fs:
            t.add("floor: event writes dropped on EAGAIN / partial (whole run)", LOWER,
                  {"floor": (fs.get("drops") or 0) + (fs.get("partial") or 0)})

    # 2. fan-out sweep --------------------------------------------------------
    if any(get(s, "s2") for s in servers):
        rates = [float(x) for x in str(params.get("fan_rates", "")).split(",") if x]
        t = Table(f"2. Fan-out: 1 channel x {params.get('fan_subs')} SSE subscribers, rising rates",
                  f"{params.get('fan_dur')} s per rate. A rate passes with p99 < 100 ms, zero loss/duplicates, "
                  ">= 95% of the target publish rate achieved. Later rates are skipped after two failures.")
        t.add("highest passing rate (msg/s)", HIGHER, {s: (get(s, "s2") or {}).get("max_passing_rate") for s in servers})
        for r in rates:
            stp = {}
            for s in servers:
                for st in (get(s, "s2") or {}).get("steps", []):
                    if st.get("rate_target") == r:
                        stp[s] = st
            t.add(f"{r:g}/s: publish rate achieved", HIGHER, {s: d.get("rate_achieved") for s, d in stp.items()})
            t.add(f"{r:g}/s: deliveries/s", HIGHER,
                  {s: (d["deliveries"] / (d["pub_secs"] + d["drain_secs"])) if d.get("pub_secs") else None
                   for s, d in stp.items()})
            t.add(f"{r:g}/s: p50 latency (ms)", LOWER, {s: d["latency_ms"].get("p50") for s, d in stp.items()})
            t.add(f"{r:g}/s: p99 latency (ms)", LOWER, {s: d["latency_ms"].get("p99") for s, d in stp.items()})
            t.add(f"{r:g}/s: lost", LOWER, {s: d.get("lost") for s, d in stp.items()})
            t.add(f"{r:g}/s: server CPU per delivery (us)", LOWER,
                  {s: d.get("cpu_us_per_delivery") for s, d in stp.items()})
            t.add(f"{r:g}/s: loadgen CPU (%)", "", {s: d.get("loadgen_cpu_pct") for s, d in stp.items()})
            t.add(f"{r:g}/s: other processes' CPU (s)", LOWER, {s: d.get("other_cpu_s") for s, d in stp.items()})
            kernel_rows(t, stp, f"{r:g}/s: ")
            t.add(f"{r:g}/s: pass", HIGHER, {s: d.get("pass") for s, d in stp.items()})
        for s in servers:
            if get(s, "s2"):
                summary.setdefault(s, {})["fanout"] = get(s, "s2")
        floor_rows(t, "s2")
        tables.append(t)

    # 3/4/5 single-step fan-outs ---------------------------------------------
    for key, title in [
        ("s3", f"3. Wide fan-out: 1 channel x {params.get('wide_subs')} SSE subscribers at "
               f"{params.get('wide_rate')} msg/s for {params.get('wide_dur')} s"),
        ("s4", f"4. Long-poll: {params.get('lp_subs')} subscribers at {params.get('lp_rate')} msg/s for "
               f"{params.get('lp_dur')} s, resuming with the server's cursor"),
        ("s5", f"5. Many channels: {params.get('mc_chans')} channels x 1 SSE subscriber, "
               f"{params.get('mc_rate')} msg/s spread over them for {params.get('mc_dur')} s"),
        ("s7", f"7. WebSocket fan-out: 1 channel x {params.get('ws_subs')} WebSocket subscribers at "
               f"{params.get('ws_rate')} msg/s for {params.get('ws_dur')} s"),
    ]:
        data = {}
        for s in servers:
            r = get(s, key)
            if r and r.get("steps"):
                data[s] = r["steps"][0]
                summary.setdefault(s, {})[key] = r
        if not data:
            continue
        note = ""
        if key == "s4":
            note = ("Pushpin long-poll goes through the GRIP origin (pushpin_origin.py keeps the "
                    "message log and publishes with id/prev-id). By GRIP's design every re-poll is "
                    "proxied to the origin, so this row measures Pushpin + a Python origin on CPU 1 "
                    "(its CPU is shown separately and is not in 'server CPU').")
        if key == "s7":
            note = ("Gateway: WebSocket on /sub/CH, one JSON text frame per message object (its "
                    "{\"type\":\"subscribed\"} frame and pings are counted apart, pings answered with masked pongs); "
                    "Nchan: `nchan_subscriber websocket`; Pushpin: WebSocket-over-HTTP to the GRIP origin, "
                    "messages published in the ws-message format.")
        if key in ("s3", "s5") and "floor" in data:
            note += (" The floor (floor.c) writes each event with one write() per subscriber and never queues; "
                     "its dropped writes are in the last row.")
        note += skipped_note(key)
        t = Table(title, note)
        step_rows(t, data)
        if any(d.get("aux_cpu_s") is not None for d in data.values()):
            t.add("GRIP origin CPU (s), not in server CPU", "", {s: d.get("aux_cpu_s") for s, d in data.items()})
        t.add("subscriber disconnects (whole run)", LOWER,
              {s: (get(s, key) or {}).get("disconnects") for s in data})
        if key == "s7" and "gateway" in data:
            t.add("gateway: WebSocket control messages (subscribed, ...)", "",
                  {"gateway": (get("gateway", key) or {}).get("ws_control_messages")})
            t.add("gateway: WebSocket pings answered", "",
                  {"gateway": (get("gateway", key) or {}).get("ws_pings_answered")})
        floor_rows(t, key)
        tables.append(t)

    # 6. publish throughput ---------------------------------------------------
    if any(get(s, "s6-0") or get(s, "s6-1") for s in servers):
        t = Table(f"6. Publish throughput ({params.get('pub_conns')} keep-alive connections, "
                  f"pipeline {params.get('pt_pipeline')}, {params.get('pt_dur')} s)",
                  "Pushpin's /publish/ endpoint answers with Connection: close, so every publish "
                  "to Pushpin pays a new TCP connection.")
        for n in (0, 1):
            data = {s: (get(s, f"s6-{n}") or {}).get("result") for s in servers}
            data = {s: d for s, d in data.items() if d}
            t.add(f"{n} subscriber(s): 2xx publishes/s", HIGHER, {s: d.get("rate_achieved") for s, d in data.items()})
            t.add(f"{n} subscriber(s): non-2xx / errors", LOWER,
                  {s: d.get("pub_fail", 0) + d.get("pub_err", 0) for s, d in data.items()})
            t.add(f"{n} subscriber(s): server CPU per publish (us)", LOWER,
                  {s: d.get("cpu_us_per_publish") for s, d in data.items()})
            t.add(f"{n} subscriber(s): other processes' CPU (s)", LOWER,
                  {s: d.get("other_cpu_s") for s, d in data.items()})
            if n == 1:
                t.add("1 subscriber: lost", LOWER, {s: d.get("lost") for s, d in data.items()})
            for s, d in data.items():
                summary.setdefault(s, {})[f"publish_{n}"] = d
        tables.append(t)

    # 8. connect storm + reconnect storm ---------------------------------------
    data8 = {s: get(s, "s8") for s in servers if (get(s, "s8") or {}).get("storm")}
    if data8:
        t = Table(f"8. Connect storm: {params.get('storm_subs')} SSE subscribers connecting at "
                  f"{params.get('storm_rate')}/s, then all reconnecting at once with ?last_event_id=",
                  "Latency per connection from the connect() call to the first byte of the response (the SSE "
                  "head), timed by the load generator at its event-loop pass (so its own lag is included; see "
                  "'loadgen CPU'). Server CPU per connection = server CPU over the storm (from the first connect to "
                  "0.2 s after the last answer) / connections answered; the reconnect storm's includes tearing "
                  "down the old connections (closed with RST). Between the storms 3 messages are published so "
                  "every subscriber has a last event id; after the reconnect storm 1 more is published and must "
                  "reach every subscriber. 'redelivered' = messages received again after reconnecting (0 when the "
                  "server resumes after last_event_id; the floor ignores it and has no history)."
                  + skipped_note("s8"))

        def storm(phase, key, sub=None):
            out = {}
            for s, d in data8.items():
                v = (d.get(phase) or {}).get(key)
                out[s] = v.get(sub) if isinstance(v, dict) and sub else v
            return out
        for phase, label in (("storm", "connect"), ("reconnect", "reconnect")):
            t.add(f"{label}: subscribers answered", HIGHER, storm(phase, "connected"))
            t.add(f"{label}: failed / timed out", LOWER,
                  {s: (d.get(phase) or {}).get("failed", 0) + (d.get(phase) or {}).get("timed_out", 0)
                   for s, d in data8.items()})
            if phase == "storm":
                t.add("connect: connects/s answered", HIGHER, storm(phase, "rate_achieved"))
            else:
                t.add("reconnect: with last_event_id", "", storm(phase, "with_last_event_id"))
                t.add("reconnect: time to reconnect all (s)", LOWER, storm(phase, "secs"))
            for k, lab in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("max", "max")):
                t.add(f"{label}: time to first byte {lab} (ms)", LOWER, storm(phase, "first_byte_ms", k))
            t.add(f"{label}: server CPU per connection (us)", LOWER, storm(phase, "cpu_us_per_conn"))
            if phase == "storm":
                t.add("connect: server RSS per connection (KiB)", LOWER,
                      {s: ((d["storm"].get("server_rss_kb_after", 0) - d["storm"].get("server_rss_kb_before", 0))
                           / d["storm"]["connected"]) if d["storm"].get("connected") else None
                       for s, d in data8.items()})
            t.add(f"{label}: loadgen CPU (%)", "", storm(phase, "loadgen_cpu_pct"))
            t.add(f"{label}: other processes' CPU (s)", LOWER, storm(phase, "other_cpu_s"))
            t.add(f"{label}: kernel: accept queue overflows", LOWER, storm(phase, "listen_overflows"))
            t.add(f"{label}: kernel: TCP retransmitted segments", LOWER, storm(phase, "tcp_retrans_segs"))
        t.add("primed: deliveries of 3 messages", HIGHER, {s: (d.get("primed") or {}).get("deliveries")
                                                           for s, d in data8.items()})
        t.add("after reconnect: messages redelivered", LOWER,
              {s: (d.get("after_reconnect") or {}).get("redelivered") for s, d in data8.items()})
        t.add("after reconnect: next message delivered", HIGHER,
              {s: (d.get("after_reconnect") or {}).get("deliveries") for s, d in data8.items()})
        t.add("subscriber disconnects (whole run)", LOWER, {s: d.get("disconnects") for s, d in data8.items()})
        for s, d in data8.items():
            summary.setdefault(s, {})["connect_storm"] = d
        tables.append(t)

    # 9, 10. gateway-only transports against the gateway's SSE fan-out and long-poll ----------------------
    def first_step(server, key, rate=None):
        for stp in (get(server, key) or {}).get("steps", []):
            if rate is None or stp.get("rate_target") == rate:
                return stp
        return None

    for key, base_key, kind, base_kind, title in [
        ("s9", "s2", "iframe", "SSE",
         f"9. Forever-iframe fan-out (gateway): 1 channel x {params.get('fan_subs')} subscribers at "
         f"{params.get('iframe_rate')} msg/s for {params.get('fan_dur')} s, against SSE (scenario 2, same rate)"),
        ("s10", "s4", "JSONP", "long-poll",
         f"10. JSONP long-poll (gateway): {params.get('lp_subs')} subscribers at {params.get('lp_rate')} msg/s "
         f"for {params.get('lp_dur')} s, against JSON long-poll (scenario 4)"),
        ("s13", "s4", "Bayeux", "long-poll",
         f"13. Bayeux long-polling (gateway /cometd): {params.get('lp_subs')} clients at {params.get('lp_rate')} "
         f"msg/s for {params.get('lp_dur')} s, against JSON long-poll (scenario 4)"),
    ]:
        cur = first_step("gateway", key)
        if not cur:
            continue
        base = first_step("gateway", base_key, cur.get("rate_target") if key == "s9" else None)
        data = {kind: cur}
        if base:
            data[base_kind] = base
        note = ("Both columns are the gateway; the ratio is this transport over the gateway's "
                + ("SSE fan-out at the same rate and subscriber count (the first step of scenario 2's sweep)."
                   if key == "s9" else "JSON long-poll with the same subscribers, rate and duration.")
                + ("" if base else f" Scenario {base_key[1:]} was not run, so there is nothing to compare with."))
        columns, ratios = [kind, base_kind], [(kind, base_kind, f"{kind}/{base_kind}")]
        prev, prev_base = first_step("gateway-base", key), first_step("gateway-base", base_key)
        if key == "s13" and prev:
            # The --base-bin build in the same run: its own ratio, and this build's Bayeux against it.
            data[f"{kind} (base)"] = prev
            columns.append(f"{kind} (base)")
            ratios.append((kind, f"{kind} (base)", f"{kind}/base"))
            if prev_base:
                data[f"{base_kind} (base)"] = prev_base
                columns.append(f"{base_kind} (base)")
                ratios.append((f"{kind} (base)", f"{base_kind} (base)", f"base {kind}/{base_kind}"))
        t = Table(title, note, columns=columns, ratios=ratios)
        step_rows(t, data)
        t.add("subscriber disconnects (whole run)", LOWER,
              {kind: (get("gateway", key) or {}).get("disconnects"),
               base_kind: (get("gateway", base_key) or {}).get("disconnects") if base else None})
        if key in ("s10", "s13"):
            t.add("polls", "", {kind: (get("gateway", key) or {}).get("polls"),
                                base_kind: (get("gateway", base_key) or {}).get("polls") if base else None})
        summary.setdefault("gateway", {})[key] = get("gateway", key)
        summary.setdefault("gateway", {})[f"{key}_vs_{base_key}"] = {
            "cpu_us_per_delivery_ratio": _ratio(cur.get("cpu_us_per_delivery"), (base or {}).get("cpu_us_per_delivery")),
            "p99_ratio": _ratio((cur.get("latency_ms") or {}).get("p99"), ((base or {}).get("latency_ms") or {}).get("p99"))}
        tables.append(t)

    # 13b. Bayeux clients held by one node --------------------------------------------------------------------
    hold = get("gateway", "s13-hold")
    if hold and hold.get("steps"):
        stp = hold["steps"][0]
        rss = stp.get("server_rss_kb")
        t = Table(f"13b. Bayeux clients held by one node: {params.get('bayeux_hold')} clients handshake and "
                  f"subscribe at once, then 2 msg/s for {params.get('lp_dur')} s",
                  "Each client is a Bayeux session (handshake, subscribe, then /meta/connect after /meta/connect); "
                  "every publish answers every held connect.", columns=["gateway"], ratios=[], order=13.5)
        t.add("clients subscribed", HIGHER, {"gateway": hold.get("connected")})
        t.add("handshake + subscribe of all (s)", LOWER, {"gateway": hold.get("connect_secs")})
        t.add("deliveries", HIGHER, {"gateway": stp.get("deliveries")})
        t.add("lost", LOWER, {"gateway": stp.get("lost")})
        t.add("duplicates", LOWER, {"gateway": stp.get("dups")})
        t.add("p99 latency (ms)", LOWER, {"gateway": (stp.get("latency_ms") or {}).get("p99")})
        t.add("server CPU per delivery (us)", LOWER, {"gateway": stp.get("cpu_us_per_delivery")})
        t.add("server RSS per client (KiB)", LOWER,
              {"gateway": round(rss / hold["connected"], 2) if rss and hold.get("connected") else None})
        summary.setdefault("gateway", {})["s13_hold"] = hold
        tables.append(t)

    # 11. GRIP stream-hold fan-out: the gateway and Pushpin through GRIP, against the gateway's own SSE ----------
    if get("gateway", "s11") or get("pushpin", "s11"):
        t = Table(f"11. GRIP stream-hold fan-out: 1 channel x {params.get('fan_subs')} subscribers held by a GRIP "
                  f"origin's Grip-Hold: stream, EPCP http-stream publishes, rising rates",
                  "'gateway GRIP' and 'pushpin GRIP' are the two GRIP proxies in front of the same origin (on CPU 1, "
                  "not counted); 'gateway SSE' is scenario 2 at the same rate (the gateway's own transport). "
                  "grip/sse is the target's ratio (within 10 %).",
                  columns=[("grip", "gateway GRIP"), ("pushpin", "pushpin GRIP"), ("sse", "gateway SSE")],
                  ratios=[("grip", "sse", "grip/sse"), ("grip", "pushpin", "gw/pushpin")])
        rates = [float(x) for x in str(params.get("fan_rates", "")).split(",") if x]
        vs = {}
        for r in rates:
            steps = {"grip": first_step("gateway", "s11", r), "pushpin": first_step("pushpin", "s11", r),
                     "sse": first_step("gateway", "s2", r)}
            if not any(steps.values()):
                continue
            val = lambda f: {k: (f(v) if v else None) for k, v in steps.items()}
            t.add(f"{r:g}/s: deliveries", HIGHER, val(lambda d: d.get("deliveries")))
            t.add(f"{r:g}/s: lost", LOWER, val(lambda d: d.get("lost")))
            t.add(f"{r:g}/s: p99 latency (ms)", LOWER, val(lambda d: (d.get("latency_ms") or {}).get("p99")))
            t.add(f"{r:g}/s: server CPU per delivery (us)", LOWER, val(lambda d: d.get("cpu_us_per_delivery")))
            vs[f"{r:g}"] = {"cpu_us_per_delivery_ratio": _ratio((steps["grip"] or {}).get("cpu_us_per_delivery"),
                                                                (steps["sse"] or {}).get("cpu_us_per_delivery"))}
        summary.setdefault("gateway", {})["s11_vs_s2"] = vs
        tables.append(t)

    # 12. Two nodes and Redis: publish-to-delivery across nodes, against one node (scenario 2) ----------------
    if get("gateway", "s12") or get("nchan", "s12"):
        t = Table(f"12. Across nodes: 1 channel x {params.get('fan_subs')} SSE subscribers on node A, publishes on "
                  f"node B, one Redis",
                  "The gateway with broker.type = redis; Nchan with nchan_redis_pass (two nginx instances). Both "
                  "nodes on CPU 0, Redis on CPU 1 with the load generator (its CPU is the helpers'); server CPU "
                  "counts both nodes. 'one node' is the gateway's scenario 2 at the same rate (the embedded broker).",
                  columns=[("cluster", "gateway: two nodes + Redis"), ("nchan", "nchan: two nodes + Redis"),
                           ("single", "gateway: one node")],
                  ratios=[("cluster", "single", "cluster/one"), ("cluster", "nchan", "gw/nchan")])
        rates = [float(x) for x in str(params.get("cluster_rates", "100,1000")).split(",") if x]
        for r in rates:
            steps = {"cluster": first_step("gateway", "s12", r), "nchan": first_step("nchan", "s12", r),
                     "single": first_step("gateway", "s2", r)}
            val = lambda f: {k: (f(v) if v else None) for k, v in steps.items()}
            t.add(f"{r:g}/s: deliveries", HIGHER, val(lambda d: d.get("deliveries")))
            t.add(f"{r:g}/s: lost", LOWER, val(lambda d: d.get("lost")))
            t.add(f"{r:g}/s: p50 latency (ms)", LOWER, val(lambda d: (d.get("latency_ms") or {}).get("p50")))
            t.add(f"{r:g}/s: p99 latency (ms)", LOWER, val(lambda d: (d.get("latency_ms") or {}).get("p99")))
            t.add(f"{r:g}/s: server CPU per delivery (us)", LOWER, val(lambda d: d.get("cpu_us_per_delivery")))
            t.add(f"{r:g}/s: helpers' CPU (Redis) (s)", "", val(lambda d: d.get("aux_cpu_s")))
        summary.setdefault("gateway", {})["s12"] = get("gateway", "s12")
        tables.append(t)

    # 12, second part: deliveries/s of three nodes against one, all with the Redis broker -------------------
    nodes = {"three": get("gateway", "s12-nodes3"), "one": get("gateway", "s12-nodes1"),
             "three-base": get("gateway-base", "s12-nodes3"), "one-base": get("gateway-base", "s12-nodes1")}
    if nodes["one"] or nodes["three"]:
        columns = [("three", "three nodes"), ("one", "one node")]
        ratios = [("three", "one", "three/one")]
        if nodes["one-base"] or nodes["three-base"]:
            columns += [("three-base", "three nodes (base)"), ("one-base", "one node (base)")]
            ratios += [("three", "three-base", "three/base"), ("one", "one-base", "one/base")]
        t = Table(f"12. Deliveries/s: {params.get('fan_subs')} SSE subscribers of 4 channels on one node, and "
                  f"spread over three nodes, one Redis",
                  "The gateway with broker.type = redis in every column; each channel published on its own "
                  "connection to the first node. Every node on CPU 0, Redis and the load generator on CPU 1: two "
                  "cores leave no room for a core per node, so the three nodes share the one core that the single "
                  "node has. The ratio shows what spreading the subscribers over nodes costs (each message is read "
                  "from Redis and framed once per node); with a core per node each node would carry its share at "
                  "the one-node CPU per delivery. 'deliveries/s' counts deliveries over the step and its drain; "
                  "server CPU counts every node. '(base)': the --base-bin build.",
                  columns=columns, ratios=ratios)
        steps_of = {k: (v or {}).get("steps", []) for k, v in nodes.items()}
        t.add("highest passing rate (msg/s)", HIGHER, {k: (v or {}).get("max_passing_rate") for k, v in nodes.items()})
        best = {}
        for k, steps in steps_of.items():
            ok = [st for st in steps if st.get("pass") and st.get("pub_secs")]
            best[k] = max((st["deliveries"] / (st["pub_secs"] + st["drain_secs"]) for st in ok), default=None)
        t.add("highest deliveries/s of a passing step", HIGHER, best)
        rates = [float(x) for x in str(params.get("cluster_tput_rates", "")).split(",") if x]
        for r in rates:
            stp = {k: next((st for st in steps if st.get("rate_target") == r), None) for k, steps in steps_of.items()}
            val = lambda f: {k: (f(v) if v else None) for k, v in stp.items()}
            t.add(f"{r:g}/s: publish rate achieved", HIGHER, val(lambda d: d.get("rate_achieved")))
            t.add(f"{r:g}/s: deliveries/s", HIGHER,
                  val(lambda d: d["deliveries"] / (d["pub_secs"] + d["drain_secs"]) if d.get("pub_secs") else None))
            t.add(f"{r:g}/s: lost", LOWER, val(lambda d: d.get("lost")))
            t.add(f"{r:g}/s: p99 latency (ms)", LOWER, val(lambda d: (d.get("latency_ms") or {}).get("p99")))
            t.add(f"{r:g}/s: server CPU per delivery (us)", LOWER, val(lambda d: d.get("cpu_us_per_delivery")))
            t.add(f"{r:g}/s: loadgen CPU (%)", "", val(lambda d: d.get("loadgen_cpu_pct")))
            t.add(f"{r:g}/s: pass", HIGHER, val(lambda d: d.get("pass")))
        summary.setdefault("gateway", {})["s12_nodes"] = nodes
        tables.append(t)

    # The gateway against the floor: fan-out p99 and CPU per delivery -----------------------------------
    if "gateway" in servers and "floor" in servers:
        t = Table("Gateway vs the floor (floor.c: one write() per subscriber per message, no queueing, "
                  "no history)", "How far the gateway is from the cheapest SSE fan-out this machine can do. "
                  "The floor's write per delivery is also a separate read in the load generator, so at high rates "
                  "the load generator may be its limit (see its 'loadgen CPU' in table 2).",
                  columns=["gateway", "floor"], ratios=[("gateway", "floor", "gw/floor")], order=10.5)
        vs = {}
        rates = [float(x) for x in str(params.get("fan_rates", "")).split(",") if x]
        rows = [(f"2. {r:g}/s", "s2", r) for r in rates] + [("3. wide", "s3", None), ("5. channels", "s5", None)]
        for label, key, r in rows:
            g, f = first_step("gateway", key, r), first_step("floor", key, r)
            if not g or not f:
                continue
            p99 = {"gateway": (g.get("latency_ms") or {}).get("p99"), "floor": (f.get("latency_ms") or {}).get("p99")}
            cpu = {"gateway": g.get("cpu_us_per_delivery"), "floor": f.get("cpu_us_per_delivery")}
            t.add(f"{label}: p99 latency (ms)", LOWER, p99)
            t.add(f"{label}: server CPU per delivery (us)", LOWER, cpu)
            vs[label] = {"p99_ratio": _ratio(p99["gateway"], p99["floor"]),
                         "cpu_us_per_delivery_ratio": _ratio(cpu["gateway"], cpu["floor"])}
        g8, f8 = get("gateway", "s8"), get("floor", "s8")
        if (g8 or {}).get("storm") and (f8 or {}).get("storm"):
            for phase in ("storm", "reconnect"):
                t.add(f"8. {phase}: time to first byte p99 (ms)", LOWER,
                      {"gateway": g8[phase]["first_byte_ms"].get("p99"), "floor": f8[phase]["first_byte_ms"].get("p99")})
                t.add(f"8. {phase}: server CPU per connection (us)", LOWER,
                      {"gateway": g8[phase].get("cpu_us_per_conn"), "floor": f8[phase].get("cpu_us_per_conn")})
        if t.rows:
            summary.setdefault("gateway", {})["vs_floor"] = vs
            tables.append(t)

    for t in tables:
        if t.title.startswith("2."):
            t.add("subscriber disconnects (whole sweep)", LOWER,
                  {s: (get(s, "s2") or {}).get("disconnects") for s in servers if get(s, "s2")})
    tables.sort(key=lambda t: t.order)  # scenario order (7 is built with 3-5); the floor comparison last
    skipped = [s for s in servers if res.get(f"{s}-skipped")]
    header = (f"Benchmark {meta.get('timestamp', '')}{' (quick)' if meta.get('quick') else ''}: "
              f"{meta.get('cpu', '?')}, {meta.get('nproc', '?')} CPUs, kernel {meta.get('kernel', '?')}; "
              f"servers pinned to CPU 0, load generator to CPU 1. nginx {meta.get('nginx')}, "
              f"nchan {meta.get('nchan')}, pushpin {meta.get('pushpin')}, gateway commit "
              f"{meta.get('gateway_commit')}. Payload {params.get('payload')} bytes. "
              "Ratios are gateway/other (see the 'better' column for direction); 'floor' is floor.c, a minimal "
              "C epoll SSE server (one write() per subscriber per message): the machine's floor for SSE fan-out. "
              f"Fan-out publishing: each channel on one fixed keep-alive connection, up to "
              f"{params.get('pipeline')} pipelined requests (Pushpin: 1, its publish endpoint closes "
              "every connection). Server CPU = utime+stime of the server's processes over the step. "
              "'loadgen CPU' near 100% means the single-core load generator, not the server, "
              "may be the limit for that row. 'lost' = acknowledged publishes not received by the end "
              "of the drain window after the step. 'other processes' CPU' = machine-wide busy CPU during "
              "the step minus server, origin and loadgen: well above ~0.1 s per step means something "
              "else competed and that row is noisy.")
    repeat = int(params.get("repeat") or 1)
    if repeat > 1:
        header += (f" Scenarios 2-10 ran in {repeat} rounds, each round running every server in turn (so the "
                   "servers are interleaved in time); every number is the median of the rounds, except loss, "
                   "duplicates, reordering, disconnects and errors, which are the worst round. Capacity ran once.")
    idle = meta.get("idle_pct_before")
    if idle is not None and (idle < 90 or (meta.get("idle_pct_after") or 100) < 90):
        header += (f" WARNING: the machine was not idle (CPU idle {idle}% before, "
                   f"{meta.get('idle_pct_after')}% after the run): other processes competed "
                   "with the pinned server and load generator; treat these numbers as noisy.")
    if skipped:
        header += " Skipped: " + ", ".join(f"{s} ({res[s + '-skipped'].get('error')})" for s in skipped) + "."

    print(header + "\n")
    for t in tables:
        print(t.render(servers, markdown=False))
    md = "## Benchmark results\n\n" + header + "\n\n" + "\n".join(t.render(servers, True) for t in tables)
    with open(a.md_out, "w") as f:
        f.write(md)
    if a.md_copy:
        shutil.copyfile(a.md_out, a.md_copy)
    with open(a.json_out, "w") as f:
        json.dump({"meta": meta, "summary": summary, "raw": res,
                   "rounds": {name: vals for name, vals in rounds.items() if len(vals) > 1}}, f, indent=1)


if __name__ == "__main__":
    main()
