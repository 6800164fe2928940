#!/usr/bin/env python3
"""Turn target/bench/results.json (from bench/bench.py) into BENCHMARKS.md and bench/plots/*.png.

Run by `make bench` after bench.py; can be re-run alone (`make bench-report`) to re-render
without measuring again.
"""

import csv
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "target/bench/results.json"
PLOTS = ROOT / "bench/plots"
OUT_MD = ROOT / "BENCHMARKS.md"

NO_VERIFY = "nodewatch-export --no-verify"
ETL_PATH = ROOT / ".tools/venv/bin/ethereumetl"
COLORS = {"direct": "#4c72b0", "nginx": "#55a868", "nodewatch": "#c44e52",
          "ethereumetl": "#8172b2", "bare": "#4c72b0", "nodewatch-export": "#c44e52",
          NO_VERIFY: "#dd8452", "verify on": "#c44e52", "verify off": "#4c72b0"}
EXPORT_TOOLS = ("bare", "nodewatch-export", NO_VERIFY, "ethereumetl")
SHAPE_TITLE = {"eth_blockNumber": "eth_blockNumber",
               "getBlock_full": "eth_getBlockByNumber, full txs",
               "batch100": "batch of 100 eth_getBlockByNumber"}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs, fmt="{:.2f}"):
    """'median [min–max]' of a list."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}–{fmt.format(max(xs))}]"


def num(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def note_line(note):
    """A bullet for a note of bench.py: an output check, or a run that failed."""
    return f"- {note}" if "failed" in note.split("`")[0] else f"- Output check, {note}."


def verdict(ok):
    return "**met**" if ok else "**missed**"


class Doc:
    def __init__(self):
        self.lines = []

    def __call__(self, *lines):
        self.lines.extend(lines)

    def table(self, header, rows):
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            self.lines.append("| " + " | ".join(str(c) for c in r) + " |")
        self.lines.append("")

    def text(self):
        return "\n".join(self.lines) + "\n"


def savefig(fig, name):
    PLOTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(PLOTS / name, dpi=90)
    plt.close(fig)
    return f"bench/plots/{name}"


# === section 1 ==============================================================================


def proxy_cells(runs, upstream):
    """{(shape, conns): {target: [runs by rep]}}"""
    cells = {}
    for r in runs:
        if r.get("upstream", "anvil") != upstream:
            continue
        cells.setdefault((r["shape"], r["conns"]), {}).setdefault(r["target"], {})[r["rep"]] = r
    return cells


def ratios(cell, num_t, den_t, key="rps"):
    out = []
    for rep, r in cell.get(num_t, {}).items():
        d = cell.get(den_t, {}).get(rep)
        if d and d[key]:
            out.append(r[key] / d[key])
    return out


def section_proxy(doc, res, goals):
    p = res.get("proxy")
    if not p:
        doc("_Not run._", "")
        return
    cfg = res["config"]
    doc(f"Each cell: `wrk -t1 -cN -d{p['secs']}s` (large block: {p['secs_big']}s against anvil) "
        f"with a POST body, {p['repeats']} repeat(s); the three targets run back to back "
        "for every repeat, starting with a different one each time, and each ratio is taken "
        "within one repeat. Ratios are **median [min–max] over the repeats**; req/s and "
        "latencies are medians. `direct` is wrk straight at the node.",
        "")
    for upstream in cfg.get("proxy_upstreams", ["anvil"]):
        cells = proxy_cells(p["runs"], upstream)
        if not cells:
            continue
        if upstream == "anvil":
            doc("### Against one anvil node",
                "",
                "anvil itself is the limit for the large block (its `eth_getBlockByNumber(n, true)` "
                f"takes tens of ms for {res['chain']['big_txs']} transactions), so that shape says "
                "little about proxy cost.", "")
        else:
            doc("### Against the replay upstream (answers from memory)",
                "",
                "The same requests against `nwbench replay`, which serves the recorded answers "
                "from memory: the node is no longer the bottleneck, so this is closer to the "
                "proxy's own cost.", "")
        for shape in ("eth_blockNumber", "getBlock_full", "batch100"):
            rows = []
            for conns in p["conns"]:
                cell = cells.get((shape, conns))
                if not cell:
                    continue
                m = {t: med([r["rps"] for r in cell.get(t, {}).values()]) for t in ("direct", "nginx", "nodewatch")}
                p50 = {t: med([r["p50_us"] for r in cell.get(t, {}).values()]) for t in m}
                p99 = {t: med([r["p99_us"] for r in cell.get(t, {}).values()]) for t in m}
                errors = sum(r["errors"] for t in cell for r in cell[t].values())
                rows.append([
                    conns, num(m["direct"]), num(m["nginx"]), num(m["nodewatch"]),
                    spread(ratios(cell, "nodewatch", "direct")),
                    spread(ratios(cell, "nodewatch", "nginx")),
                    spread(ratios(cell, "nginx", "direct")),
                    f"{num(p50['direct'] / 1000, 2)} / {num(p50['nginx'] / 1000, 2)} / {num(p50['nodewatch'] / 1000, 2)}",
                    f"{num(p99['direct'] / 1000, 1)} / {num(p99['nginx'] / 1000, 1)} / {num(p99['nodewatch'] / 1000, 1)}",
                    spread(ratios(cell, "nodewatch", "direct", "p99_us")),
                    errors,
                ])
            doc(f"**{SHAPE_TITLE[shape]}** ({num(p['answer_bytes'].get(shape))} bytes per answer)", "")
            doc.table(["conns", "direct req/s", "nginx req/s", "nodewatch req/s", "nodewatch/direct",
                       "nodewatch/nginx", "nginx/direct", "p50 ms d/ng/nw", "p99 ms d/ng/nw",
                       "p99 nw/direct", "errors"], rows)
        # Goals at 32 connections, anvil, eth_blockNumber (the headline).
        cell = cells.get(("eth_blockNumber", 32))
        if cell and upstream == "anvil":
            goals["rps"] = ratios(cell, "nodewatch", "direct")
            goals["rps_nginx"] = ratios(cell, "nodewatch", "nginx")
            goals["nginx_direct"] = ratios(cell, "nginx", "direct")
            goals["p99"] = ratios(cell, "nodewatch", "direct", "p99_us")
        if cells.get(("batch100", 32)) and upstream == "anvil":
            goals["rps_batch"] = ratios(cells[("batch100", 32)], "nodewatch", "direct")
        if cells.get(("eth_blockNumber", 32)) and upstream == "replay":
            goals["rps_replay"] = ratios(cells[("eth_blockNumber", 32)], "nodewatch", "direct")
        # Issue 11's goals: nodewatch against nginx in the same runs, on every upstream.
        if cell:
            goals.setdefault("vs_nginx", {})[upstream] = {
                "rps": ratios(cell, "nodewatch", "nginx"),
                "p99": ratios(cell, "nodewatch", "nginx", "p99_us"),
            }
        # Plot: req/s over connections, one panel per shape.
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for ax, shape in zip(axes, ("eth_blockNumber", "getBlock_full", "batch100")):
            for t in ("direct", "nginx", "nodewatch"):
                xs, ys, lo, hi = [], [], [], []
                for conns in p["conns"]:
                    vals = [r["rps"] for r in cells.get((shape, conns), {}).get(t, {}).values()]
                    if vals:
                        xs.append(conns)
                        ys.append(statistics.median(vals))
                        lo.append(statistics.median(vals) - min(vals))
                        hi.append(max(vals) - statistics.median(vals))
                if xs:
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=t, color=COLORS[t])
            ax.set_xscale("log", base=2)
            ax.set_xticks(p["conns"], [str(c) for c in p["conns"]])
            ax.set_xlabel("connections")
            ax.set_ylabel("requests/s")
            ax.set_ylim(bottom=0)
            ax.set_title(SHAPE_TITLE[shape], fontsize=10)
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.suptitle(f"Throughput vs connections — against {upstream} (median, bars = min/max)", fontsize=11)
        path = savefig(fig, f"proxy-{upstream}.png")
        doc(f"![throughput against {upstream}]({path})", "")
        # Ratio plot.
        fig, ax = plt.subplots(figsize=(9, 3.4))
        width = 0.13
        i = 0
        for shape in ("eth_blockNumber", "getBlock_full", "batch100"):
            for den in ("direct", "nginx"):
                xs, ys, lo, hi = [], [], [], []
                for k, conns in enumerate(p["conns"]):
                    rs = ratios(cells.get((shape, conns), {}), "nodewatch", den)
                    if rs:
                        xs.append(k + (i - 2.5) * width)
                        ys.append(statistics.median(rs))
                        lo.append(statistics.median(rs) - min(rs))
                        hi.append(max(rs) - statistics.median(rs))
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2,
                       label=f"{shape} / {den}", alpha=0.9 if den == "direct" else 0.5)
                i += 1
        ax.axhline(0.85, color="black", ls="--", lw=1)
        ax.text(len(p["conns"]) - 0.5, 0.87, "goal 0.85 (vs direct)", ha="right", fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xticks(range(len(p["conns"])), [f"{c} conns" for c in p["conns"]])
        ax.set_ylabel("nodewatch req/s ÷ other")
        ax.set_title(f"nodewatch throughput ratio — against {upstream}", fontsize=11)
        ax.legend(fontsize=7, ncol=3)
        ax.grid(alpha=0.3, axis="y")
        path = savefig(fig, f"ratio-{upstream}.png")
        doc(f"![ratios against {upstream}]({path})", "")


# === section 2 ==============================================================================


def section_resources(doc, res, goals):
    p, rs = res.get("proxy"), res.get("resources")
    if not p or not rs:
        doc("_Not run._", "")
        return
    rows = []
    for upstream, r in rs.items():
        under = [x["proxy_rss_kib"] for x in p["runs"]
                 if x.get("upstream", "anvil") == upstream and x["conns"] == 32 and x["target"] == "nodewatch"]
        under_ng = [x["proxy_rss_kib"] for x in p["runs"]
                    if x.get("upstream", "anvil") == upstream and x["conns"] == 32 and x["target"] == "nginx"]
        rows.append([upstream, f"{r['idle_rss_kib']['nodewatch'] / 1024:.1f}",
                     spread([u / 1024 for u in under], "{:.1f}"),
                     f"{r['peak_rss_kib']['nodewatch'] / 1024:.1f}",
                     f"{r['idle_rss_kib']['nginx'] / 1024:.1f}",
                     spread([u / 1024 for u in under_ng], "{:.1f}"),
                     f"{r['peak_rss_kib']['nginx'] / 1024:.1f}"])
        goals.setdefault("rss", []).extend(u / 1024 for u in under)
        for shape in ("eth_blockNumber", "getBlock_full", "batch100"):
            goals.setdefault("rss_by_shape", {}).setdefault(shape, []).extend(
                x["proxy_rss_kib"] / 1024 for x in p["runs"]
                if x.get("upstream", "anvil") == upstream and x["conns"] == 32
                and x["target"] == "nodewatch" and x["shape"] == shape)
        goals.setdefault("rss_peak", []).append(r["peak_rss_kib"]["nodewatch"] / 1024)
    doc("RSS in MiB: idle = after start-up and the first probes; under load = sampled at the end "
        "of every 32-connection run (all shapes); peak = VmHWM after the whole section "
        "(includes 128 connections and the 245 KB batch answers). nginx figures are master + "
        "workers.", "")
    doc.table(["upstream", "nodewatch idle", "nodewatch under 32-conn load", "nodewatch peak",
               "nginx idle", "nginx under 32-conn load", "nginx peak"], rows)
    doc("CPU per 10,000 requests (user+system seconds of the proxy process, from /proc, over "
        "each run; the node's own CPU for the same runs alongside). Median [min–max] over "
        "repeats at 32 connections.", "")
    rows = []
    for upstream in res["config"].get("proxy_upstreams", ["anvil"]):
        for shape in ("eth_blockNumber", "getBlock_full", "batch100"):
            vals = {}
            for t in ("nginx", "nodewatch"):
                vals[t] = [x["proxy_cpu_s"] / x["requests"] * 1e4 for x in p["runs"]
                           if x.get("upstream", "anvil") == upstream and x["shape"] == shape
                           and x["conns"] == 32 and x["target"] == t and x["requests"]]
            node = [x["node_cpu_s"] / x["requests"] * 1e4 for x in p["runs"]
                    if x.get("upstream", "anvil") == upstream and x["shape"] == shape
                    and x["conns"] == 32 and x["target"] == "direct" and x["requests"]]
            if vals["nodewatch"]:
                ratio = [a / b for a, b in zip(vals["nodewatch"], vals["nginx"]) if b]
                rows.append([upstream, shape, spread(vals["nodewatch"], "{:.3f}"), spread(vals["nginx"], "{:.3f}"),
                             spread(ratio), spread(node, "{:.3f}")])
                goals.setdefault("cpu_vs_nginx", {})[(upstream, shape)] = ratio
                if upstream == "anvil" and shape == "eth_blockNumber":
                    goals["cpu_bn"] = vals["nodewatch"]
                    goals["cpu_bn_nginx"] = vals["nginx"]
    doc.table(["upstream", "shape", "nodewatch CPU s / 10k req", "nginx CPU s / 10k req",
               "nodewatch ÷ nginx", "node CPU s / 10k req (direct runs)"], rows)


# === section 3 ==============================================================================


# The hung-primary figures of the last run before hedging (BENCHMARKS.md at commit 5f61b63),
# shown next to the new ones.
HUNG_BEFORE = {"commit": "5f61b63", "first_backup_ms": 10003, "slowest_ms": 10003}


def section_failover(doc, res, goals):
    f = res.get("failover")
    if not f:
        doc("_Not run._", "")
        return
    cfg = res["config"]
    doc(f"`nwbench failover`: {f[0]['concurrency']} closed-loop clients send `eth_gasPrice` through "
        "nodewatch (default configuration, but for the fork guard: the two nodes differ from genesis "
        "on, which it rightly treats as two chains it must not mix) to two anvil nodes started with "
        "different base fees, so every answer says which node gave it. After 2 s the primary gets "
        "SIGKILL (death) or SIGSTOP (a hang: the socket stays open, nothing answers). Times are "
        "from the signal.", "")
    rows = []
    for r in f:
        rows.append([r["signal"], r["rep"] + 1, num(r["requests"]), r["failed"],
                     num(r["first_backup_ms"], 2), r["in_flight"],
                     f"{num(r['in_flight_median_ms'], 2)} / {num(r['in_flight_max_ms'], 1)}",
                     f"{num(r['in_flight_extra_median_ms'], 2)} / {num(r['in_flight_extra_max_ms'], 1)}",
                     f"{num(r['before_p50_ms'], 2)} / {num(r['before_p99_ms'], 2)}",
                     f"{num(r['window_p50_ms'], 2)} / {num(r['window_p99_ms'], 1)} / {num(r['window_max_ms'], 1)}",
                     num(r.get("failovers_total"))])
    doc.table(["signal", "run", "requests", "failed", "first backup answer (ms)", "in flight",
               "in-flight latency med / max (ms)", "extra over pre-kill p50, med / max (ms)",
               "before: p50 / p99 (ms)", f"first {f[0]['window_s']:.0f} s after: p50 / p99 / max (ms)",
               "failovers (metric)"], rows)
    kills = [r for r in f if r["signal"] == "kill"]
    goals["failed"] = sum(r["failed"] for r in f)
    goals["first_backup_kill"] = [r["first_backup_ms"] for r in kills if r["first_backup_ms"] is not None]
    goals["inflight_extra_kill"] = [r["in_flight_extra_max_ms"] for r in kills]
    stops = [r for r in f if r["signal"] == "stop"]
    goals["first_backup_stop"] = [r["first_backup_ms"] for r in stops if r["first_backup_ms"] is not None]
    goals["slowest_stop"] = [r["window_max_ms"] for r in stops if r.get("window_max_ms") is not None]
    # Plot: latency over time around the signal.
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    for ax, sig in zip(axes, ("kill", "stop")):
        r = next((x for x in f if x["signal"] == sig), None)
        if not r:
            continue
        pts = {"primary": ([], []), "backup": ([], []), "failed": ([], [])}
        with open(ROOT / r["csv"]) as fh:
            rows = list(csv.DictReader(fh))
        step = max(1, len(rows) // 20000)
        for i, row in enumerate(rows):
            lat = float(row["latency_ms"])
            if i % step and lat < 5:  # thin the dense, uneventful part
                continue
            pts[row["served"]][0].append(float(row["start_ms"]) / 1000)
            pts[row["served"]][1].append(max(lat, 0.01))
        for served, color in (("primary", COLORS["direct"]), ("backup", COLORS["nginx"]), ("failed", "black")):
            if pts[served][0]:
                ax.scatter(*pts[served], s=3, color=color, label=served, alpha=0.6)
        ax.axvline(0, color="red", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("request start, s from the signal")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"primary SIG{sig.upper()} at t=0 ({r['concurrency']} clients)", fontsize=10)
        ax.legend(markerscale=4, fontsize=8)
        ax.grid(alpha=0.3)
    path = savefig(fig, "failover.png")
    doc(f"![failover latency]({path})", "")


# === section 4 ==============================================================================


def section_exporter(doc, res, goals):
    e = res.get("exporter")
    if not e:
        doc("_Not run._", "")
        return
    if e["exporter_found"]:
        doc(f"`nodewatch-export` found at `{Path(e['exporter_path']).relative_to(ROOT) if e['exporter_path'].startswith(str(ROOT)) else e['exporter_path']}` "
            f"({res['machine'].get('exporter')}) and measured.", "")
    else:
        doc("**`nodewatch-export` is not on this branch yet** (it is being written on another "
            "branch): its rows are missing. `make bench` adds them by itself as soon as "
            "`target/release/nodewatch-export` exists (or `NODEWATCH_EXPORT_BIN` points at a "
            "build), with the same flags as ethereumetl.", "")
    doc("All tools run `export_blocks_and_transactions` semantics: `eth_getBlockByNumber(n, true)` "
        "in batches of 100 blocks, 5 batches in flight (`-b 100 -w 5`, ethereum-etl's defaults). "
        "`bare` is `nwbench fetch`: the same batches, answers checked and dropped — the limit the "
        "node sets. Peak RSS is the process's ru_maxrss. Runs are interleaved; median [min–max].", "")
    for note in e.get("notes", []):
        doc(note_line(note))
    if e.get("notes"):
        doc("")
    runs = e["runs"]
    anvil = [r for r in runs if r["upstream"] == "anvil"]
    if anvil:
        blocks = anvil[0]["blocks"]
        bare = [r["secs"] for r in anvil if r["tool"] == "bare" and r["via"] == "direct"]
        rows = []
        for tool in EXPORT_TOOLS:
            for via in ("direct", "nodewatch"):
                rs = [r for r in anvil if r["tool"] == tool and r["via"] == via]
                if not rs:
                    continue
                secs = [r["secs"] for r in rs]
                rows.append([tool, via, spread(secs), spread([blocks / s for s in secs], "{:,.0f}"),
                             f"{med(secs) / med(bare):.2f}" if bare else "n/a",
                             f"{max(r['max_rss_kib'] for r in rs) / 1024:.0f}"])
                if via == "direct" and tool == "nodewatch-export":
                    goals["export_vs_bare"] = med(secs) / med(bare)
                if via == "direct" and tool == NO_VERIFY:
                    goals["export_noverify_vs_bare"] = med(secs) / med(bare)
                if via == "direct" and tool == "ethereumetl":
                    goals["etl_vs_bare"] = med(secs) / med(bare)
        doc(f"**anvil, blocks 0–{blocks - 1}** ({res['chain']['txs']} transfers per block)", "")
        doc.table(["tool", "via", "seconds", "blocks/s", "time ÷ bare direct", "peak RSS MiB"], rows)
    replay = [r for r in runs if r["upstream"] == "replay"]
    if replay:
        rows = []
        sizes = sorted({r["blocks"] for r in replay})
        for n in sizes:
            for tool in EXPORT_TOOLS:
                rs = [r for r in replay if r["tool"] == tool and r["blocks"] == n]
                if rs:
                    rows.append([f"{n:,}", tool, spread([r["secs"] for r in rs], "{:.2f}"),
                                 spread([r["blocks_per_s"] for r in rs], "{:,.0f}"),
                                 f"{max(r['max_rss_kib'] for r in rs) / 1024:.0f}"])
        verified_max = max((r["blocks"] for r in replay if r["tool"] == "nodewatch-export"), default=0)
        doc("**Replay upstream** (`nwbench replay`: 2,000 recorded blocks served from memory, "
            "renumbered, so any range exists; ethereumetl only up to "
            f"{res['config']['etl_max_range']:,} blocks to keep the run bounded"
            + (f"; nodewatch-export verifying only up to {verified_max:,} blocks: past the recorded "
               "ones the renumbered blocks' hashes no longer match their headers, which it rightly "
               "refuses, so longer ranges run `--no-verify`" if any(r["tool"] == NO_VERIFY for r in replay) else "")
            + ")", "")
        doc.table(["blocks", "tool", "seconds", "blocks/s", "peak RSS MiB"], rows)
        etl = {r["blocks"]: r["blocks_per_s"] for r in replay if r["tool"] == "ethereumetl"}
        for tool, key in (("nodewatch-export", "export_vs_etl_replay"), (NO_VERIFY, "export_noverify_vs_etl_replay")):
            nwx = {r["blocks"]: r["blocks_per_s"] for r in replay if r["tool"] == tool}
            common = sorted(set(etl) & set(nwx))
            if common:
                goals[key] = nwx[common[-1]] / etl[common[-1]]
                goals[key + "_blocks"] = common[-1]
        rss = {r["blocks"]: r["max_rss_kib"] / 1024 for r in replay if r["tool"] == "nodewatch-export"}
        for r in replay:
            if r["tool"] == NO_VERIFY and r["blocks"] not in rss:
                rss[r["blocks"]] = r["max_rss_kib"] / 1024
                goals["export_rss_noverify"] = True
        if rss:
            goals["export_rss"] = rss
        goals["bare_rss"] = {r["blocks"]: r["max_rss_kib"] / 1024 for r in replay if r["tool"] == "bare"}
        # Range plot.
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for tool in EXPORT_TOOLS:
            pts = sorted((r["blocks"], r["secs"], r["max_rss_kib"] / 1024) for r in replay if r["tool"] == tool)
            if pts:
                axes[0].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=tool, color=COLORS[tool])
                axes[1].plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=tool, color=COLORS[tool])
        for ax, label in zip(axes, ("wall time (s)", "peak RSS (MiB)")):
            ax.set_xscale("log")
            ax.set_xlabel("blocks exported (replay upstream)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_yscale("log")
        axes[1].set_ylim(bottom=0)
        fig.suptitle("Exporter scaling with range length", fontsize=11)
        path = savefig(fig, "exporter-range.png")
        doc(f"![exporter range scaling]({path})", "")


def section_exporter_jobs(doc, res, goals):
    e = res.get("exporter_jobs")
    if not e:
        return
    runs = e["runs"]
    blocks = runs[0]["blocks"] if runs else 0
    doc(f"**export_traces and export_all, blocks 0–{blocks - 1}** (the same chain; ethereumetl "
        "2.4.2 on Python 3.10, `.tools/venv310`), on anvil and on the replay upstream started "
        "with `--receipts-and-traces` (it then also serves the recorded blocks' receipts, "
        "`trace_block`, logs and code from memory). Both tools get the same flags: "
        "`-b 100 -w 5` for export_traces (`trace_block` per block, 100 to a batch), "
        f"`-b {blocks // 2} -B 100 -w 5` for export_all (two partitions of blocks, transactions, "
        "token transfers, receipts, logs, contracts and tokens). On anvil both tools wait on the "
        "node's full blocks (see the table above); the replay shows the tools' own speed. "
        "nodewatch-export verifies what it writes by default; `--no-verify` is measured beside it. "
        "Runs interleaved; median [min–max]; speed-up = blocks/s ÷ ethereumetl's.", "")
    for note in e.get("notes", []):
        doc(note_line(note))
    if e.get("notes"):
        doc("")
    rows = []
    for upstream in ("anvil", "replay"):
        for command in ("export_traces", "export_all"):
            rate, cells = {}, []
            for tool in ("nodewatch-export", NO_VERIFY, "ethereumetl"):
                rs = [r for r in runs if r["upstream"] == upstream and r["command"] == command and r["tool"] == tool]
                if not rs:
                    continue
                rate[tool] = med([r["blocks_per_s"] for r in rs])
                cells.append((tool, [upstream, command, tool, spread([r["secs"] for r in rs]),
                                     spread([r["blocks_per_s"] for r in rs], "{:,.0f}"),
                                     f"{max(r['max_rss_kib'] for r in rs) / 1024:.0f}"]))
            for tool, row in cells:
                if tool != "ethereumetl" and "ethereumetl" in rate:
                    ratio = rate[tool] / rate["ethereumetl"]
                    goals[f"{command}_{'noverify_' if tool == NO_VERIFY else ''}vs_etl_{upstream}"] = ratio
                    row.append(f"{ratio:.1f}×")
                else:
                    row.append("" if tool == "ethereumetl" else "n/a")
                rows.append(row)
    doc.table(["upstream", "command", "tool", "seconds", "blocks/s", "peak RSS MiB", "speed-up"], rows)


# === section 5 ==============================================================================


def section_scaling(doc, res, goals):
    s = res.get("scaling")
    if not s:
        doc("_Not run._", "")
        return
    doc("Connections: see the throughput plots in section 1 "
        "([anvil](bench/plots/proxy-anvil.png), [replay](bench/plots/proxy-replay.png)). "
        "Range length: see section 4 ([plot](bench/plots/exporter-range.png)).", "")
    b = s.get("batch")
    if b:
        doc(f"**Batch size** (against anvil, {b['conns']} connections, "
            "`eth_getBlockByNumber(n, false)` items): items/s, median over repeats.", "")
        sizes = sorted({r["size"] for r in b["runs"]})
        rows = []
        for size in sizes:
            cell = {}
            for r in b["runs"]:
                if r["size"] == size:
                    cell.setdefault(r["target"], {})[r["rep"]] = r
            m = {t: med([r["items_per_s"] for r in cell.get(t, {}).values()]) for t in ("direct", "nginx", "nodewatch")}
            rows.append([size, num(m["direct"]), num(m["nginx"]), num(m["nodewatch"]),
                         spread(ratios(cell, "nodewatch", "direct")), spread(ratios(cell, "nodewatch", "nginx"))])
        doc.table(["batch size", "direct items/s", "nginx items/s", "nodewatch items/s",
                   "nodewatch/direct", "nodewatch/nginx"], rows)
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for t in ("direct", "nginx", "nodewatch"):
            ys = [med([r["items_per_s"] for r in b["runs"] if r["size"] == n and r["target"] == t]) for n in sizes]
            ax.plot(sizes, ys, marker="o", label=t, color=COLORS[t])
        ax.set_xscale("log")
        ax.set_xlabel("items per batch")
        ax.set_ylabel("items/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Batch size scaling (anvil, {b['conns']} connections)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
        path = savefig(fig, "scaling-batch.png")
        doc(f"![batch scaling]({path})", "")
    u = s.get("upstreams")
    if u:
        doc(f"**Upstream count** (1, 3, 10 upstreams, all healthy and probed every 2 s; requests go "
            f"to rank 1; replay upstreams, {u['conns']} connections): req/s, median over repeats. "
            "`direct` is wrk straight at the rank-1 replay port in the same repeat.", "")
        counts = sorted({r["upstreams"] for r in u["runs"]})
        rows = []
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for shape in ("eth_blockNumber", "batch100"):
            ys = []
            for n in counts:
                cell = {}
                for r in u["runs"]:
                    if r["upstreams"] == n and r["shape"] == shape:
                        cell.setdefault(r["target"], {})[r["rep"]] = r
                m = {t: med([r["rps"] for r in cell.get(t, {}).values()]) for t in ("direct", "nodewatch")}
                cpu = [r["proxy_cpu_s"] / r.get("requests", r["rps"] * res["config"]["secs"]) * 1e4
                       for r in cell.get("nodewatch", {}).values() if r["rps"]]
                rows.append([shape, n, num(m["direct"]), num(m["nodewatch"]),
                             spread(ratios(cell, "nodewatch", "direct")), spread(cpu, "{:.3f}")])
                ys.append((m["nodewatch"], m["direct"]))
            line, = ax.plot(counts, [y[0] for y in ys], marker="o", label=f"nodewatch, {shape}")
            ax.plot(counts, [y[1] for y in ys], marker="x", ls="--", color=line.get_color(),
                    alpha=0.6, label=f"direct (same repeats), {shape}")
        doc.table(["shape", "upstreams", "direct req/s", "nodewatch req/s", "nodewatch/direct",
                   "nodewatch CPU s / 10k req"], rows)
        ax.set_xlabel("configured upstreams")
        ax.set_ylabel("requests/s")
        ax.set_xticks(counts)
        ax.set_ylim(bottom=0)
        ax.set_title("Upstream count scaling (replay upstreams)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = savefig(fig, "scaling-upstreams.png")
        doc(f"![upstream scaling]({path})", "")
    w = s.get("workers")
    if w:
        doc(f"**Serving threads** (`proxy.threads`: the default, one per core, against "
            f"`NODEWATCH__PROXY__THREADS=1`; anvil, {w['conns']} connections):", "")
        rows = []
        for shape in ("eth_blockNumber", "batch100"):
            cell = {}
            for r in w["runs"]:
                if r["shape"] == shape:
                    cell.setdefault(r["target"], {})[r["rep"]] = r
            for t in ("direct", "nodewatch (one thread per core)", "nodewatch (1 thread)"):
                rs = list(cell.get(t, {}).values())
                cpu = [r["proxy_cpu_s"] / r["requests"] * 1e4 for r in rs if r["proxy_cpu_s"] is not None and r["requests"]]
                rows.append([shape, t, num(med([r["rps"] for r in rs])),
                             spread(ratios(cell, t, "direct")) if t != "direct" else "1",
                             num(med([r["p99_us"] for r in rs]) / 1000, 1) if rs else "n/a",
                             spread(cpu, "{:.3f}") if cpu else "–"])
        doc.table(["shape", "target", "req/s", "÷ direct", "p99 ms", "proxy CPU s / 10k req"], rows)


# === section 6 ==============================================================================


PROPOSALS = """\
What was done, and what is left. Earlier rounds made `parse_answers` keep results as slices
of the upstream's `Bytes`, pre-sized the client body and counted request items per label set
(`Tally`). This round (issue 11), each change measured with `NODEWATCH_BIN=<binary>
bench/bench.py --only proxy` against the binary before it, in back-to-back runs on the same
machine (figures at 32 connections, nodewatch ÷ nginx, median of 3 repeats):

