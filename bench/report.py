#!/usr/bin/env python3
"""Turns the JSON lines of one `bench/run.sh` run into docs/performance.md and a chart
(docs/performance.svg, hand-written SVG: no plotting dependency).

usage: report.py RESULTS.jsonl MACHINE.json OUT.md OUT.svg PER_CRATE_DIR
       report.py --stores RESULTS.jsonl     # only the per-store end-to-end table, to stdout
"""
import glob
import json
import math
import os
import statistics
import sys

WORKLOADS = [
    ("launch13", "LTI 1.3 launch validation, in process (same id_token, RS256, 2048-bit key)",
     "launches/s"),
    ("mint13", "LTI 1.3 id_token minting, in process (same claims, same 2048-bit key)", "id_tokens/s"),
    ("lti11_verify", "LTI 1.1 launch verification, in process (same signed bodies, empty nonce store)",
     "launches/s"),
    ("lti11_verify_1M", "LTI 1.1 launch verification with 1,000,000 live nonces in the store",
     "launches/s"),
    ("e2e", "End to end over loopback HTTP: login + launch cycles against the tool server",
     "cycles/s"),
]

# (workload, peer impl prefix, required ratio ours/peer)
TARGETS = [
    ("launch13", "pylti1p3", 10.0),
    ("launch13", "ltijs", 50.0),
    ("lti11_verify", "lti ", 40.0),
    ("lti11_verify_1M", "lti ", 40.0),
    ("mint13", "lti1p3platform", 100.0),
]


def fmt(x):
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    for r in rows:
        reps = sorted(r["reps"])
        r["median"] = statistics.median(reps)
        r["min"], r["max"] = reps[0], reps[-1]
        r["spread"] = (r["max"] - r["min"]) / r["median"] * 100 if r["median"] else 0.0
    return rows


# The end-to-end store whose figure is the headline: the application's default.
HEADLINE_STORE = "sqlite"
# (store, minimum cycles/s, maximum cycle p99 ms, maximum lti serve CPU per cycle
# as a multiple of the memory store's)
STORE_TARGETS = [
    ("sqlite", 5000, 20, 2.0),
    ("postgres+redis", 2500, 20, 2.5),
]


def ours(rows, workload):
    mine = [r for r in rows if r["workload"] == workload and r["impl"].startswith("ours")]
    if workload == "e2e":
        for r in mine:
            if r.get("store") == HEADLINE_STORE:
                return r
    return mine[0] if mine else None


def store_row(rows, store):
    for r in rows:
        if r["workload"] == "e2e" and r["impl"].startswith("ours") and r.get("store", "memory") == store:
            return r
    return None


def med(r, key):
    v = r.get(key) if r else None
    return statistics.median(v) if v else None


