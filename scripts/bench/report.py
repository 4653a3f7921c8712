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

SERVERS = ["gateway", "nchan", "pushpin"]
LOWER, HIGHER = "lower", "higher"


def load(path):
    try:
        with open(path) as f:
            txt = f.read().strip()
        return json.loads(txt) if txt else None
    except (OSError, ValueError):
        return None


# Counts that must be zero in every round: the merged value is the worst round, never a median.
WORST_OF = {"lost", "subs_with_loss", "dups", "reordered", "unparsed", "pub_fail", "pub_err", "disconnects",
            "connect_failures", "late_from_prev_step", "pub_late"}


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


def ratio(g, o):
    if g is None or o is None or isinstance(g, bool) or o == 0:
        return "n/a"
    return f"{g / o:.2f}x"


class Table:
    def __init__(self, title, note=""):
        self.title, self.note, self.rows = title, note, []

    def add(self, metric, better, values):
        self.rows.append((metric, better, values))

    def render(self, servers, markdown):
        others = [s for s in servers if s != "gateway"]
        head = ["metric"] + servers
        if "gateway" in servers:
            head += [f"gw/{o}" for o in others]
        head.append("better")
        body = []
        for metric, better, vals in self.rows:
            row = [metric] + [fmt(vals.get(s)) for s in servers]
            if "gateway" in servers:
                row += [ratio(vals.get("gateway"), vals.get(o)) for o in others]
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
            t.add(f"{r:g}/s: pass", HIGHER, {s: d.get("pass") for s, d in stp.items()})
        for s in servers:
            if get(s, "s2"):
                summary.setdefault(s, {})["fanout"] = get(s, "s2")
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
            skipped = [s for s in servers if (get(s, key) or {}).get("skipped")]
            note = ("Nchan: `nchan_subscriber websocket`; Pushpin: WebSocket-over-HTTP to the GRIP origin, "
                    "messages published in the ws-message format."
                    + (" Not measured for the gateway: it has no WebSocket transport yet." if "gateway" in skipped else ""))
        t = Table(title, note)
        step_rows(t, data)
        if any(d.get("aux_cpu_s") is not None for d in data.values()):
            t.add("GRIP origin CPU (s), not in server CPU", "", {s: d.get("aux_cpu_s") for s, d in data.items()})
        t.add("subscriber disconnects (whole run)", LOWER,
              {s: (get(s, key) or {}).get("disconnects") for s in data})
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

    for t in tables:
        if t.title.startswith("2."):
            t.add("subscriber disconnects (whole sweep)", LOWER,
                  {s: (get(s, "s2") or {}).get("disconnects") for s in servers if get(s, "s2")})
    tables.sort(key=lambda t: int(t.title.split(".")[0]))  # scenario order (7 is built with 3-5)
    skipped = [s for s in servers if res.get(f"{s}-skipped")]
    header = (f"Benchmark {meta.get('timestamp', '')}{' (quick)' if meta.get('quick') else ''}: "
              f"{meta.get('cpu', '?')}, {meta.get('nproc', '?')} CPUs, kernel {meta.get('kernel', '?')}; "
              f"servers pinned to CPU 0, load generator to CPU 1. nginx {meta.get('nginx')}, "
              f"nchan {meta.get('nchan')}, pushpin {meta.get('pushpin')}, gateway commit "
              f"{meta.get('gateway_commit')}. Payload {params.get('payload')} bytes. "
              "Ratios are gateway/other (see the 'better' column for direction). "
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
        header += (f" Scenarios 2-7 ran in {repeat} rounds, each round running every server in turn (so the "
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