1. **Done — one copy of an answer (`src/body.rs`).** The client body is a chain of `Bytes`:
   the envelope copied, every value of 1 KiB or more a slice of the upstream's buffer. RSS
   under 32-connection batch load fell from 35.6 to 27.3 MiB (replay) and 27.0 to 20.0 MiB
   (anvil). It cost CPU: a 100-item batch became ~200 chunks, which hyper writes 16 at a time
   (batch100 CPU ÷ nginx 5.3 → 6.9 on replay).
2. **Done — the node's body passed on whole when it already is the answer
   (`jsonrpc::encode_client`).** When the client numbers a batch 0, 1, … (ethereum-etl's
   `request_id=idx`, nodewatch-export too) and the node writes the envelope as nodewatch
   does, the client gets the upstream body itself: one chunk, no copy. On anvil this took back
   the cost of 1 (batch100 CPU ÷ nginx 3.15, against 3.30 before this round); on the replay
   only part of it (5.70 against 5.31). The benchmark's batch is now numbered from 0 like ethereum-etl's (before this round
   it was numbered from 1).
3. **Done — an in-flight answer budget (`src/budget.rs`, `proxy.max_inflight_bytes`).** Each
   answer's buffer is reserved before it is filled and given back when the client has it;
   `tests/answer_budget.rs` sends 64 × 3 MiB against a 24 MiB budget and checks the peak RSS.
   Upstream connections buffer at most 64 KiB each (hyper's default is ~400 KiB).
4. **Done — per-request overhead:** one timer per attempt instead of one per body chunk,
   per-upstream metric children resolved once. Too small to separate from the noise here.
5. **Done — plain-http upstream connections driven by the request's own task
   (`nodewatch_http::direct`).** hyper-util's pool runs each connection in a task of its own
   and hands the request, the answer head and every body chunk across channels. Now the
   task serving the client polls the upstream connection itself while it waits for the head
   and reads the body, and puts it back on an idle list at the body's end (https keeps
   hyper-util's pool, for h2). Measured with `bench/ab.py 3 3 base=<before> direct=<after>`
   (replay, 32 connections, CPU per 10k requests, median of 3): full block 1.29 → 1.14 s,
   100-item batch 4.30 → 3.80 s, batch RSS 23.6 → 18.6 MiB; `eth_blockNumber` 0.42 → 0.44 s,
   within its spread (0.41–0.49 against 0.42–0.44). `strace -c` counts 0.04 futex calls per
   request against 0.26 before.
6. **Done — client connections served on threads of their own (`server::threads`,
   `proxy.threads`, default one per CPU).** One multi-thread runtime's workers park, wake
   and steal tasks from each other; now each serving thread runs a current-thread runtime
   with its own `epoll_wait`, the accept loop gives a new connection to the thread serving
   the fewest, and the connection, its requests and the plain-http upstream connections
   they open stay on that thread. An attempt with one candidate also skips the hedge race's
   bookkeeping. `bench/ab.py 3 3 direct=<before> shard2=<after> shard2t1=<after>:NODEWATCH__PROXY__THREADS=1`
   (replay, 32 connections, median of 3; CPU per 10k requests): `eth_blockNumber`
   0.404 → 0.301 s (−25%) and 27.8k → 39.1k req/s; full block 1.112 → 0.915 s (−18%) and
   11.3k → 13.6k req/s; 100-item batch 4.21 → 4.36 s, within its spread (3.9–5.0). One
   thread: 0.267 s per 10k small calls, but full blocks 23% and batches 23% slower.
   Against anvil (`AB_UPSTREAM=anvil bench/ab.py 2 5 before=<before> after=<after>`) the
   CPU fell as much (`eth_blockNumber` 0.416 → 0.306 s, batch 5.17 → 4.30 s) and req/s rose
   (24.3k → 30.8k), but the small call's p99 rose, 3.5 → 4.4 ms, as it did in the table
   above; against the replay it did not (2.8–3.2 → 2.3–2.7 ms). Why is not established: a
   serving thread the kernel takes off its core holds its own connections' requests, where
   one runtime's other worker would have taken them.
7. **Tried and dropped:** mimalloc (CPU per small request −20% on the multi-thread
   runtime, but RSS under batch load doubled, 20 → 39 MiB, past the 30 MiB goal; tried
   again on the serving threads: CPU within the spread, batch RSS 16.8 → 30.8 MiB); hyper's flattened writes (`writev(false)`:
   batch CPU −22% against 1., RSS 47 MiB); a hand-written `memchr` envelope scanner, which
   ran at 2.1 GB/s on a 292 KB batch answer against serde_json's 2.6 GB/s (serde_json already
   skips strings 8 bytes at a time), and, this round, a word-at-a-time (SWAR) envelope
   scanner that left anything unusual to serde_json: 31 µs against serde_json's 35 µs on the
   63 KB full block, 88 against 95 µs on the 245 KB batch (best of 15 × 200 parses), too
   little for a second JSON parser to keep in step with the first. serde_json stays the
   scanner. Its place is taken by a
   property test of the pass-through against the piece-by-piece answer, read back by
   serde_json (`fuzz_client_answer_is_the_same_whether_passed_through_or_written`).