def stores_table(rows):
    """lti serve end to end per store: throughput, p99, CPU per cycle of the server and the database."""
    mem_cpu = med(store_row(rows, "memory"), "server_cpu_us_per_cycle")
    out = ["| store | median cycles/s | min – max | cycle p99 ms | `lti serve` CPU µs/cycle | "
           "× memory's | database CPU µs/cycle |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r["workload"] != "e2e" or not r["impl"].startswith("ours"):
            continue
        cpu = med(r, "server_cpu_us_per_cycle")
        db = r.get("db_cpu_us_per_cycle")
        db_txt = (f"{statistics.median(db):.0f} ({min(db):.0f} – {max(db):.0f}; "
                  f"{', '.join(r.get('db_processes', []))})" if db else "— (in process)")
        ratio = f"{cpu / mem_cpu:.2f}×" if cpu and mem_cpu else "—"
        out.append(f"| {r.get('store', 'memory')} | {fmt(r['median'])} | {fmt(r['min'])} – {fmt(r['max'])} | "
                   f"{med(r, 'cycle_p99_ms'):.1f} | {cpu:.0f} | {ratio} | {db_txt} |")
    return "\n".join(out)


def table(rows, workload, unit):
    mine = ours(rows, workload)
    out = [f"| implementation | median {unit} | min – max | spread | ours ÷ this |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for r in sorted((r for r in rows if r["workload"] == workload), key=lambda r: -r["median"]):
        ratio = "—" if r is mine or mine is None else f"**{mine['median'] / r['median']:,.1f}×**"
        out.append(f"| {r['impl']} | {fmt(r['median'])} | {fmt(r['min'])} – {fmt(r['max'])} | "
                   f"{r['spread']:.0f}% | {ratio} |")
    return "\n".join(out)


def e2e_latency(rows):
    out = []
    for r in rows:
        if r["workload"] != "e2e":
            continue
        out.append(f"\nLatency of **{r['impl']}** ({r.get('concurrency', '?')} concurrent connections, "
                   f"{r.get('cycles_per_rep', '?')} cycles per repetition; median over repetitions, "
                   f"min – max in brackets):\n")
        out.append("| request | p50 ms | p99 ms |\n| --- | ---: | ---: |")
        login = r.get("login_request", "GET /lti/login")
        launch = r.get("launch_request", "POST /lti/launch")
        for name, key in ((f"login ({login})", "login"), (f"launch ({launch})", "launch"),
                          ("cycle (login + launch)", "cycle")):
            p50, p99 = r.get(f"{key}_p50_ms"), r.get(f"{key}_p99_ms")
            if not p50:
                continue
            out.append(f"| {name} | {statistics.median(p50):.2f} ({min(p50):.2f} – {max(p50):.2f}) | "
                       f"{statistics.median(p99):.2f} ({min(p99):.2f} – {max(p99):.2f}) |")
        server, loadgen = r.get("server_cpu_us_per_cycle"), r.get("loadgen_cpu_us_per_cycle")
        if server and loadgen:
            out.append(f"\nCPU time per cycle (user + system, from `/proc`): server "
                       f"{statistics.median(server):.0f} µs ({min(server):.0f} – {max(server):.0f}), "
                       f"load generator {statistics.median(loadgen):.0f} µs "
                       f"({min(loadgen):.0f} – {max(loadgen):.0f}).")
    return "\n".join(out)


def targets(rows):
    out = ["| target | measured | verdict |", "| --- | ---: | --- |"]
    for workload, prefix, need in TARGETS:
        mine = ours(rows, workload)
        peers = [r for r in rows if r["workload"] == workload and r["impl"].startswith(prefix)]
        if not mine or not peers:
            out.append(f"| {workload}: ours ≥ {need:g}× {prefix.strip()} | not measured | **not measured** |")
            continue
        ratio = mine["median"] / peers[0]["median"]
        verdict = "met" if ratio >= need else "**missed**"
        measured = f"{ratio:,.1f}×"
        bare = [r for r in rows if r["workload"] == workload and r["impl"].startswith("bare")]
        if bare:
            ceiling = bare[0]["median"] / peers[0]["median"]
            measured += f" (ceiling: bare RS256 verify ÷ peer = {ceiling:,.1f}×)"
        out.append(f"| {workload}: ours ≥ {need:g}× {peers[0]['impl']} | {measured} | {verdict} |")
    out += store_targets(rows)
    return "\n".join(out)


def store_targets(rows):
    out = []
    mem_cpu = med(store_row(rows, "memory"), "server_cpu_us_per_cycle")
    for store, rate, p99_max, cpu_x in STORE_TARGETS:
        name = (f"e2e on {store}: ≥ {rate:,} cycles/s, cycle p99 < {p99_max} ms, "
                f"`lti serve` CPU/cycle ≤ {cpu_x:g}× memory's")
        r = store_row(rows, store)
        if not r:
            out.append(f"| {name} | not measured | **not measured** |")
            continue
        p99, cpu = med(r, "cycle_p99_ms"), med(r, "server_cpu_us_per_cycle")
        ratio = cpu / mem_cpu if cpu and mem_cpu else None
        ok = r["median"] >= rate and p99 < p99_max and ratio is not None and ratio <= cpu_x
        ratio_txt = f"{ratio:.2f}×" if ratio is not None else "memory not measured"
        out.append(f"| {name} | {fmt(r['median'])} cycles/s, p99 {p99:.1f} ms, CPU {ratio_txt} | "
                   f"{'met' if ok else '**missed**'} |")
    return out


def svg(rows, path):
    """One panel per workload, horizontal bars on a log scale, min–max whiskers."""
    width, left, bar_h, gap = 980, 330, 18, 6
    y = 50
    parts = []
    for workload, title, unit in WORKLOADS:
        group = sorted((r for r in rows if r["workload"] == workload), key=lambda r: -r["median"])
        if not group:
            continue
        top = max(r["max"] for r in group)
        lo = min(r["min"] for r in group)
        lmin = math.floor(math.log10(max(lo, 1e-3))) - 0.2
        lmax = math.log10(top) + 0.1
        scale = (width - left - 120) / (lmax - lmin)

        def xpos(v):
            return left + (math.log10(max(v, 1e-3)) - lmin) * scale

        parts.append(f'<text x="10" y="{y}" font-size="14" font-weight="bold">{esc(title)}</text>')
        y += 10
        for r in group:
            y += gap
            mine = r["impl"].startswith("ours") or r["impl"].startswith("bare")
            color = "#1f77b4" if r["impl"].startswith("ours") else ("#7f7f7f" if r["impl"].startswith("bare") else "#ff7f0e")
            x1 = xpos(r["median"])
            parts.append(f'<text x="{left - 8}" y="{y + 13}" font-size="12" text-anchor="end">{esc(r["impl"])}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{max(x1 - left, 1):.1f}" height="{bar_h}" fill="{color}"/>')
            a, b = xpos(r["min"]), xpos(r["max"])
            parts.append(f'<line x1="{a:.1f}" y1="{y + bar_h / 2}" x2="{b:.1f}" y2="{y + bar_h / 2}" stroke="black"/>')
            weight = ' font-weight="bold"' if mine else ""
            parts.append(f'<text x="{max(x1, b) + 6:.1f}" y="{y + 13}" font-size="12"'
                         f'{weight}>{fmt(r["median"])} {esc(unit)}</text>')
            y += bar_h
        y += 36
    y = cpu_panel(rows, parts, y, width, left, bar_h, gap)
    header = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
              f'font-family="sans-serif" viewBox="0 0 {width} {y}">'
              f'<rect width="100%" height="100%" fill="white"/>'
              f'<text x="10" y="24" font-size="16" font-weight="bold">lti-rs vs independent LTI '
              f'implementations — throughput, one core, log scale (bar = median, line = min–max)</text>')
    with open(path, "w") as f:
        f.write(header + "".join(parts) + "</svg>\n")


def cpu_panel(rows, parts, y, width, left, bar_h, gap):
    """CPU time per end-to-end cycle per store: lti serve, plus the database servers (stacked)."""
    group = [r for r in rows if r["workload"] == "e2e" and r["impl"].startswith("ours")
             and r.get("server_cpu_us_per_cycle")]
    if not group:
        return y
    totals = [med(r, "server_cpu_us_per_cycle") + (med(r, "db_cpu_us_per_cycle") or 0) for r in group]
    scale = (width - left - 200) / max(totals)
    parts.append(f'<text x="10" y="{y}" font-size="14" font-weight="bold">End to end: CPU time per '
                 f'cycle, µs (linear; blue = lti serve, green = database servers)</text>')
    y += 10
    for r in group:
        y += gap
        serve, db = med(r, "server_cpu_us_per_cycle"), med(r, "db_cpu_us_per_cycle") or 0
        parts.append(f'<text x="{left - 8}" y="{y + 13}" font-size="12" text-anchor="end">'
                     f'{esc(r["impl"])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(serve * scale, 1):.1f}" height="{bar_h}" '
                     f'fill="#1f77b4"/>')
        if db:
            parts.append(f'<rect x="{left + serve * scale:.1f}" y="{y}" width="{db * scale:.1f}" '
                         f'height="{bar_h}" fill="#2ca02c"/>')
        label = f"{serve:.0f} µs" + (f" + {db:.0f} µs database" if db else "")
        parts.append(f'<text x="{left + (serve + db) * scale + 6:.1f}" y="{y + 13}" font-size="12" '
                     f'font-weight="bold">{esc(label)}</text>')
        y += bar_h
    return y + 36


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    if sys.argv[1] == "--stores":
        rows = load(sys.argv[2])
        print(stores_table(rows))
        print("\n".join(["", "| target | measured | verdict |", "| --- | ---: | --- |"] + store_targets(rows)))
        return
    results, machine_path, out_md, out_svg, per_crate = sys.argv[1:6]
    rows = load(results)
    with open(machine_path) as f:
        machine = json.load(f)
    svg(rows, out_svg)
    md = ["# Performance", "",
          "Generated by `bench/run.sh` (do not edit by hand): every figure below comes from one run "
          "of that command on the machine described here. Each implementation runs the same workload "
          "on the same payloads, pinned to one core with `taskset`, for several repetitions; the "
          "tables give the median, the min – max over repetitions and the spread "
          "((max − min) ÷ median), and the ratio of our median to each peer's.", "",
          f"![throughput chart]({os.path.basename(out_svg)})", "",
          "## Machine and noise", "",
          f"- CPU: {machine.get('cpu', '?')}; {machine.get('cores', '?')} cores; "
          f"{machine.get('memory', '?')}; kernel {machine.get('kernel', '?')}",
          f"- Toolchain: {machine.get('rustc', '?')}; {machine.get('python', '?')}; node {machine.get('node', '?')}",
          f"- Run: {machine.get('date', '?')}; {machine.get('reps', '?')} repetitions of "
          f"{machine.get('millis', '?')} ms per in-process workload; in-process workloads pinned to "
          f"CPU {machine.get('cpu_pin', '?')}",
          f"- Load average before the run: {machine.get('load_before', '?')}; after: "
          f"{machine.get('load_after', '?')}. The machine is shared (2 cores, other jobs compiling "
          "during the run), so absolute numbers are noisy; the spread column shows how much. Ratios "
          "are steadier than absolutes because every implementation ran under the same load.", "",
          "## Targets", "", targets(rows), ""]
    for workload, title, unit in WORKLOADS:
        if not any(r["workload"] == workload for r in rows):
            md += [f"## {title}", "", "Not measured in this run.", ""]
            continue
        md += [f"## {title}", "", table(rows, workload, unit), ""]
        if workload == "e2e":
            md += ["### Per store", "",
                   "The same cycles against `lti serve` with only `[storage]` changed: `memory://`, "
                   "`sqlite://` (a fresh file: the application's default and the headline figure), "
                   "`postgres://` and `postgres://` with `nonce_url = \"redis://…\"` (the documented "
                   "multi-instance setup). CPU time per cycle is user + system time from `/proc` over "
                   "the timed phases ÷ cycles; for the database it is the sum over every process named "
                   "`postgres` / `redis-server` (other clients of those servers during the run would be "
                   "counted too). A row naming instances + haproxy is the load-balanced setup of "
                   "`docs/deployment.md`: that many `lti serve` processes on PostgreSQL + Redis behind "
                   "HAProxy (`deploy/haproxy.cfg`), every one of them and HAProxy on the server's one "
                   "core (its CPU column sums them all), so on this machine it measures the cost of the "
                   "extra hop, not the scaling that separate hosts give.", "", stores_table(rows), ""]
            md.append(e2e_latency(rows))
            md.append("")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            md += [f.read().strip(), ""]
    md += ["## Per-crate measurements", "",
           "The per-crate sections below are written by each crate's own benchmarks "
           "(`docs/performance/*.md`) and appended verbatim.", ""]
    for path in sorted(glob.glob(os.path.join(per_crate, "*.md"))):
        with open(path) as f:
            md += [f"<!-- docs/performance/{os.path.basename(path)} -->",
                   f.read().rstrip(), ""]
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