8. **Left: the JSON and the kernel.** JSON is {json_batch:.0f}% of CPU samples under
   batch load: serde_json checks every byte to find the ids, which nginx never does. For
   `eth_blockNumber`, the kernel (TCP on loopback, context switches, wake-ups) is
   {kernel_bn:.0f}% of nodewatch's samples, hyper's codecs {hyper_bn:.0f}%, tokio
   {tokio_bn:.0f}%, the allocator {alloc_bn:.1f}%; nodewatch's own code is {nw_bn:.1f}%.
   With the serving threads, nodewatch makes the same four socket calls per small request
   as nginx (`strace -c`: 2 `recvfrom`, 2 `writev`, 0.14 `epoll_wait`, no `futex`); what
   is left is user-space work spread thin over hyper, tokio, the allocator and nodewatch.
   `select` with many upstreams:
   {cpu10:.3f} s of CPU per 10k `eth_blockNumber` requests with 10 upstreams against {cpu1:.3f} s
   with one (section 5).
"""


def upstream_cpu(res, n):
    runs = res.get("scaling", {}).get("upstreams", {}).get("runs", [])
    vals = [r["proxy_cpu_s"] / r["requests"] * 1e4 for r in runs
            if r["upstreams"] == n and r["shape"] == "eth_blockNumber" and r["target"] == "nodewatch"
            and r.get("requests") and r.get("proxy_cpu_s") is not None]
    return med(vals) or float("nan")


def section_profile(doc, res, goals):
    pr = res.get("profile")
    if not pr or "error" in pr:
        doc(f"_Not run{': ' + pr['error'] if pr else ''}._", "")
        return
    doc("`perf record -e cpu-clock -F 1999 -g -p <nodewatch>` for "
        f"{res['config']['perf_secs']} s while `wrk -c32` runs through nodewatch against anvil "
        "(hardware counters are not available in this VM: `perf stat -e instructions` says "
        "'not supported', so this is timer sampling). Self time, grouped by where it is spent:", "")
    shapes = [s for s in ("eth_blockNumber", "batch100") if s in pr]
    groups = list(next(iter(pr.values()))["groups"])
    rows = [[g] + [f"{pr[s]['groups'].get(g, 0):.1f}%" for s in shapes] for g in groups]
    doc.table(["cost group"] + [f"{s} ({pr[s]['samples']} samples)" for s in shapes], rows)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.4
    for i, s in enumerate(shapes):
        ax.barh([k + i * width for k in range(len(groups))], [pr[s]["groups"].get(g, 0) for g in groups],
                width, label=s)
    ax.set_yticks([k + width / 2 for k in range(len(groups))], groups, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("% of nodewatch CPU samples")
    ax.set_title("Where nodewatch spends CPU under 32-connection load", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3, axis="x")
    path = savefig(fig, "profile.png")
    doc(f"![profile groups]({path})", "")
    for s in shapes:
        doc(f"Top symbols, {s} (self %):", "")
        rows = [[f"{t['pct']:.2f}%", t["dso"], f"`{t['symbol'][:110]}`"] for t in pr[s]["top"][:15]]
        doc.table(["self", "object", "symbol"], rows)

    def g(shape, name):
        return pr.get(shape, {}).get("groups", {}).get(name, 0.0)

    def sym(shape, pattern):
        import re
        return sum(t["pct"] for t in pr.get(shape, {}).get("top", []) if re.search(pattern, t["symbol"]))

    json_batch = g("batch100", "JSON (serde_json, nodewatch::jsonrpc)") + sym("batch100", r"from_utf8")
    doc(PROPOSALS.format(
        json_batch=json_batch,
        memcpy_batch=g("batch100", "memcpy/memmove/memset"),
        alloc_batch=g("batch100", "allocator (malloc/free/realloc)"),
        prom_batch=g("batch100", "prometheus metrics"),
        prom_bn=g("eth_blockNumber", "prometheus metrics"),
        kernel_bn=g("eth_blockNumber", "kernel: TCP/IP, syscalls, scheduling"),
        hyper_bn=g("eth_blockNumber", "hyper HTTP/1 codec + server") + g("eth_blockNumber", "hyper client + pool (upstream side)"),
        tokio_bn=g("eth_blockNumber", "tokio runtime, timers, I/O driver"),
        alloc_bn=g("eth_blockNumber", "allocator (malloc/free/realloc)"),
        nw_bn=g("eth_blockNumber", "nodewatch proxy/router/upstream"),
        clock_bn=sym("eth_blockNumber", r"clock_gettime"),
        cpu1=upstream_cpu(res, 1), cpu10=upstream_cpu(res, 10),
    ))
    goals["json_batch"] = json_batch


# === section 7 ==============================================================================

VERIFY_KIND_TITLE = {"full_block": "eth_getBlockByNumber(n, true)",
                     "receipts100": "100 × eth_getTransactionReceipt (batch)",
                     "full_blocks100": "100 × eth_getBlockByNumber(n, true) (batch)"}
VERIFY_COMMANDS = ("export_blocks_and_transactions", "export_receipts_and_logs", "export_token_transfers", "export_all")


def crate_figures(crate):
    """{name: [value per run]} and {name: unit} of the crate bench's FIGURE lines."""
    values, units = {}, {}
    for run in crate.get("runs", []):
        for name, f in run["figures"].items():
            values.setdefault(name, []).append(f["value"])
            units[name] = f["unit"]
    return values, units


def verify_cells(runs):
    """{kind: {verify on?: [runs]}}"""
    cells = {}
    for r in runs:
        cells.setdefault(r["kind"], {}).setdefault(r["verify"], []).append(r)
    return cells


def per_request(rs, key, scale=1e3):
    return [r[key] / r["requests"] * scale for r in rs if r["requests"]]


def metric_per_request(rs, name):
    return [r["metrics"].get(name, {}).get("total", 0.0) / r["requests"] for r in rs if r["requests"]]


def section_verify(doc, res, goals):
    v = res.get("verify")
    if not v:
        doc("_Not run._", "")
        return
    run = res.get("section_runs", {}).get("verify", {})
    chain = v.get("chain", {})
    doc(f"Measured on {v.get('started', run.get('started', '?'))} (nodewatch commit `{run.get('commit', '?')}`"
        f"{', quick mode' if run.get('quick') else ''}), 1-minute load average "
        f"{v['loadavg_start']:.1f} at the start and {v['loadavg_end']:.1f} at the end: the 2 cores were "
        "shared with other builds and tests, so these are upper bounds of CPU and lower bounds of speed. "
        "Verification is on by default in both the proxy (`[verify] enabled = true`) and the exporter; "
        "each figure is measured beside the same work with it off.", "")
    rows = []

    def add(goal, measured, ok, note=""):
        rows.append([goal, measured, "n/a" if ok is None else verdict(ok), note])
        if ok is not None or "≥" in goal:  # the goals, not the reference figures, go to the headline
            goals.setdefault("verify_summary", []).append(("verified data: " + goal, measured, ok, note))

    # --- the crate
    crate = v.get("crate", {})
    values, units = crate_figures(crate)
    share = [r["cpu_share"] for r in crate.get("runs", []) if r.get("cpu_share")]
    if "blocks_per_s_150tx" in values:
        bps = values["blocks_per_s_150tx"]
        # Per core = per CPU-second: the bench times with the wall clock, and on shared cores it
        # had one for only part of that time.
        per_cpu = [r["figures"]["blocks_per_s_150tx"]["value"] / r["cpu_share"]
                   for r in crate["runs"] if r.get("cpu_share") and "blocks_per_s_150tx" in r["figures"]]
        judged = per_cpu or bps
        add("verification keeps up: ≥ 1,000 mainnet-sized blocks/s per core (150 txs with receipts and logs)",
            spread(judged, "{:,.0f}") + " blocks/s per CPU-second", med(judged) >= 1000,
            f"wall clock: {spread(bps, '{:,.0f}')} blocks/s with a core {spread([x * 100 for x in share], '{:.0f}')}% "
            f"of the time; {1e6 / med(judged):,.0f} µs of CPU per block; `cargo bench -p nodewatch-verify`, default checks")
        goals["verify_bps"] = med(judged)
        if "blocks_per_s_150tx_senders" in values:
            add("the same with senders recovered (`senders = true`, off by default)",
                spread(values["blocks_per_s_150tx_senders"], "{:,.0f}") + " blocks/s",
                None, f"ecrecover: {spread(values.get('senders_us_per_tx', []), '{:.1f}')} µs per transaction")
    elif crate.get("error"):
        add("verification keeps up: ≥ 1,000 mainnet-sized blocks/s per core", "not measured", None,
            crate["error"].splitlines()[0][:120])
    # --- the proxy
    p = v.get("proxy", {})
    cells = verify_cells(p.get("runs", []))
    for kind in ("full_block", "receipts100", "full_blocks100"):
        c = cells.get(kind)
        if not c or True not in c or False not in c:
            continue
        on, off = per_request(c[True], "cpu_s"), per_request(c[False], "cpu_s")
        add(f"proxy CPU per request, verification on vs off: {VERIFY_KIND_TITLE[kind]}",
            f"{spread(on, '{:.2f}')} ms vs {spread(off, '{:.2f}')} ms", None,
            f"+{med(on) - med(off):.2f} ms ({med(on) / med(off):.1f}×)" if med(off) else "")
    c = cells.get("receipts100", {})
    if c.get(True):
        fetches = metric_per_request(c[True], "nodewatch_verify_fetches_total")
        add("a 100-receipt batch costs far fewer than 100 extra upstream calls",
            spread(fetches, "{:.1f}") + " extra calls per batch", med(fetches) < 100,
            "`nodewatch_verify_fetches_total`: one `eth_getBlockReceipts` and one header per block not seen before")
    wrong = sum(r["metrics"].get("nodewatch_wrong_answers_total", {}).get("total", 0) for r in p.get("runs", []))
    errors = sum(r["errors"] + r["nulls"] for r in p.get("runs", []))
    if p.get("runs"):
        add("no false alarms against an honest node: wrong answers counted, errors and nulls served",
            f"{wrong:.0f} wrong, {errors} errors/nulls", wrong == 0 and errors == 0, "")
    # --- the exporters
    e = v.get("exporter", {})
    ratios_by = {}
    for upstream in ("replay", "anvil"):
        for command in VERIFY_COMMANDS:
            rate = {t: med([r["blocks_per_s"] for r in e.get("runs", [])
                            if r["upstream"] == upstream and r["command"] == command and r["tool"] == t])
                    for t in ("ethereumetl", "nodewatch-export", NO_VERIFY)}
            if rate["ethereumetl"]:
                ratios_by[(upstream, command)] = {t: rate[t] / rate["ethereumetl"] if rate[t] else None
                                                  for t in ("nodewatch-export", NO_VERIFY)}
    main_upstream = "replay" if any(u == "replay" for u, _ in ratios_by) else "anvil"
    for command in VERIFY_COMMANDS:
        r = ratios_by.get((main_upstream, command))
        if not r:
            continue
        failed = [t for u, c, t in e.get("failures", []) if u == main_upstream and c == command]
        anvil = ratios_by.get(("anvil", command), {}) if main_upstream == "replay" else {}
        note = [f"--no-verify: {r[NO_VERIFY]:.1f}×" if r.get(NO_VERIFY) else "",
                "on anvil (node-bound): " + " / ".join(
                    f"{anvil[t]:.1f}×" + (" --no-verify" if t == NO_VERIFY else " verifying")
                    for t in ("nodewatch-export", NO_VERIFY) if anvil.get(t)) if anvil else ""]
        note = "; ".join(x for x in note if x)
        if r["nodewatch-export"] is None:
            reason = ("not measured: nodewatch-export verifying failed on this upstream (section 7's output checks)"
                      if "nodewatch-export" in failed else "not measured")
            add(f"exporter verifying ≥ 10× ethereumetl: {command} ({main_upstream})", reason, None, note)
            goals.setdefault("verify_export_unmeasured", []).append(command)
            continue
        add(f"exporter verifying ≥ 10× ethereumetl: {command} ({main_upstream})",
            f"{r['nodewatch-export']:.1f}×", r["nodewatch-export"] >= 10, note)
        goals.setdefault("verify_export", {})[command] = r["nodewatch-export"]
        if r.get(NO_VERIFY):
            goals.setdefault("verify_export_plain", {})[command] = r[NO_VERIFY]
    goals["verify_export_upstream"] = main_upstream
    doc.table(["goal", "measured (median [min–max])", "verdict", "note"], rows)

    # --- details: the crate
    doc("### The verification crate",
        "",
        f"`{crate.get('command', 'cargo bench -p nodewatch-verify')}` (release, one thread; built by cargo "
        "with `--no-run`, then its executable run as cargo runs it, `--bench` from the crate's directory, "
        f"under `/usr/bin/time`; {len(crate.get('runs', []))} run(s), median [min–max]): real mainnet blocks with their receipts "
        "from `crates/verify/tests/fixtures/`, each verified whole (header hash, every transaction "
        "re-encoded and hashed, transactions and withdrawals roots; receipts root, every bloom, "
        "positions and counts). The bench times with the wall clock, so a core taken by another "
        "process counts against it: it had a core for "
        + (spread([x * 100 for x in share], "{:.0f}") + "% of its wall time" if share else "an unknown share of its time")
        + " (user+system ÷ elapsed), so the goal is judged per CPU-second: the wall-clock figure ÷ that share. "
        "The figures below are the bench's own (wall clock).", "")
    if crate.get("error") and not values:
        doc(f"_Not measured: {crate['error'][:300]}_", "")
    fixtures = sorted({n.split(".", 1)[1] for n in values if "." in n})
    if fixtures:
        trows = []
        for f in fixtures:
            def cell(name, fmt="{:,.0f}"):
                return spread(values[f"{name}.{f}"], fmt) if f"{name}.{f}" in values else "–"
            trows.append([f"`{f}`", cell("verify_block_us", "{:,.1f}"), cell("verify_receipts_us", "{:,.1f}"),
                          cell("blocks_per_s"), cell("block_with_senders_us", "{:,.1f}")])
        doc.table(["fixture", "block µs", "block receipts µs", "block + receipts per s",
                   "block (senders too) + receipts µs"], trows)
    other = [n for n in values if "." not in n]
    if other:
        doc.table(["figure", "value", "unit"],
                  [[f"`{n}`", spread(values[n], "{:,.1f}"), units[n]] for n in other])

    # --- details: the proxy
    if cells:
        doc("### The proxy: CPU per request with verification on and off",
            "",
            f"anvil serving a chain of its own ({chain.get('blocks', '?')} blocks × "
            f"{chain.get('txs_per_block', '?')} transactions, {chain.get('logs_per_block', '?')} logs per block, "
            f"transaction types {', '.join(chain.get('tx_types', []))}; a full block is "
            f"{num(chain.get('full_block_bytes'))} bytes of JSON, its receipts {num(chain.get('receipts_bytes'))}), "
            "two fresh nodewatch processes per repeat against it: one as configured by default "
            "(verification on), one with `NODEWATCH__VERIFY__ENABLED=false`. Each gets the same "
            "requests, one at a time on one keep-alive connection, in chain order as an ETL job "
            "asks: the full blocks are the chain's first blocks, the receipts its last ones, so every "
            "receipt's block (header and receipts) is new to the verifier's cache when first asked; only "
            "the 100-block batches repeat blocks, which costs nothing extra (a full block needs no fetch). "
            "CPU is nodewatch's user+system time over the requests (`/proc/<pid>/task/*/schedstat`, "
            "cross-checked with `/proc/<pid>/stat`); extra upstream calls are "
            "`nodewatch_verify_fetches_total` from its `/metrics`. "
            f"{max((r['rep'] for r in p['runs']), default=0) + 1} repeat(s), "
            "the order of on and off alternating; median [min–max].", "")
        prows = []
        for kind in ("full_block", "receipts100", "full_blocks100"):
            c = cells.get(kind)
            if not c:
                continue
            for on in (True, False):
                rs = c.get(on, [])
                if not rs:
                    continue
                fetches = {}
                for r in rs:
                    for labels, n in r["metrics"].get("nodewatch_verify_fetches_total", {}).get("by", {}).items():
                        fetches.setdefault(labels.replace('{method="', "").rstrip('"}'), []).append(n / r["requests"])
                prows.append([VERIFY_KIND_TITLE[kind] if on else "", "on" if on else "off", rs[0]["requests"],
                              spread(per_request(rs, "cpu_s"), "{:.3f}"),
                              spread(per_request(rs, "cpu_ticks_s"), "{:.2f}"),
                              spread(per_request(rs, "wall_s"), "{:.1f}"),
                              spread(metric_per_request(rs, "nodewatch_upstream_attempts_total"), "{:.2f}"),
                              ", ".join(f"{m} {med(x):.2f}" for m, x in sorted(fetches.items())) or "0",
                              f"{med([r['bytes'] / r['requests'] for r in rs]) / 1024:,.0f}"])
        doc.table(["request", "verify", "requests", "nodewatch CPU ms / request", "(from /proc/stat ticks)",
                   "wall ms / request", "upstream attempts / request", "verification fetches / request",
                   "KiB / answer"], prows)
        for check in p.get("checks", []):
            doc(f"- {VERIFY_KIND_TITLE[check['kind']]}: the answer with verification on is "
                + ("the same JSON as with it off." if check["same_answer"] else "**DIFFERENT** from the one with it off."))
        doc("")
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        for ax, kind in zip(axes, ("full_block", "receipts100", "full_blocks100")):
            c = cells.get(kind, {})
            for x, on in enumerate((True, False)):
                vals = per_request(c.get(on, []), "cpu_s")
                if not vals:
                    continue
                m = statistics.median(vals)
                ax.bar(x, m, 0.6, yerr=[[m - min(vals)], [max(vals) - m]], capsize=4,
                       color=COLORS["verify on" if on else "verify off"])
                ax.text(x, max(vals), f"{m:.2f}", ha="center", va="bottom", fontsize=8)
            ax.set_xticks([0, 1], ["verification on", "off"])
            ax.margins(y=0.12)
            ax.set_ylabel("nodewatch CPU ms per request")
            ax.set_title(VERIFY_KIND_TITLE[kind], fontsize=9)
            ax.grid(alpha=0.3, axis="y")
        fig.suptitle(f"nodewatch CPU per request, verification on vs off ({chain.get('txs_per_block', 150)}-transaction "
                     "blocks with logs, anvil; median, bars = min/max)", fontsize=10)
        path = savefig(fig, "verify.png")
        doc(f"![CPU per request, verification on vs off]({path})", "")

    # --- details: the exporters
    if e.get("runs") or e.get("notes"):
        ranges = "; ".join(f"{u}: blocks {r['blocks'][0]}–{r['blocks'][1]}, {r['txs']:,} transactions"
                           for u, r in e.get("ranges", {}).items())
        doc("### The exporters: ethereumetl vs nodewatch-export verifying vs `--no-verify`",
            "",
            f"The same chain ({ranges}; their receipts and "
            "logs, a token transfer per contract call), every command that verification touches, "
            f"with the same flags for all three (`-b 100 -w 5`; export_all: two partitions, `-B 100`; "
            f"export_receipts_and_logs from the list of the range's transaction hashes); ethereumetl is "
            f"`{Path(e.get('ethereumetl', 'ethereumetl')).relative_to(ROOT) if str(e.get('ethereumetl', '')).startswith(str(ROOT)) else e.get('ethereumetl')}`. "
            "Straight at anvil (it sets the pace: ~0.1 s per full block) and at the replay upstream "
            "(`nwbench replay --receipts-and-traces`, recorded from that anvil, answers from memory: "
            "the tools' own speed"
            + ("" if not e.get("replay") else
               f"; `{e['replay']['nwbench'].replace(str(ROOT) + '/', '')}`, which serves "
               + ", ".join(f"`{k}`: {'yes' if v else '**no**'}" for k, v in e["replay"]["serves"].items())
               + ": the verifier asks for them, ethereumetl does not")
            + "). Runs interleaved; median [min–max]; "
            "speed-up = blocks/s ÷ ethereumetl's.", "")
        for note in e.get("notes", []):
            doc(note_line(note))
        if e.get("notes"):
            doc("")
        erows = []
        for upstream in ("anvil", "replay"):
            for command in VERIFY_COMMANDS:
                for tool in ("ethereumetl", "nodewatch-export", NO_VERIFY):
                    rs = [r for r in e.get("runs", []) if r["upstream"] == upstream and r["command"] == command
                          and r["tool"] == tool]
                    if not rs:
                        if [upstream, command, tool] in e.get("failures", []):
                            erows.append([upstream, command, tool, "failed", "–", "–", "–", "–"])
                        continue
                    ratio = ratios_by.get((upstream, command), {}).get(tool)
                    erows.append([upstream, command, tool, spread([r["secs"] for r in rs]),
                                  spread([r["blocks_per_s"] for r in rs], "{:,.0f}"),
                                  f"{med([r['txs'] / r['secs'] for r in rs]):,.0f}",
                                  f"{ratio:.1f}×" if ratio else "",
                                  f"{max(r['max_rss_kib'] for r in rs) / 1024:.0f}"])
        doc.table(["upstream", "command", "tool", "seconds", "blocks/s", "transactions/s", "speed-up",
                   "peak RSS MiB"], erows)


# === section 8 ==============================================================================

# Refusals within this long of the first one are the "first contact" (tests/rate_limit.rs):
# before the first limit answer nothing is known of the limit.
FIRST_CONTACT_S = 1.0
SIDECAR_COLORS = ["#c44e52", "#4c72b0", "#55a868", "#8172b2"]


def rl_steady(run, steady_from):
    """The steady part of a run: (start, end) s, from when every sidecar had learned a rate
    to when the first one finished, its last `1 - steady_from`; None without pacing."""
    samples = run["samples"]
    paced = next((s["t"] for s in samples if s["learned"] and all(x > 0 for x in s["learned"])), None)
    ends = [steps[-1]["end"] for steps in run["steps"] if steps]
    if paced is None or not ends or min(ends) <= paced:
        return None
    end = min(ends)
    return paced + steady_from * (end - paced), end


def rl_metric(run, name, where=lambda labels: True):
    """A metric of every sidecar at the end of the run, summed over the labels `where` takes."""
    return sum(v for m in run.get("metrics_end", []) if "error" not in m
               for k, v in m.items() if k.partition("{")[0] == name and where(k.partition("{")[2]))


def rl_figures(run, steady_from, export_calls):
    """Everything the section says of one run, from its raw record."""
    limit = run["limit"]
    c = run["counts"]
    f = {"limit": limit, "sidecars": run["sidecars"], "calls": c["calls"], "requests": c["requests"],
         "refused": c["refused"], "wall_s": run["wall_s"], "ideal_s": c["calls"] / limit,
         "own_calls": export_calls * run["sidecars"]}
    f["own_ideal_s"] = f["own_calls"] / limit
    same = run.get("same_rows", [])
    f["complete"] = bool(same) and all(same)
    f["verify_fetches"] = rl_metric(run, "nodewatch_verify_fetches_total")
    # Each sidecar's first learned rate (where AIMD started from), and when.
    f["first_learned"] = []
    for i in range(run["sidecars"]):
        first = next((s for s in run["samples"] if s["learned"][i] > 0), None)
        f["first_learned"].append((first["learned"][i], first["t"]) if first else None)
    # Call items a client got an error for (outcome "error": a batch item, "failed": a request).
    f["failed_items"] = rl_metric(run, "nodewatch_requests_total", lambda labels: 'outcome="ok"' not in labels)
    f["ratio"] = f["wall_s"] / f["ideal_s"] if f["ideal_s"] else None
    f["refused_share"] = c["refused"] / c["requests"] if c["requests"] else None
    # The provider's busy time: per command with one sidecar (as tests/rate_limit.rs), the
    # whole run's with two (their commands overlap).
    if run["sidecars"] == 1 and run["steps"][0] and all("busy" in s for s in run["steps"][0]):
        span = sum(s["busy"]["span_s"] for s in run["steps"][0])
        calls = sum(s["busy"]["calls"] for s in run["steps"][0])
        f["busy_how"] = "per command, added up"
    else:
        span, calls = run["busy"]["span_s"], run["busy"]["calls"]
        f["busy_how"] = "first to last request of the run"
    f["busy_s"], f["busy_calls"] = span, calls
    f["busy_ratio"] = span / (calls / limit) if calls else None
    refused = sorted(run.get("refused_at", []))
    f["first_contact"] = sum(1 for t in refused if t <= refused[0] + FIRST_CONTACT_S) if refused else 0
    f["after_contact"] = len(refused) - f["first_contact"]
    f["after_share"] = f["after_contact"] / c["requests"] if c["requests"] else None
    window = rl_steady(run, steady_from)
    f["steady"] = window
    if window:
        inside = [s for s in run["samples"] if window[0] <= s["t"] <= window[1]]
        f["steady_samples"] = len(inside)
        if inside:
            f["learned_each"] = [statistics.mean(s["learned"][i] for s in inside) for i in range(run["sidecars"])]
            f["learned_sum"] = statistics.mean(sum(s["learned"]) for s in inside)
            f["learned_sum_min"] = min(sum(s["learned"]) for s in inside)
            f["learned_sum_max"] = max(sum(s["learned"]) for s in inside)
        off = run["limiter_offset_s"]
        whole = [r["calls"] for r in run["limiter_seconds"]
                 if off + r["second"] >= window[0] and off + r["second"] + 1 <= window[1]]
        f["answered_steady"] = statistics.mean(whole) if whole else None
        f["answered_seconds"] = len(whole)
    last = run["samples"][-1]["learned"] if run["samples"] else []
    f["learned_end"] = last
    f["limited_end"] = run["samples"][-1]["limited"] if run["samples"] else []
    return f


def rl_plot(runs, steady_from, name):
    """Learned rate per sidecar (and their sum) against L, and the limiter's answered calls
    and refused requests per second, for each run: one column per run."""
    fig, axes = plt.subplots(2, len(runs), figsize=(6.5 * len(runs), 6.4), sharex="col", squeeze=False)
    for col, run in enumerate(runs):
        top, bottom = axes[0][col], axes[1][col]
        limit, n = run["limit"], run["sidecars"]
        ts = [s["t"] for s in run["samples"]]
        for i in range(n):
            top.plot(ts, [s["learned"][i] for s in run["samples"]], drawstyle="steps-post",
                     color=SIDECAR_COLORS[i % len(SIDECAR_COLORS)], lw=1.4,
                     label=f"sidecar {i + 1} learned" if n > 1 else "learned rate")
        if n > 1:
            top.plot(ts, [sum(s["learned"]) for s in run["samples"]], drawstyle="steps-post", color="black",
                     lw=1.6, label="sum of the sidecars")
        top.axhline(limit, color="#dd8452", ls="--", lw=1.5, label=f"limit L = {limit} calls/s")
        window = rl_steady(run, steady_from)
        for ax in (top, bottom):
            if window:
                ax.axvspan(*window, color="grey", alpha=0.15, lw=0)
            for steps in run["steps"]:
                for s in steps or []:
                    ax.axvline(s["end"], color="grey", ls=":", lw=0.8)
        refused = run.get("refused_at", [])
        if refused:
            top.plot(refused, [0] * len(refused), "|", color="red", ms=10, label="429 (limiter)")
        top.set_ylabel("nodewatch_upstream_learned_rps")
        top.set_ylim(bottom=-limit * 0.03, top=max([limit * 1.3] + [sum(s["learned"]) * 1.05 for s in run["samples"]]))
        top.set_title(f"{n} sidecar{'s' if n > 1 else ''} on one limit of {limit} calls/s "
                      f"(ethereumetl -b {run['batch']} -w {run['workers']})", fontsize=10)
        top.grid(alpha=0.3)
        top.legend(fontsize=7, loc="lower right")
        off = run["limiter_offset_s"]
        secs = run["limiter_seconds"]
        bottom.bar([off + r["second"] for r in secs], [r["calls"] for r in secs], width=1.0, align="edge",
                   color="#4c72b0", alpha=0.7, label="calls answered / s")
        bottom.axhline(limit, color="#dd8452", ls="--", lw=1.5, label="L")
        twin = bottom.twinx()
        twin.bar([off + r["second"] + 0.5 for r in secs], [r["refused"] for r in secs], width=0.4, color="red",
                 alpha=0.8, label="requests refused (429) / s")
        twin.set_ylabel("requests refused / s", color="red", fontsize=8)
        twin.set_ylim(bottom=0, top=max([1] + [r["refused"] for r in secs]) * 3)
        bottom.set_ylabel("limiter: calls answered / s")
        bottom.set_xlabel("s since the export started (dotted: a command ended; grey: steady part)")
        bottom.set_xlim(left=min([0] + ts), right=max([run["wall_s"]] + ts))
        bottom.grid(alpha=0.3)
        h1, l1 = bottom.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        bottom.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    fig.suptitle(f"A paid provider's limit learned by nodewatch (AIMD), sampled from /metrics — ethereumetl "
                 f"-b {runs[0]['batch']}", fontsize=11)
    return savefig(fig, name)


def section_ratelimit(doc, res, goals):
    r = res.get("ratelimit")
    if not r:
        doc("_Not run._", "")
        return
    if r.get("error"):
        doc(f"_Not measured: {r['error']}._", "")
        return
    cfg = res["config"]
    steady_from = cfg.get("ratelimit_steady_from", 0.5)
    run = res.get("section_runs", {}).get("ratelimit", {})
    chain = r["chain"]
    runs = r.get("runs", [])
    batches = list(dict.fromkeys(x["batch"] for x in runs))
    limit = runs[0]["limit"] if runs else cfg.get("ratelimit_rps")
    workers = runs[0]["workers"] if runs else cfg.get("ratelimit_workers")
    first, last = chain["blocks"]
    direct = r.get("direct", {})
    doc(f"Measured on {r['started']} (nodewatch commit `{run.get('commit', '?')}`"
        f"{', quick mode' if run.get('quick') else ''}; nodewatch binary "
        f"`{r['nodewatch'].replace(str(ROOT) + '/', '')}`), 1-minute load average {r['loadavg_start']:.1f} at "
        f"the start and {r['loadavg_end']:.1f} at the end (each run's below): the 2 cores were shared with "
        "other builds and tests.", "")
    doc(f"A paid provider's limit in front of anvil: `nwbench limiter`, which runs the tests' own limiter "
        "(`nodewatch_testkit::limiter`, crates/testkit/src/limiter.rs): a token bucket of "
        f"L = {limit} calls/s holding one second's calls, each JSON-RPC batch item billed one; a request "
        "over it is refused whole with HTTP 429, `Retry-After: 1` and a -32005 \"exceeded its compute "
        "units per second capacity\" body. nodewatch (release build, default configuration, so "
        "production probe timing: probes are billed calls too) has it as its only upstream; the real "
        f"ethereumetl (`{ETL_PATH.relative_to(ROOT)}`, {res['machine'].get('ethereumetl')}) runs "
        f"`export_blocks_and_transactions` for blocks {first}–{last} of the benchmark chain "
        f"({chain['txs']:,} transactions), then `export_receipts_and_logs` for their transactions, "
        f"`-w {workers}` and " + " or ".join(f"`-b {b}`" for b in batches) + ", through it: "
        f"{chain['calls_per_export']:,} calls an export. Then two sidecars on the one limiter (one key), "
        "each running the same export into its own directory at once. A thread scrapes every sidecar's "
        f"`/metrics` every {runs[0]['sample_period_s'] * 1000:.0f} ms (`nodewatch_upstream_learned_rps`, 0 "
        "while unpaced; `nodewatch_rate_limited_total`); the gauge moves when nodewatch publishes its "
        "snapshot (after each probe round and each limit answer), so it is a staircase. The limiter logs "
        "the calls it answered and the requests it refused each second.", "")
    doc("**Ideal** = calls billed ÷ L (every call the limiter answered during the export: the export's own, "
        "and beyond them nodewatch's probes and its verification fetches — `[verify]` is on by default; "
        "in brackets the export's own calls ÷ L). **Calls answered with an error** = "
        "`nodewatch_requests_total` with an outcome other than `ok`, every sidecar's: the calls a client got an "
        "error for (anvil answers these exports without errors). **Export time** = wall clock from the first command's start to the last one's end, "
        "ethereumetl's start-ups included; the same export straight at anvil, no limit, took "
        + ", ".join(f"{num(direct[str(b)]['wall_s'], 2)} s with `-b {b}`" for b in batches if str(b) in direct)
        + ". **Provider busy** = from the first to the last request the "
        "limiter took (with one sidecar per command, added up, as tests/rate_limit.rs measures it). "
        f"**Steady part** = the last {(1 - steady_from) * 100:.0f}% of the time from when every sidecar "
        "had learned a rate to when the first finished (grey in the plots); the learned rate's mean over "
        "the samples in it, and the limiter's answered calls/s over the whole seconds in it. "
        f"**First contact** = the refusals within {FIRST_CONTACT_S:g} s of the first one (the requests in "
        "flight when the first limit answer comes: nothing is known of the limit before it).", "")
    for note in r.get("failures", []):
        doc(f"- failed: {note}")
    rows, details = [], []
    for x in runs:
        f = rl_figures(x, steady_from, chain["calls_per_export"])
        n = x["sidecars"]
        learned = (f"{f['learned_sum']:.1f}" + (" (" + " + ".join(f"{v:.1f}" for v in f["learned_each"]) + ")"
                                                if n > 1 else "")) if "learned_sum" in f else "n/a"
        same = x.get("same_rows", [])
        incomplete = "" if f["complete"] else " — export incomplete"
        rows.append([x["batch"], n, x["rep"] + 1,
                     f"{num(f['calls'])} ({num(f['own_calls'])} + {num(f['calls'] - f['own_calls'])})" if f["complete"]
                     else f"{num(f['calls'])} (export incomplete: {num(f['own_calls'])} asked)",
                     num(f["wall_s"], 2), f"{num(f['ideal_s'], 2)} ({num(f['own_ideal_s'], 2)})",
                     f"{f['ratio']:.2f}× ({f['wall_s'] / f['own_ideal_s']:.2f}×){incomplete}", f"{num(f['busy_s'], 2)} ({f['busy_ratio']:.2f}×)" if f["busy_ratio"] else "n/a",
                     num(f["requests"]), num(f["refused"]),
                     f"{f['refused_share'] * 100:.1f}%" if f["refused_share"] is not None else "n/a",
                     f"{f['first_contact']} / {f['after_contact']}",
                     learned, f"{f['learned_sum'] / limit:.2f}" if "learned_sum" in f else "n/a",
                     num(f.get("answered_steady"), 1),
                     num(f["failed_items"]), "yes" if same and all(same) else "**no**",
                     f"{x['loadavg'][0]:.1f} → {x['loadavg'][1]:.1f}"])
        details.append((x, f))
        if x["rep"] == 0:
            goals.setdefault("ratelimit", {})[(x["batch"], n)] = f
            if same and not all(same):
                goals.setdefault("ratelimit_lost", []).append((x, f))
    doc.table(["-b", "sidecars", "run", "calls billed (export's + beyond)", "export s",
               "ideal s: billed ÷ L (export's ÷ L)", "export ÷ ideal (÷ export's ÷ L)",
               "provider busy s (÷ ideal)", "HTTP requests", "refused (429)", "429 share",
               "429s at first contact / after", "learned calls/s, steady mean (sum: each)",
               "learned ÷ L", "limiter answered calls/s, steady", "calls answered with an error", "rows = direct export's",
               "load avg start → end"], rows)
    for x, f in details:
        n = x["sidecars"]
        same = x.get("same_rows", [])
        lost = []
        for i, files in enumerate(x.get("rows", [])):
            for name, c in files.items():
                if c.get("missing"):
                    lost.append(f"sidecar {i + 1}'s `{name}` lacks {c['missing']:,} of the direct export's rows "
                                f"({c['rows']:,} written)")
        errors = sorted({e.strip()[:160] for steps in x["steps"] for s in steps or [] for e in s.get("stderr_errors", [])})
        for i, steps in enumerate(x["steps"]):
            for s in steps or []:
                if s["rc"] != 0:
                    lost.append(f"sidecar {i + 1}'s ethereumetl {s['command']} "
                                + ("was stopped after " + num(s["secs"]) + " s" if s["rc"] == "timeout" else f"exited {s['rc']}"))
        doc(f"- `-b {x['batch']}`, {n} sidecar{'s' if n > 1 else ''}, run {x['rep'] + 1}: "
            + ("every export holds the same rows as the direct export" if same and all(same)
               else "**" + "; ".join(lost or ["an export's rows differ from the direct export's"]) + "**")
            + "; first learned rate: " + ", ".join(f"{v[0]:.1f} calls/s at {v[1]:.1f} s" if v else "none"
                                                    for v in f["first_learned"])
            + f"; learned at the end: {', '.join(f'{v:.1f}' for v in f['learned_end'])} calls/s after "
            + ", ".join(f"{v:.0f}" for v in f["limited_end"]) + " limit answers"
            + (f"; steady part {f['steady'][0]:.1f}–{f['steady'][1]:.1f} s ({f['steady_samples']} samples, "
               f"sum {f['learned_sum_min']:.1f}–{f['learned_sum_max']:.1f})" if f.get("steady") and "learned_sum" in f else "")
            + f"; {num(f['verify_fetches'])} verification fetches by nodewatch"
            + f"; {x.get('scrape_errors', 0)} failed scrapes"
            + "".join(f"; sidecar {i + 1} answered {u['count']:,} client requests with an error, first: `{u['first']}`"
                      for i, u in enumerate(x.get("unanswered", [])) if u and u["count"])
            + (f"; ethereumetl logged: `{errors[0]}`" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
               if errors else "") + ".")
    doc("")
    for b in batches:
        first_runs = [x for x in runs if x["rep"] == 0 and x["batch"] == b]
        if first_runs:
            path = rl_plot(first_runs, steady_from, f"ratelimit-b{b}.png")
            doc(f"![learned rate against the limit, -b {b}]({path})", "")


# === carried over from the previous BENCHMARKS.md ===========================================

# The numbered sections: the results keys that feed each, its heading, its renderers.
PARTS = [
    ("proxy", "## 1. Proxy overhead: direct vs nginx vs nodewatch", ["section_proxy"]),
    ("proxy", "## 2. Resource use", ["section_resources"]),
    ("failover", "## 3. Failover", ["section_failover"]),
    ("exporter", "## 4. Exporter: nodewatch-export vs ethereumetl vs bare parallel batch fetch",
     ["section_exporter", "section_exporter_jobs"]),
    ("scaling", "## 5. Scaling", ["section_scaling"]),
    ("profile", "## 6. Profile of the proxy hot path", ["section_profile"]),
    ("verify", "## 7. Verified data", ["section_verify"]),
    ("ratelimit", "## 8. A rate-limited provider: the limit learned", ["section_ratelimit"]),
]
CARRIED = "_Carried over from the earlier BENCHMARKS.md"


def row_section(text):
    """The section a headline row or a 'missed' bullet of this report belongs to."""
    t = text.lower()
    if "rate-limited provider" in t:
        return "ratelimit"
    if "verif" in t:
        return "verify"
    if "failover" in t or "sigkill" in t or "sigstop" in t or "hung" in t:
        return "failover"
    if "nodewatch-export" in t or "export_" in t or "exporter" in t:
        return "exporter"
    if "quick-mode" in t or "quick mode" in t or t.strip() == "- none.":
        return None
    return "proxy"


def previous_report():
    """The previous BENCHMARKS.md in parts: its numbered sections by number, its headline
    rows, its 'missed' bullets, its chain bullet and the run it came from."""
    if not OUT_MD.exists():
        return None
    text = OUT_MD.read_text()
    parts, current = {}, None
    lines = text.splitlines()
    for line in lines:
        if line.startswith("## "):
            current = line
            parts[current] = []
        elif current:
            parts[current].append(line)
    numbered = {}
    for heading, body in parts.items():
        head = heading.split()[1] if len(heading.split()) > 1 else ""
        if head[:-1].isdigit() and head.endswith("."):
            numbered[int(head[:-1])] = (heading, body)
    headline = [l for l in parts.get("## Headline vs goals", []) if l.startswith("| ") and not l.startswith("| goal |")]
    missed = [l for l in parts.get("## Where goals are missed, plainly", []) if l.startswith("- ")]
    chain = next((l for l in parts.get("## Machine and method", []) if l.startswith("- Chain:")), None)
    import re
    m = re.search(r"on (\d{4}-\d\d-\d\d [\d:]+ \S+), nodewatch commit `(\w+)`", text)
    # A section carried before keeps naming the run it came from.
    carried = re.search(re.escape(CARRIED) + r" \((.*?)\):", text)
    origin = (f"the run of {m.group(1)}, commit `{m.group(2)}`" if m
              else carried.group(1) if carried else "an earlier run")
    return {"numbered": numbered, "headline": headline, "missed": missed, "chain": chain, "origin": origin}


def carried_note(body, origin):
    """The carried-over note of a section body (kept if it has one), else a new one."""
    old = next((l for l in body if l.startswith(CARRIED)), None)
    return old or (f"{CARRIED} ({origin}): the last `bench/bench.py` run (`--only …`) did not measure this "
                   "section, so its text, figures and plots are the earlier run's._")



# === summary ================================================================================


def summary(doc, res, goals):
    rows = []

    def add(goal, measured, ok, note=""):
        rows.append([goal, measured, "n/a" if ok is None else verdict(ok), note])

    if "rps" in goals:
        m = med(goals["rps"])
        add("nodewatch/direct req/s ≥ 0.85 at 32 connections (eth_blockNumber, anvil)",
            spread(goals["rps"]), m >= 0.85,
            f"nginx/direct in the same runs: {spread(goals['nginx_direct'])} (issue: ~0.71)")
        add("nodewatch/nginx req/s (reference)", spread(goals["rps_nginx"]), None, "")
        if "rps_batch" in goals:
            add("nodewatch/direct req/s, 100-item batch, 32 connections (anvil)", spread(goals["rps_batch"]),
                med(goals["rps_batch"]) >= 0.85, "")
        if "rps_replay" in goals:
            add("nodewatch/direct req/s, eth_blockNumber, 32 connections (replay upstream)",
                spread(goals["rps_replay"]), med(goals["rps_replay"]) >= 0.85,
                "fast in-memory node: the proxy's own cost shows")
        add("p99 ≤ 1.5× direct at 32 connections (eth_blockNumber, anvil)",
            spread(goals["p99"]) + "×", med(goals["p99"]) <= 1.5, "")
    for upstream, v in goals.get("vs_nginx", {}).items():
        add(f"nodewatch/nginx req/s ≥ 1.0 (eth_blockNumber, 32 connections, {upstream})",
            spread(v["rps"]), med(v["rps"]) >= 1.0, "")
        add(f"nodewatch/nginx p99 ≤ 1.0 (eth_blockNumber, 32 connections, {upstream})",
            spread(v["p99"]) + "×", med(v["p99"]) <= 1.0, "")
    for (upstream, shape), ratio in goals.get("cpu_vs_nginx", {}).items():
        if ratio:
            limit = 1.0 if shape == "eth_blockNumber" else 1.5
            add(f"CPU per request ≤ {limit}× nginx ({shape}, 32 connections, {upstream})",
                spread(ratio) + "×", med(ratio) <= limit, "")
    if "rss" in goals:
        limit = 30 * 1e6 / 2**20
        for shape, vals in goals.get("rss_by_shape", {}).items():
            if vals:
                add(f"RSS under 32-connection load ≤ 30 MB ({shape}, anvil and replay runs)",
                    f"{spread(vals, '{:.1f}')} MiB", max(vals) <= limit,
                    f"peak (VmHWM) over the whole section incl. 128 connections: {max(goals['rss_peak']):.1f} MiB"
                    if shape == "batch100" else "")
    if "cpu_bn" in goals:
        add("CPU per 10k requests (eth_blockNumber, 32 conns, anvil)",
            f"nodewatch {spread(goals['cpu_bn'], '{:.3f}')} s, nginx {spread(goals['cpu_bn_nginx'], '{:.3f}')} s",
            None, "")
    if "failed" in goals:
        add("failed requests across failover runs = 0", str(goals["failed"]), goals["failed"] == 0, "")
        add("primary SIGKILL → first backup answer", spread(goals["first_backup_kill"]) + " ms", None,
            f"in-flight extra latency (max): {spread(goals['inflight_extra_kill'])} ms")
        if goals.get("first_backup_stop"):
            add("primary SIGSTOP (hang) → first backup answer", spread(goals["first_backup_stop"], "{:.0f}") + " ms", None,
                f"before hedging ({HUNG_BEFORE['commit']}): {HUNG_BEFORE['first_backup_ms']:,} ms")
        if goals.get("slowest_stop"):
            slowest = max(goals["slowest_stop"])
            add("primary SIGSTOP: slowest client request in the first 3 s ≤ 1.5 s", spread(goals["slowest_stop"], "{:.0f}") + " ms",
                slowest <= 1500,
                f"before hedging ({HUNG_BEFORE['commit']}): {HUNG_BEFORE['slowest_ms']:,} ms; a hedge goes to rank 2 "
                "after the hung node's recent p95 (clamped to hedge.min_delay–max_delay, 50 ms–1 s)")
    if res.get("exporter"):
        blocks = res["exporter"].get("anvil_blocks", 2000)
        if "export_vs_bare" in goals:
            add(f"nodewatch-export ≤ 1.2× bare fetch time (anvil, {blocks:,} blocks)", f"{goals['export_vs_bare']:.2f}×",
                goals["export_vs_bare"] <= 1.2,
                f"--no-verify: {goals['export_noverify_vs_bare']:.2f}×" if "export_noverify_vs_bare" in goals else "")
        else:
            add(f"nodewatch-export ≤ 1.2× bare fetch time (anvil, {blocks:,} blocks)", "not built", None,
                f"ethereumetl: {goals['etl_vs_bare']:.2f}× bare" if "etl_vs_bare" in goals else "")
        if "export_vs_etl_replay" in goals:
            add("nodewatch-export ≥ 10× ethereumetl blocks/s (replay)", f"{goals['export_vs_etl_replay']:.1f}×",
                goals["export_vs_etl_replay"] >= 10,
                f"verifying, {goals['export_vs_etl_replay_blocks']:,} blocks"
                + (f"; --no-verify: {goals['export_noverify_vs_etl_replay']:.1f}× "
                   f"({goals['export_noverify_vs_etl_replay_blocks']:,} blocks)"
                   if "export_noverify_vs_etl_replay" in goals else ""))
        else:
            add("nodewatch-export ≥ 10× ethereumetl blocks/s (replay)", "not built", None, "")
    for command in ("export_traces", "export_all"):
        if f"{command}_vs_etl_replay" in goals:
            ratio = goals[f"{command}_vs_etl_replay"]
            anvil = goals.get(f"{command}_vs_etl_anvil")
            plain = goals.get(f"{command}_noverify_vs_etl_replay")
            add(f"{command}: nodewatch-export ≥ 10× ethereumetl blocks/s (replay)", f"{ratio:.1f}×", ratio >= 10,
                "; ".join(x for x in (f"on anvil: {anvil:.1f}×" if anvil else "",
                                      f"--no-verify: {plain:.1f}×" if plain else "") if x))
    if res.get("exporter"):
        if "export_rss" in goals:
            add("nodewatch-export flat memory: RSS at 10k / 100k blocks",
                " / ".join(f"{goals['export_rss'].get(n, float('nan')):.0f} MiB" for n in (10000, 100000)), None,
                "--no-verify (the replay renumbers blocks past 2,000)" if goals.get("export_rss_noverify") else "")
        else:
            add("nodewatch-export flat memory: RSS at 10k / 100k blocks", "not built", None,
                "bare fetch: " + " / ".join(f"{goals.get('bare_rss', {}).get(n, float('nan')):.0f} MiB" for n in (10000, 100000)))
    for goal, measured, ok, note in goals.get("verify_summary", []):
        add(goal, measured, ok, note)
    for (batch, n), f in goals.get("ratelimit", {}).items():
        who = f"{'one sidecar' if n == 1 else f'{n} sidecars on one key'}, ethereumetl -b {batch}"
        add(f"rate-limited provider, {who}: the export completes, with the rows of an export without the limit",
            "yes" if f["complete"] else f"no: nodewatch answered {num(f['failed_items'])} calls with an error",
            f["complete"], (f"nodewatch answered {num(f['failed_items'])} calls with an error, which ethereumetl "
                            "retried; " if f["complete"] and f["failed_items"] else "") + "section 8")
        learned = (f"learned {f['learned_sum'] / f['limit']:.2f} L ({f['learned_sum']:.1f} calls/s)"
                   if "learned_sum" in f else "learned: n/a")
        add(f"rate-limited provider, {who}: learned rate{' (summed)' if n > 1 else ''}, steady mean, vs the limit "
            f"L = {f['limit']} calls/s; export time ÷ ideal (calls billed ÷ L)",
            learned + "; " + (f"{f['ratio']:.2f}× ideal" if f["complete"] else "export incomplete"), None,
            f"the limiter answered {num(f.get('answered_steady'), 1)} calls/s in the steady part; "
            f"{num(f['wall_s'], 1)} s for {num(f['calls'])} calls billed ({num(f['own_calls'])} the export's own"
            + (f": {f['wall_s'] / f['own_ideal_s']:.2f}× their ideal" if f["complete"] else "") + "); "
            f"{f['refused_share'] * 100:.1f}% of {num(f['requests'])} HTTP requests refused (429)")
    return rows


def main():
    if not RESULTS.exists():
        sys.exit(f"report: {RESULTS.relative_to(ROOT)} is missing: run bench/bench.py first (make bench-run)")
    res = json.loads(RESULTS.read_text())
    cfg = res["config"]
    m = res["machine"]
    prev = previous_report()
    goals = {}
    body = Doc()
    # A section the results do not hold (a partial run on a fresh results file) keeps the
    # previous BENCHMARKS.md's text for it, marked as such, rather than losing its figures.
    carried = {}  # (ordered, as PARTS)
    for n, (key, heading, renderers) in enumerate(PARTS, 1):
        old = prev["numbered"].get(n) if prev else None
        if key not in res and old:
            carried[key] = True
            lines = [l for l in old[1] if not l.startswith(CARRIED)]
            while lines and not lines[0].strip():
                lines.pop(0)
            while lines and not lines[-1].strip():
                lines.pop()
            body(heading, "", carried_note(old[1], prev["origin"]), "", *lines, "")
            continue
        body(heading, "")
        for renderer in renderers:
            globals()[renderer](body, res, goals)

    runs = res.get("section_runs", {})
    measured = [key for key, *_ in PARTS if key in res]
    doc = Doc()
    doc("# nodewatch benchmarks", "")
    if carried:
        doc("Generated by `bench/report.py` from `target/bench/results.json` and, for the sections "
            f"it does not hold, the previous BENCHMARKS.md ({prev['origin']}). Measured by the last run "
            f"(`bench/bench.py --only …`, started {res['started']}, nodewatch commit `{m['nodewatch_commit']}`, "
            f"{res.get('total_secs', 0) / 60:.1f} minutes): "
            + ", ".join(f"`{k}`" + (f" ({runs[k]['started']}{', quick mode' if runs[k].get('quick') else ''})"
                                    if k in runs else "") for k in dict.fromkeys(measured))
            + "; carried over: " + ", ".join(f"`{k}`" for k in dict.fromkeys(carried))
            + ". Scripts: [`bench/`](bench/).", "")
    else:
        doc(f"Generated by `make bench{' BENCH_QUICK=1' if cfg['quick'] else ''}` "
            f"({'quick mode: short runs, one repeat, fewer points — for iteration, not for quoting' if cfg['quick'] else 'full mode'}) "
            f"on {res['started']}, nodewatch commit `{m['nodewatch_commit']}`, in "
            f"{res.get('total_secs', 0) / 60:.1f} minutes. Raw figures: `target/bench/results.json`; "
            "scripts: [`bench/`](bench/).", "")
    doc("## Headline vs goals", "")
    rows = summary(doc, res, goals)
    if carried:
        merged = []
        old_rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in prev["headline"]]
        for key in ("proxy", "failover", "exporter", "verify", "ratelimit"):
            if key in carried:
                for r in old_rows:
                    if row_section(r[0]) == key:
                        if "earlier run" not in r[-1]:
                            r[-1] = (r[-1] + "; " if r[-1] else "") + "_earlier run_"
                        merged.append(r)
            else:
                merged += [r for r in rows if row_section(r[0]) == key]
        rows = merged
    doc.table(["goal", "measured (median [min–max])", "verdict", "note"], rows)
    doc("## Machine and method", "")
    chain = res.get("chain")
    if chain and "proxy" not in carried:
        chain_line = (f"- Chain: anvil with {chain['blocks']:,} blocks × {chain['txs']} ETH transfers, "
                      f"then {chain['big_blocks']} blocks × {chain['big_txs']} transfers (the large "
                      f"answer is block {chain['big_block']}); built once by `nwbench chain` and cached as "
                      "an anvil state file in `target/bench-cache/` (first run: about 30–60 s more).")
    else:
        chain_line = prev["chain"] if prev and prev["chain"] and carried else None
    verify_chain = res.get("verify", {}).get("chain")
    doc(f"- {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB, Linux {m['kernel']} (a Firecracker VM).",
        f"- **Shared and noisy:** other sessions' builds and tests run on the same 2 cores; the "
        f"1-minute load average was {res['loadavg_start']:.1f} at the start and "
        f"{res.get('loadavg_end', float('nan')):.1f} at the end of "
        + ("the last run (of " + ", ".join(f"`{k}`" for k in dict.fromkeys(measured)) + "; each carried-over "
           "section was measured in its own run)" if carried else "this run")
        + "; each run's load average is in results.json. wrk, the node and the proxy also share the 2 cores, so "
        "a proxy's CPU is taken from the node: throughput ratios include that. This is why every "
        "figure is a ratio within one repeat, reported with its spread.",
        f"- {m['rustc']}; {m['anvil']}; {m['nginx']}; {m['wrk']}; {m['ethereumetl']}; {m['perf']}; "
        f"Python {m['python']} with matplotlib.",
        *([chain_line] if chain_line else []),
        *([f"- Verification chain (section 7): anvil with {verify_chain['blocks']} blocks × "
           f"{verify_chain['txs_per_block']} transactions (legacy, EIP-2930, EIP-1559), two thirds of them "
           f"calls to a contract that logs an ERC-20 `Transfer` and an `Approval` ({verify_chain['logs_per_block']} "
           "logs per block), after block 1 deploys it; built once by `bench/bench.py` and cached in "
           "`target/bench-cache/verify-chain-*.json`."] if verify_chain else []),
        "- nodewatch: release build, default configuration, one upstream unless stated "
        "(`nodewatch --upstream URL --listen … --admin-listen …`). nginx: `worker_processes "
        "auto`, `upstream { keepalive 256; }`, `proxy_http_version 1.1`, `Connection \"\"`, "
        "access log off (config written to `target/bench/nginx/nginx.conf`).",
        "- Load: `wrk -t1 -cN -dTs -s bench/wrk/rpc.lua URL -- body.json` (POST of a fixed "
        "JSON-RPC body; wrk instead of oha: a C load generator costs less of the 2 cores and "
        "needs no compile). Every target's answer is checked to be the same JSON, without errors, "
        "before it is loaded.",
        "- Commands: `make bench` (full: < 15 minutes for sections 1–6, about 5 more for section 7"
        + (f", {res['section_secs']['ratelimit'] / 60:.1f} for section 8 in its last "
           f"{'quick ' if runs.get('ratelimit', {}).get('quick') else ''}run" if "ratelimit" in res.get("section_secs", {}) else "")
        + "), `make bench BENCH_QUICK=1` (≈ 3 minutes, plus about 2 for section 7), "
        "`make bench-report` (re-render this file and the plots from the last results); one "
        "section: `python3 bench/bench.py --only verify` (or any of proxy, failover, exporter, "
        "exporter_jobs, scaling, profile, verify, ratelimit), then `make bench-report`.",
        "")
    doc(*body.lines)
    doc("## Where goals are missed, plainly", "")
    missed = []
    for upstream, v in goals.get("vs_nginx", {}).items():
        if med(v["rps"]) < 1.0 or med(v["p99"]) > 1.0:
            missed.append(f"- **nodewatch ÷ nginx at 32 connections ({upstream}, eth_blockNumber): req/s "
                          f"{med(v['rps']):.2f} (goal ≥ 1.0), p99 {med(v['p99']):.2f}× (goal ≤ 1.0).** "
                          "nginx relays bytes; nodewatch parses every request and answer envelope, "
                          "and tracks health and metrics per item "
                          "(section 6).")
    for (upstream, shape), ratio in goals.get("cpu_vs_nginx", {}).items():
        limit = 1.0 if shape == "eth_blockNumber" else 1.5
        if ratio and med(ratio) > limit:
            missed.append(f"- **CPU per request {med(ratio):.2f}× nginx ({shape}, {upstream}), goal ≤ {limit}×:** "
                          f"{med(ratio) / limit:.1f} times the goal. See section 6 for where it goes.")
    if "rps" in goals and med(goals["rps"]) < 0.85:
        missed.append(f"- **Throughput vs direct at 32 connections: {med(goals['rps']):.2f}, goal 0.85.** "
                      f"nginx, measured in the same runs, reaches {med(goals['nginx_direct']):.2f}. On two "
                      "shared cores a proxy's CPU comes out of the node's share; nodewatch spends "
                      f"{med(goals.get('cpu_bn', [0])) or 0:.3f} s of CPU per 10k small requests against "
                      f"nginx's {med(goals.get('cpu_bn_nginx', [0])) or 0:.3f} s. See section 6 for where.")
    if "p99" in goals and med(goals["p99"]) > 1.5:
        missed.append(f"- **p99 vs direct at 32 connections: {med(goals['p99']):.2f}×, goal ≤ 1.5×.**")
    if "rss" in goals and goals["rss"] and max(goals["rss"]) > 30 * 1e6 / 2**20:
        worst = {k: max(v) for k, v in goals.get("rss_by_shape", {}).items() if v}
        missed.append(f"- **RSS under 32-connection load: up to {max(goals['rss']):.1f} MiB, goal ≤ 30 MB** "
                      f"(worst per shape: " + ", ".join(f"{k} {v:.1f}" for k, v in worst.items()) + " MiB). "
                      "Memory follows the bytes in flight (each answer is held once, from the upstream "
                      "read until the client has it); nginx streams answers through fixed buffers.")
    if goals.get("failed"):
        missed.append(f"- **Failed requests during failover: {goals['failed']}, goal 0.**")
    if goals.get("slowest_stop") and max(goals["slowest_stop"]) > 1500:
        missed.append(f"- A **hung** primary (SIGSTOP) still costs up to "
                      f"{max(goals['slowest_stop']) / 1000:.1f} s per request, goal ≤ 1.5 s: the hedge "
                      "delay or the retry budget did not cover every request caught on the hung node.")
    if not res.get("exporter"):
        pass
    elif "export_vs_bare" not in goals:
        missed.append("- **Exporter goals not measured:** `nodewatch-export` is not on this branch yet; "
                      "its rows appear automatically once it is built.")
    elif goals["export_vs_bare"] > 1.2:
        missed.append(f"- **nodewatch-export is {goals['export_vs_bare']:.2f}× the bare fetch time, goal ≤ 1.2×.**")
    if "export_vs_etl_replay" in goals and goals["export_vs_etl_replay"] < 10:
        missed.append(f"- **nodewatch-export is {goals['export_vs_etl_replay']:.1f}× ethereumetl on replay, goal ≥ 10×.**")
    for command in ("export_traces", "export_all"):
        if goals.get(f"{command}_vs_etl_replay", 10) < 10:
            missed.append(f"- **{command}: nodewatch-export is {goals[f'{command}_vs_etl_replay']:.1f}× "
                          "ethereumetl on replay, goal ≥ 10×.**")
    if "verify_bps" in goals and goals["verify_bps"] < 1000:
        missed.append(f"- **Verified data: the verification crate does {goals['verify_bps']:,.0f} mainnet-sized "
                      "blocks per second per core, goal ≥ 1,000** (section 7; measured on shared, loaded cores).")
    for command, ratio in goals.get("verify_export", {}).items():
        if ratio < 10:
            plain = goals.get("verify_export_plain", {}).get(command)
            missed.append(f"- **Verified data: nodewatch-export verifying is {ratio:.1f}× ethereumetl on "
                          f"{command} ({goals.get('verify_export_upstream')}), goal ≥ 10×** (section 7"
                          + (f"; with `--no-verify` {plain:.1f}×" if plain else "") + ").")
    if goals.get("verify_export_unmeasured"):
        missed.append("- **Verified data: nodewatch-export verifying is not measured against ethereumetl on the "
                      f"{goals.get('verify_export_upstream')} upstream for "
                      + ", ".join(goals["verify_export_unmeasured"]) + "** (section 7 says why).")
    for x, f in goals.get("ratelimit_lost", []):
        who = "one sidecar" if x["sidecars"] == 1 else f"{x['sidecars']} sidecars on one key"
        missed.append(f"- **Rate-limited provider, {who}, ethereumetl -b {x['batch']}: the export lost rows** "
                      f"(nodewatch answered {num(f['failed_items'])} calls with an error; first learned rate "
                      + ", ".join(f"{v[0]:.1f}" for v in f["first_learned"] if v)
                      + " calls/s against a limit of " + f"{f['limit']}; section 8 says which files and why).")
    if carried:
        old = [l for l in prev["missed"] if row_section(l)]
        missed = [l for key in ("proxy", "failover", "exporter", "verify", "ratelimit")
                  for l in (old if key in carried else missed) if row_section(l) == key]
    if cfg["quick"]:
        missed.append("- The last run was in **quick mode**: one short repeat per cell; do not quote its figures.")
    doc(*(missed or ["- None."]), "")
    OUT_MD.write_text(doc.text())
    print(f"wrote {OUT_MD.relative_to(ROOT)} and {PLOTS.relative_to(ROOT)}/*.png", file=sys.stderr)


if __name__ == "__main__":
    main()
