#!/usr/bin/env python3
"""Measure nodewatch: `make bench` runs this, then bench/report.py.

Every figure is measured side by side in one run (targets interleaved, order rotated per
repeat) and reported as a ratio with median and min/max over the repeats. Everything
listens on 127.0.0.1 and every load is bounded in count and time.

Sections (all by default; `--only a,b` for some):
  proxy      direct vs nginx vs nodewatch against one anvil: 3 request shapes x connections,
             with CPU and RSS of the processes sampled around every run
  resources  RSS idle and under 32-connection load, CPU per 10k requests (from `proxy`)
  failover   primary SIGKILLed / SIGSTOPped under load: time to the first backup answer,
             in-flight latency, failed requests
  exporter   nodewatch-export (if built) vs ethereumetl vs bare parallel batch fetch,
             on anvil (2,000 blocks) and on a replay upstream (longer ranges)
  exporter_jobs  export_traces and export_all: nodewatch-export vs ethereumetl 2.4.2 on
             Python 3.10 (.tools/venv310), on anvil (the same 2,000 blocks) and on a replay
             upstream that also serves their receipts, traces and logs, with RSS
  scaling    batch size, upstream count (1/3/10), range length
  profile    perf record of nodewatch under load, top symbols and cost groups
  ratelimit  a paid provider's rate limit in front of anvil (`nwbench limiter`: the tests'
             token bucket of L calls/s, HTTP 429 + Retry-After over it): the real ethereumetl
             exporting blocks, transactions, receipts and logs through one nodewatch, then
             through two at once on the one limit, while /metrics is sampled: the learned
             rate over time against L, export time against calls billed / L, 429 share
  verify     verified data (issue 19): `cargo bench -p nodewatch-verify`'s FIGURE lines;
             nodewatch's CPU per full block, per 100-receipt batch and per 100-full-block
             batch with verification on and off (NODEWATCH__VERIFY__ENABLED=false), and the
             upstream calls verification adds; ethereumetl vs nodewatch-export with and
             without --no-verify on every command verification touches. On a chain of its own:
             120 blocks x 150 transactions with logs (target/bench-cache/verify-chain-*.json)

Writes target/bench/results.json (plus raw logs and CSVs under target/bench/); report.py
turns it into BENCHMARKS.md and bench/plots/*.png.

BENCH_QUICK=1 (or --quick): shorter runs, fewer repeats and points (~3 minutes).
"""

import argparse
import atexit
import csv
import gzip
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
ANVIL = Path(os.environ.get("NODEWATCH_ANVIL", TOOLS / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
ETHEREUMETL = Path(os.environ.get("NODEWATCH_ETHEREUMETL", TOOLS / "venv/bin/ethereumetl"))
# The reference ethereumetl (Python 3.10): on 3.11 its contract calls crash (see README).
ETHEREUMETL310 = Path(os.environ.get("NODEWATCH_ETHEREUMETL310", TOOLS / "venv310/bin/ethereumetl"))
NODEWATCH = Path(os.environ.get("NODEWATCH_BIN", ROOT / "target/release/nodewatch"))
NWBENCH = Path(os.environ.get("NWBENCH_BIN", ROOT / "target/nwbench/release/nwbench"))
EXPORTER = Path(os.environ.get("NODEWATCH_EXPORT_BIN", ROOT / "target/release/nodewatch-export"))
WRK_LUA = ROOT / "bench/wrk/rpc.lua"
OUT = ROOT / "target/bench"
CACHE = ROOT / "target/bench-cache"

# The benchmark chain: CHAIN_BLOCKS blocks of CHAIN_TXS transfers (the exporter range), then
# BIG_BLOCKS blocks of BIG_TXS transfers (the large-body request).
CHAIN_BLOCKS, CHAIN_TXS, BIG_BLOCKS, BIG_TXS = 2000, 10, 4, 100
BIG_BLOCK = CHAIN_BLOCKS + 1

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

_procs = []  # every process we started, stopped at exit (by pid, never by name)


def log(*args):
    print(f"[bench {time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# === processes ==============================================================================


class Proc:
    """A server process we started; stopped by its own pid."""

    def __init__(self, name, argv, env=None, stdout=None, stdin=None):
        self.name = name
        self.log_path = OUT / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            [str(a) for a in argv],
            stdin=stdin,
            stdout=stdout if stdout is not None else self.log,
            stderr=self.log,
            env={**os.environ, **(env or {})},
        )
        self.pid = self.popen.pid
        _procs.append(self)

    def pids(self):
        """This process and its children (nginx workers)."""
        pids = [self.pid]
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                kids = Path(f"/proc/{self.pid}/task/{task}/children").read_text().split()
                pids += [int(k) for k in kids]
        except OSError:
            pass
        return pids

    def cpu_ticks(self):
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, IndexError):
                pass
        return total

    def cpu_ns(self):
        """CPU time of every live thread, in ns (/proc/<pid>/task/*/schedstat): the same as
        utime+stime but not rounded to clock ticks, for figures of a few ms."""
        total = 0
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                try:
                    total += int(Path(f"/proc/{self.pid}/task/{task}/schedstat").read_text().split()[0])
                except (OSError, IndexError, ValueError):
                    pass
        except OSError:
            pass
        return total

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
            except (OSError, IndexError):
                pass
        return total

    def hwm_kib(self):
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
        self.log.close()
        if self in _procs:
            _procs.remove(self)


def _cleanup():
    for p in list(_procs):
        try:
            if p.popen.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.popen.wait(5)
        except Exception:
            pass


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url, method, params=None, timeout=10):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    return post(url, body, timeout)


def post(url, body, timeout=10):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_ready(url, proc, timeout=30, method="eth_blockNumber"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: see {proc.log_path}")
        try:
            answer = rpc(url, method, timeout=2)
            if "result" in answer:
                return answer["result"]
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s: see {proc.log_path}")


def start_anvil(name, *extra, load_state=None):
    port = free_port()
    argv = [ANVIL, "--silent", "--host", "127.0.0.1", "--port", port, "--prune-history", "16", *extra]
    if load_state:
        argv += ["--load-state", load_state]
    p = Proc(name, argv)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, p)
    return p, url


def start_nodewatch(name, upstreams, extra_env=None):
    port, admin = free_port(), free_port()
    argv = [NODEWATCH, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"]
    for u in upstreams:
        argv += ["--upstream", u]
    p = Proc(name, argv, env=extra_env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, p)
    # Wait until the first probe round marked the primary healthy (else requests go to
    # "unknown" candidates, which works but is not the steady state).
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        time.sleep(0.1)
    p.admin = f"http://127.0.0.1:{admin}"
    return p, url


NGINX_CONF = """\
# nginx as a plain reverse proxy with a keep-alive upstream pool (written by bench/bench.py)
daemon off;
master_process on;
worker_processes auto;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream node {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://node;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffers 64 16k;
            proxy_buffer_size 16k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"""


def start_nginx(upstream_url):
    d = OUT / "nginx"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    port = free_port()
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=d, port=port, upstream=upstream_url.split("//", 1)[1]))
    p = Proc("nginx", ["nginx", "-c", conf, "-p", d])
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, p)
    return p, url


def start_replay(ports, record_from, recorded, max_block, threads=1, also=(), receipts_and_traces=False):
    argv = [NWBENCH, "replay", "--record-from", record_from, "--recorded", recorded,
            "--max-block", max_block, "--threads", threads]
    if receipts_and_traces:
        argv.append("--receipts-and-traces")
    for n in also:
        argv += ["--also", n]
    for port in ports:
        argv += ["--port", port]
    p = Proc(f"replay-{ports[0]}", argv, stdout=subprocess.PIPE)
    line = p.popen.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"replay did not start: see {p.log_path}")
    return p, [f"http://127.0.0.1:{port}" for port in ports]


# === the chain ==============================================================================


def chain_state():
    """The benchmark chain as an anvil state file, built once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"chain-{CHAIN_BLOCKS}x{CHAIN_TXS}-{BIG_BLOCKS}x{BIG_TXS}.json"
    if path.exists():
        return path, None
    log(f"building the benchmark chain ({CHAIN_BLOCKS} blocks x {CHAIN_TXS} txs + "
        f"{BIG_BLOCKS} x {BIG_TXS}); cached in {path.relative_to(ROOT)} for later runs")
    anvil, url = start_anvil("anvil-build")
    t0 = time.time()
    out = run_json([NWBENCH, "chain", "--url", url, "--blocks", CHAIN_BLOCKS, "--txs", CHAIN_TXS,
                    "--big-blocks", BIG_BLOCKS, "--big-txs", BIG_TXS])
    dump = rpc(url, "anvil_dumpState", timeout=120)["result"]
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.decompress(bytes.fromhex(dump[2:])))
    tmp.rename(path)
    anvil.stop()
    log(f"chain built in {time.time() - t0:.0f}s")
    return path, out


def run_json(argv, timeout=600):
    r = subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[1]} failed: {r.stderr.decode()[-2000:]}")
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


# === load ===================================================================================


def write_body(name, obj):
    path = OUT / "bodies" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")))
    return path


def batch_body(n, first=1, full=False):
    # Numbered from 0, as ethereum-etl (request_id=idx) and nodewatch-export number a batch.
    return [{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber",
             "params": [hex(first + i), full]} for i in range(n)]


def wrk(url, body_path, conns, secs, watch=()):
    """One wrk run; returns its summary with req/s and, for every watched process, CPU
    seconds used and RSS at the end."""
    before = {p.name: p.cpu_ticks() for p in watch}
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "30s", "-s", WRK_LUA,
            url + "/", "--", body_path]
    r = subprocess.run([str(a) for a in argv], capture_output=True, timeout=secs + 60)
    rss = {p.name: p.rss_kib() for p in watch}
    after = {p.name: p.cpu_ticks() for p in watch}
    line = next((l for l in r.stdout.decode().splitlines() if l.startswith("NWBENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {r.stdout.decode()} {r.stderr.decode()}")
    s = json.loads(line[len("NWBENCH "):])
    s["rps"] = s["requests"] / (s["duration_us"] / 1e6)
    s["errors_total"] = sum(s["errors"].values())
    s["cpu_s"] = {k: (after[k] - before[k]) / CLK_TCK for k in before}
    s["rss_kib"] = rss
    return s


def check_same(name, urls, body_path):
    """The targets answer the body alike (as JSON); returns the answer size."""
    body = body_path.read_bytes()
    answers = {}
    for label, url in urls.items():
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        answers[label] = (json.loads(raw), len(raw))
    ref_label = next(iter(answers))
    ref = answers[ref_label][0]
    for label, (value, _) in answers.items():
        if value != ref:
            raise RuntimeError(f"{name}: {label} answers differently from {ref_label}")
        items = value if isinstance(value, list) else [value]
        if any("error" in i or i.get("result") is None for i in items):
            raise RuntimeError(f"{name}: {label} answered an error or null: {str(value)[:300]}")
    return answers[ref_label][1]


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


# === sections ===============================================================================


def section_proxy(cfg, state, res):
    out = {"runs": [], "secs": cfg["secs"], "secs_big": cfg["secs_big"], "repeats": cfg["repeats"],
           "conns": cfg["conns"], "answer_bytes": {}}
    resources = {}
    for kind in cfg["proxy_upstreams"]:
        anvil, anvil_url = start_anvil(f"anvil-proxy-{kind}", load_state=state)
        if kind == "anvil":
            node, node_url = anvil, anvil_url
        else:
            node, (node_url,) = start_replay([free_port()], anvil_url, 200, 10_000_000,
                                             threads=1, also=[BIG_BLOCK])
            anvil.stop()
        proxy_section_against(cfg, kind, node, node_url, out, resources)
        node.stop()
    res["proxy"] = out
    res["resources"] = resources


def proxy_section_against(cfg, kind, node, node_url, out, resources):
    """Section 1 against one upstream node (anvil, or the in-memory replay upstream)."""
    nginx, nginx_url = start_nginx(node_url)
    nw, nw_url = start_nodewatch(f"nodewatch-proxy-{kind}", [node_url])
    time.sleep(1)
    idle = {"nodewatch": nw.rss_kib(), "nginx": nginx.rss_kib(), "node": node.rss_kib()}
    targets = {"direct": node_url, "nginx": nginx_url, "nodewatch": nw_url}
    proxy_of = {"direct": None, "nginx": nginx, "nodewatch": nw}
    shapes = {
        "eth_blockNumber": write_body("blockNumber", {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}),
        "getBlock_full": write_body("getBlock_full", {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(BIG_BLOCK), True]}),
        "batch100": write_body("batch100", batch_body(100)),
    }
    out["answer_bytes"] = {s: check_same(s, targets, b) for s, b in shapes.items()}
    k = 0
    for shape, body in shapes.items():
        secs = cfg["secs_big"] if shape == "getBlock_full" and kind == "anvil" else cfg["secs"]
        for conns in cfg["conns"]:
            log(f"proxy ({kind}): {shape} at {conns} connections")
            for rep in range(cfg["repeats"]):
                order = list(targets)
                order = order[k % 3:] + order[:k % 3]  # rotate who goes first
                k += 1
                for target in order:
                    proxy = proxy_of[target]
                    s = wrk(targets[target], body, conns, secs, [node] + ([proxy] if proxy else []))
                    out["runs"].append({
                        "upstream": kind, "shape": shape, "conns": conns, "rep": rep, "target": target,
                        "rps": s["rps"], "p50_us": s["lat_us"]["p50"], "p99_us": s["lat_us"]["p99"],
                        "max_us": s["lat_us"]["max"], "requests": s["requests"],
                        "errors": s["errors_total"], "bytes": s["bytes"],
                        "node_cpu_s": s["cpu_s"][node.name],
                        "proxy_cpu_s": s["cpu_s"][proxy.name] if proxy else None,
                        "proxy_rss_kib": s["rss_kib"][proxy.name] if proxy else None,
                        "loadavg": loadavg()})
    resources[kind] = {"idle_rss_kib": idle, "peak_rss_kib": {"nodewatch": nw.hwm_kib(), "nginx": nginx.hwm_kib()}}
    nw.stop()
    nginx.stop()


def section_failover(cfg, state, res):
    # Two fresh nodes that differ in base fee, so eth_gasPrice tells who answered.
    out = []
    scenarios = [("kill", cfg["failover_secs"], r) for r in range(cfg["failover_repeats"])]
    scenarios.append(("stop", cfg["stop_secs"], 0))
    for sig, secs, rep in scenarios:
        log(f"failover: primary {sig} (repeat {rep + 1})")
        primary, purl = start_anvil(f"anvil-primary-{sig}{rep}", "--base-fee", "1000000000")
        backup, burl = start_anvil(f"anvil-backup-{sig}{rep}", "--base-fee", "3000000000")
        pa, ba = rpc(purl, "eth_gasPrice")["result"], rpc(burl, "eth_gasPrice")["result"]
        # The two nodes differ in base fee from genesis on, so every answer says who gave it;
        # that makes them two chains to the fork guard, which would (rightly) never mix them.
        nw, nw_url = start_nodewatch(f"nodewatch-failover-{sig}{rep}", [purl, burl],
                                     extra_env={"NODEWATCH__FORK__ENABLED": "false"})
        time.sleep(0.5)
        csv = OUT / f"failover-{sig}-{rep}.csv"
        r = run_json([NWBENCH, "failover", "--url", nw_url, "--concurrency", cfg["failover_conns"],
                      "--duration", secs, "--kill-after", 2, "--pid", primary.pid, "--signal", sig,
                      "--primary-answer", pa, "--backup-answer", ba, "--window", 3, "--csv", csv],
                     timeout=secs + 60)
        r["rep"] = rep
        r["csv"] = str(csv.relative_to(ROOT))
        try:
            with urllib.request.urlopen(nw.admin + "/metrics", timeout=5) as m:
                text = m.read().decode()
            r["failovers_total"] = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                                       if l.startswith("nodewatch_failovers_total"))
        except Exception as e:
            r["failovers_total"] = None
            log(f"metrics: {e}")
        out.append(r)
        for p in (nw, backup, primary):
            p.stop(signal.SIGKILL if p is primary else signal.SIGTERM)
    res["failover"] = out


def last_line(error, limit=300):
    """The last line of a failed command's error, shortened from the front."""
    line = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    return line if len(line) <= limit else "…" + line[-limit:]


MISSING_BY_HASH = (" (this replay upstream does not serve `eth_getBlockByHash`, which nodewatch-export's "
                   "verification asks for the header of every block whose receipts or logs it checks)")


def timed(argv, env=None):
    """Runs a command; returns wall seconds and its peak RSS in KiB. GNU time reports the
    peak: a child forked straight from this Python process would count this process's pages
    in its own ru_maxrss."""
    rss_file = OUT / "time-rss.txt"
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-o", str(rss_file), "-f", "%M"] + [str(a) for a in argv],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return secs, int(rss_file.read_text().split()[-1])


NO_VERIFY = "nodewatch-export --no-verify"


def export_cmds(url, start, end, workdir, which, tag):
    """The exporters, each as argv; the same request pattern (eth_getBlockByNumber(n, true)
    in batches of 100, 5 in flight). Output files are named `<tag>-<tool>-...csv`."""
    cmds = {}
    workdir = workdir / tag
    workdir.mkdir(parents=True, exist_ok=True)
    if "ethereumetl" in which:
        cmds["ethereumetl"] = [ETHEREUMETL, "export_blocks_and_transactions", "-s", start, "-e", end,
                               "-b", 100, "-w", 5, "-p", url,
                               "--blocks-output", workdir / "etl-blocks.csv",
                               "--transactions-output", workdir / "etl-txs.csv"]
    # nodewatch-export verifies every block it writes by default; `--no-verify` beside it.
    for tool, flags, tag_ in (("nodewatch-export", [], "nwx"), (NO_VERIFY, ["--no-verify"], "nwxnv")):
        if tool in which and EXPORTER.exists():
            cmds[tool] = [EXPORTER, "-q", *flags, "export_blocks_and_transactions", "-s", start, "-e", end,
                          "-b", 100, "-w", 5, "-p", url,
                          "--blocks-output", workdir / f"{tag_}-blocks.csv",
                          "--transactions-output", workdir / f"{tag_}-txs.csv"]
    if "bare" in which:
        cmds["bare"] = [NWBENCH, "fetch", "--url", url, "-s", start, "-e", end, "-b", 100, "-w", 5]
    return cmds


def section_exporter(cfg, state, res):
    workdir = OUT / "export"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    anvil, anvil_url = start_anvil("anvil-export", load_state=state)
    nw, nw_url = start_nodewatch("nodewatch-export-bench", [anvil_url])
    end = cfg["export_blocks"] - 1
    runs, failures = [], []
    cases = []
    for via, url in (("direct", anvil_url), ("nodewatch", nw_url)):
        for tool, argv in export_cmds(url, 0, end, workdir, {"ethereumetl", "nodewatch-export", NO_VERIFY, "bare"},
                                      f"anvil-{via}").items():
            cases.append((tool, via, argv))
    for rep in range(cfg["export_repeats"]):
        order = cases[rep % len(cases):] + cases[:rep % len(cases)]
        for tool, via, argv in order:
            if via == "nodewatch" and rep >= cfg["export_via_repeats"]:
                continue
            log(f"exporter (anvil): {tool} via {via}, repeat {rep + 1}")
            try:
                secs, rss = timed(argv)
            except RuntimeError as e:
                log(f"exporter: {tool} via {via} failed: {str(e)[-300:]}")
                failures.append(f"{tool} via {via} (anvil): `{last_line(e)}`")
                continue
            runs.append({"upstream": "anvil", "tool": tool, "via": via, "blocks": end + 1, "rep": rep,
                         "secs": secs, "blocks_per_s": (end + 1) / secs, "max_rss_kib": rss})
    notes = []
    for via in ("direct", "nodewatch"):
        d = workdir / f"anvil-{via}"
        for tool, tag_ in (("nodewatch-export", "nwx"), (NO_VERIFY, "nwxnv")):
            if not (d / f"{tag_}-blocks.csv").exists():
                continue
            same = all((d / f"{tag_}-{f}.csv").read_bytes() == (d / f"etl-{f}.csv").read_bytes() for f in ("blocks", "txs"))
            same_sorted = all(sorted((d / f"{tag_}-{f}.csv").read_bytes().splitlines())
                              == sorted((d / f"etl-{f}.csv").read_bytes().splitlines()) for f in ("blocks", "txs"))
            notes.append(f"anvil via {via}: {tool}'s blocks and transactions CSVs are "
                         + ("byte-identical to ethereumetl's" if same else
                            "the same rows as ethereumetl's in another order" if same_sorted else
                            "DIFFERENT from ethereumetl's"))
    e_notes = notes
    nw.stop()
    # Replay upstream: recorded blocks served from memory, longer ranges.
    replay, (rurl,) = start_replay([free_port()], anvil_url, CHAIN_BLOCKS, 10_000_000, threads=1)
    anvil.stop()
    for blocks in cfg["ranges"]:
        # Past the recorded blocks the replay renumbers them, so their hashes no longer match
        # their headers: nodewatch-export rightly refuses them unless told not to verify.
        which = ({"bare", NO_VERIFY} | ({"nodewatch-export"} if blocks <= CHAIN_BLOCKS else set())
                 | ({"ethereumetl"} if blocks <= cfg["etl_max_range"] else set()))
        for rep in range(cfg["range_repeats"]):
            for tool, argv in export_cmds(rurl, 0, blocks - 1, workdir, which, f"replay-{blocks}").items():
                log(f"exporter (replay): {tool}, {blocks} blocks, repeat {rep + 1}")
                try:
                    secs, rss = timed(argv)
                except RuntimeError as e:
                    log(f"exporter: {tool} on {blocks} blocks failed: {str(e)[-300:]}")
                    failures.append(f"{tool}, {blocks:,} blocks (replay): `{last_line(e)}`")
                    continue
                shutil.rmtree(workdir / f"replay-{blocks}", ignore_errors=True)  # up to ~400 MB at 100k
                runs.append({"upstream": "replay", "tool": tool, "via": "direct", "blocks": blocks, "rep": rep,
                             "secs": secs, "blocks_per_s": blocks / secs, "max_rss_kib": rss})
    replay.stop()
    res["exporter"] = {"runs": runs, "exporter_found": EXPORTER.exists(),
                       "notes": e_notes + [f"failed: {f}" for f in failures],
                       "exporter_path": str(EXPORTER), "anvil_blocks": end + 1}


def section_scaling(cfg, state, res):
    out = {}
    # Batch size, against anvil: direct vs nodewatch (nginx for reference).
    anvil, anvil_url = start_anvil("anvil-scaling", load_state=state)
    nginx, nginx_url = start_nginx(anvil_url)
    nw, nw_url = start_nodewatch("nodewatch-scaling", [anvil_url])
    targets = {"direct": anvil_url, "nginx": nginx_url, "nodewatch": nw_url}
    runs = []
    for size in cfg["batch_sizes"]:
        body = write_body(f"batch{size}", batch_body(size))
        check_same(f"batch{size}", targets, body)
        log(f"scaling: batch of {size}")
        for rep in range(cfg["scale_repeats"]):
            order = list(targets)
            order = order[rep % 3:] + order[:rep % 3]
            for target in order:
                s = wrk(targets[target], body, cfg["scale_conns"], cfg["secs"])
                runs.append({"size": size, "target": target, "rep": rep, "rps": s["rps"],
                             "items_per_s": s["rps"] * size, "p50_us": s["lat_us"]["p50"],
                             "p99_us": s["lat_us"]["p99"], "errors": s["errors_total"]})
    out["batch"] = {"runs": runs, "conns": cfg["scale_conns"]}
    nginx.stop()
    # Serving threads: the default (proxy.threads = 0, one per core: 2 here) vs one.
    # Against anvil, 32 connections.
    nw1, nw1_url = start_nodewatch("nodewatch-1-thread", [anvil_url], extra_env={"NODEWATCH__PROXY__THREADS": "1"})
    time.sleep(1)
    runs = []
    variants = [("direct", anvil_url, None), ("nodewatch (one thread per core)", nw_url, nw), ("nodewatch (1 thread)", nw1_url, nw1)]
    for shape, body in (("eth_blockNumber", OUT / "bodies/blockNumber.json"), ("batch100", OUT / "bodies/batch100.json")):
        log(f"scaling: serving threads, {shape}")
        for rep in range(cfg["scale_repeats"]):
            order = variants[rep % 3:] + variants[:rep % 3]
            for target, url, proc in order:
                s = wrk(url, body, cfg["scale_conns"], cfg["secs"], watch=[proc] if proc else [])
                runs.append({"shape": shape, "target": target, "rep": rep, "rps": s["rps"],
                             "p50_us": s["lat_us"]["p50"], "p99_us": s["lat_us"]["p99"], "errors": s["errors_total"],
                             "proxy_cpu_s": s["cpu_s"][proc.name] if proc else None, "requests": s["requests"]})
    out["workers"] = {"runs": runs, "conns": cfg["scale_conns"]}
    for p in (nw, nw1):
        p.stop()
    # Upstream count, against the replay upstream (one process, one port per upstream) so
    # that the proxy, not the node, is the limit.
    ports = [free_port() for _ in range(max(cfg["upstream_counts"]))]
    replay, urls = start_replay(ports, anvil_url, 200, 10_000_000, threads=1)
    anvil.stop()
    runs = []
    shapes = {"eth_blockNumber": OUT / "bodies/blockNumber.json", "batch100": OUT / "bodies/batch100.json"}
    for n in cfg["upstream_counts"]:
        nw, nw_url = start_nodewatch(f"nodewatch-upstreams-{n}", urls[:n])
        time.sleep(1)
        log(f"scaling: {n} upstreams")
        for shape, body in shapes.items():
            for rep in range(cfg["scale_repeats"]):
                pair = [("direct", urls[0]), ("nodewatch", nw_url)]
                if rep % 2:
                    pair.reverse()
                for target, url in pair:
                    s = wrk(url, body, cfg["scale_conns"], cfg["secs"], watch=[nw] if target == "nodewatch" else [])
                    runs.append({"upstreams": n, "shape": shape, "target": target, "rep": rep, "rps": s["rps"],
                                 "p50_us": s["lat_us"]["p50"], "p99_us": s["lat_us"]["p99"],
                                 "errors": s["errors_total"], "requests": s["requests"],
                                 "proxy_cpu_s": s["cpu_s"].get(nw.name)})
        nw.stop()
    replay.stop()
    out["upstreams"] = {"runs": runs, "conns": cfg["scale_conns"]}
    res["scaling"] = out


PERF_GROUPS = [
    ("kernel: TCP/IP, syscalls, scheduling", r"^\[kernel|^\[k\]"),
    ("allocator (malloc/free/realloc)", r"malloc|_int_free|cfree|realloc|_int_realloc|unlink_chunk|tcache|consolidate|arena"),
    ("memcpy/memmove/memset", r"memmove|memcpy|memset|memcmp"),
    ("JSON (serde_json, nodewatch::jsonrpc)", r"serde_json|serde::|nodewatch::jsonrpc|RawValue"),
    ("prometheus metrics", r"prometheus|nodewatch::metrics"),
    ("tracing", r"tracing"),
    ("hyper client + pool (upstream side)", r"hyper_util::client|hyper::client|pool::|Checkout|want::|dispatch::Callback|Pooled"),
    ("hyper HTTP/1 codec + server", r"hyper::|httparse|http::header|http::"),
    ("tokio runtime, timers, I/O driver", r"tokio::|mio::|clock_gettime|epoll|parking_lot"),
    ("nodewatch proxy/router/upstream", r"nodewatch::"),
    ("futures/bytes/other Rust", r"futures|bytes::|core::|alloc::|std::"),
]


def section_profile(cfg, state, res):
    if shutil.which("perf") is None:
        res["profile"] = {"error": "perf not installed"}
        return
    anvil, anvil_url = start_anvil("anvil-profile", load_state=state)
    out = {}
    for shape, body in (("eth_blockNumber", OUT / "bodies/blockNumber.json"),
                        ("batch100", OUT / "bodies/batch100.json")):
        nw, nw_url = start_nodewatch(f"nodewatch-profile-{shape}", [anvil_url])
        time.sleep(0.5)
        data = OUT / f"perf-{shape}.data"
        log(f"profile: perf record nodewatch under {shape} load at 32 connections")
        load = threading.Thread(target=wrk, args=(nw_url, body, 32, cfg["perf_secs"] + 2))
        load.start()
        time.sleep(1)
        subprocess.run(["perf", "record", "-e", "cpu-clock", "-F", "1999", "-g", "-p", str(nw.pid),
                        "-o", str(data), "--", "sleep", str(cfg["perf_secs"])],
                       capture_output=True, timeout=cfg["perf_secs"] + 60)
        load.join()
        nw.stop()
        rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,symbol",
                              "--stdio", "-g", "none", "--percent-limit", "0.01"],
                             capture_output=True, timeout=120).stdout.decode(errors="replace")
        symbols = []
        for line in rep.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
            if m:
                symbols.append({"pct": float(m.group(1)), "dso": m.group(2), "kind": m.group(3),
                                "symbol": re.sub(r"\s+-\s+-$", "", m.group(4))})
        groups = {g: 0.0 for g, _ in PERF_GROUPS}
        groups["other"] = 0.0
        for s in symbols:
            key = s["symbol"] if s["kind"] != "k" else "[kernel] " + s["symbol"]
            if s["dso"].startswith("libc") and not re.search(PERF_GROUPS[1][1] + "|" + PERF_GROUPS[2][1], key):
                key = "[kernel] libc syscall wrapper " + key if re.search(r"send|recv|write|read|epoll|syscall", key) else key
            for g, pattern in PERF_GROUPS:
                if re.search(pattern, key):
                    groups[g] += s["pct"]
                    break
            else:
                groups["other"] += s["pct"]
        # Inclusive cost of nodewatch's own request-path functions (callers' view).
        incl = subprocess.run(["perf", "report", "-i", str(data), "--children", "--sort", "symbol",
                               "--stdio", "-g", "none", "--percent-limit", "0.5"],
                              capture_output=True, timeout=120).stdout.decode(errors="replace")
        inclusive = []
        for line in incl.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(.*?)\s*$", line)
            if m and ("nodewatch::" in m.group(4) or "prometheus" in m.group(4) or "serde_json" in m.group(4)):
                inclusive.append({"children_pct": float(m.group(1)), "self_pct": float(m.group(2)),
                                  "symbol": re.sub(r"\s+-\s+-$", "", m.group(4))})
        samples = re.search(r"# Samples: (\S+) of event", rep)
        out[shape] = {"top": symbols[:30], "groups": groups, "inclusive": inclusive[:25],
                      "samples": samples.group(1) if samples else None, "data": str(data.relative_to(ROOT))}
    anvil.stop()
    res["profile"] = out


# === verified data (issue 19) ================================================================

# The verification chain, built once and cached like the benchmark chain: block 1 deploys a
# contract, then VERIFY_BLOCKS blocks carry VERIFY_TXS transactions each (mainnet-sized).
# Two thirds call the contract, which logs an ERC-20 `Transfer` (3 topics, so ethereum-etl
# reads a token transfer) and an `Approval`; the rest are ETH transfers. Legacy, EIP-2930 and
# EIP-1559 transactions are mixed.
VERIFY_BLOCKS, VERIFY_TXS = 120, 150
VERIFY_FIRST = 2
TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
APPROVAL_TOPIC = "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
# mstore(0, calldata[0:32]); log3(0, 32, Transfer, caller, calldata[32:64]); log1(0, 32, Approval); stop
EMITTER_RUNTIME = ("600035600052602035337f" + TRANSFER_TOPIC + "60206000a3"
                   + "7f" + APPROVAL_TOPIC + "60206000a1" + "00")
# codecopy(0, 12, len); return(0, len)
EMITTER_INIT = (f"60{len(EMITTER_RUNTIME) // 2:02x}600c600039"
                f"60{len(EMITTER_RUNTIME) // 2:02x}6000f3") + EMITTER_RUNTIME


def rpc_batch(url, calls, timeout=120):
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                       for i, (m, p) in enumerate(calls)]).encode()
    answers = sorted(post(url, body, timeout), key=lambda a: a["id"])
    for a in answers:
        if "error" in a:
            raise RuntimeError(f"{calls[a['id']][0]}: {a['error']}")
    return [a["result"] for a in answers]


def verify_chain_state():
    """The verification chain as an anvil state file, built once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"verify-chain-{VERIFY_BLOCKS}x{VERIFY_TXS}.json"
    if path.exists():
        return path, False
    log(f"building the verification chain ({VERIFY_BLOCKS} blocks x {VERIFY_TXS} txs with logs); "
        f"cached in {path.relative_to(ROOT)} for later runs")
    t0 = time.time()
    anvil, url = start_anvil("anvil-verify-build")
    accounts = rpc(url, "eth_accounts")["result"]
    deployed = rpc(url, "eth_sendTransaction", [{"from": accounts[0], "data": "0x" + EMITTER_INIT,
                                                 "gas": hex(200_000)}])["result"]
    contract = rpc(url, "eth_getTransactionReceipt", [deployed])["result"]["contractAddress"]
    if rpc(url, "eth_getCode", [contract, "latest"])["result"] != "0x" + EMITTER_RUNTIME:
        raise RuntimeError("the log emitter did not deploy as written")
    rpc(url, "evm_setAutomine", [False])
    nonces = [int(rpc(url, "eth_getTransactionCount", [a, "latest"])["result"], 16) for a in accounts]
    serial = 0
    for block in range(VERIFY_FIRST, VERIFY_FIRST + VERIFY_BLOCKS):
        calls = []
        for i in range(VERIFY_TXS):
            sender = i % len(accounts)
            serial += 1
            to = f"0x{0x2000_0000 + serial:040x}"
            tx = {"from": accounts[sender], "nonce": hex(nonces[sender])}
            nonces[sender] += 1
            if i % 3 == 0:  # ETH transfer, legacy
                tx.update(to=to, value=hex(serial), gas=hex(21_000), gasPrice=hex(10_000_000_000))
            else:  # a call that logs Transfer + Approval: EIP-2930 or EIP-1559
                tx.update(to=contract, gas=hex(80_000),
                          data="0x" + f"{serial:064x}" + f"{0x2000_0000 + serial:064x}")
                if i % 6 == 2:
                    tx.update(gasPrice=hex(10_000_000_000), accessList=[{"address": contract, "storageKeys": []}])
                else:
                    # The same tip as the legacy ones: anvil drops a sender's later transaction that pays
                    # less than its earlier ones when it mines them together.
                    tx.update(maxFeePerGas=hex(10_000_000_000), maxPriorityFeePerGas=hex(10_000_000_000))
            calls.append(("eth_sendTransaction", [tx]))
        rpc_batch(url, calls)
        rpc(url, "evm_mine")
    rpc(url, "evm_setAutomine", [True])
    counts = rpc_batch(url, [("eth_getBlockTransactionCountByNumber", [hex(n)])
                             for n in range(VERIFY_FIRST, VERIFY_FIRST + VERIFY_BLOCKS)])
    if any(int(c, 16) != VERIFY_TXS for c in counts):
        raise RuntimeError(f"verification chain: blocks hold {sorted(set(int(c, 16) for c in counts))} "
                           f"transactions, expected {VERIFY_TXS}")
    dump = rpc(url, "anvil_dumpState", timeout=300)["result"]
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.decompress(bytes.fromhex(dump[2:])))
    tmp.rename(path)
    anvil.stop()
    log(f"verification chain built in {time.time() - t0:.0f}s")
    return path, True


def verify_chain_info(url):
    """The chain's blocks and transaction hashes, with the shape of what is served."""
    blocks = list(range(VERIFY_FIRST, VERIFY_FIRST + VERIFY_BLOCKS))
    headers = rpc_batch(url, [("eth_getBlockByNumber", [hex(n), False]) for n in blocks])
    hashes = [h for b in headers for h in b["transactions"]]
    sample = rpc_batch(url, [("eth_getBlockReceipts", [hex(blocks[0])])])[0]
    full = rpc_batch(url, [("eth_getBlockByNumber", [hex(blocks[0]), True])])[0]
    return {"blocks": blocks, "hashes": hashes, "txs_per_block": VERIFY_TXS,
            "logs_per_block": sum(len(r["logs"]) for r in sample),
            "tx_types": sorted({t["type"] for t in full["transactions"]}),
            "full_block_bytes": len(json.dumps(full, separators=(",", ":"))),
            "receipts_bytes": len(json.dumps(sample, separators=(",", ":"))),
            "head_fields": sorted(k for k in full if k != "transactions")}


def cargo_figures(text):
    """`FIGURE name value unit` lines of a bench's output, as {name: {value, unit}}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^FIGURE\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            try:
                out[m.group(1)] = {"value": float(m.group(2)), "unit": m.group(3)}
            except ValueError:
                pass
    return out


def verify_crate_bench(cfg):
    """`cargo bench -p nodewatch-verify` (release, one thread): built by cargo first, then its
    executable run as cargo runs it (`<bench> --bench`, from the crate's directory) under
    /usr/bin/time, so the share of its wall time it had a core for is known: the bench times
    with the wall clock, and the cores are shared."""
    out = {"command": "cargo bench -p nodewatch-verify", "runs": []}
    build = subprocess.run(["cargo", "bench", "-p", "nodewatch-verify", "--no-run", "--message-format=json"],
                           cwd=ROOT, capture_output=True, timeout=3600)
    exe = None
    for line in build.stdout.decode(errors="replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and "bench" in msg.get("target", {}).get("kind", [])
                and msg.get("package_id", "").find("nodewatch-verify") >= 0):
            exe = msg["executable"]
    if build.returncode != 0 or not exe:
        out["error"] = "build failed: " + build.stderr.decode(errors="replace")[-1500:]
        log("verify: cargo bench -p nodewatch-verify does not build; crate figures skipped")
        return out
    out["executable"] = str(Path(exe).relative_to(ROOT)) if exe.startswith(str(ROOT)) else exe
    times = OUT / "verify-crate-time.txt"
    for rep in range(cfg["verify_crate_repeats"]):
        log(f"verify: cargo bench -p nodewatch-verify, run {rep + 1}")
        load0 = loadavg()
        r = subprocess.run(["/usr/bin/time", "-o", str(times), "-f", "%e %U %S", exe, "--bench"],
                           cwd=ROOT / "crates/verify", capture_output=True, timeout=1800)
        text = r.stdout.decode(errors="replace")
        (OUT / f"verify-crate-{rep}.txt").write_text(text + r.stderr.decode(errors="replace"))
        if r.returncode != 0:
            out["error"] = f"the bench failed ({r.returncode}): " + r.stderr.decode(errors="replace")[-1500:]
            return out
        wall, user, system = (float(x) for x in times.read_text().split()[-3:])
        figures = cargo_figures(text)
        if not figures:
            out["error"] = "the bench printed no FIGURE lines: " + text[-1500:]
            return out
        out["runs"].append({"rep": rep, "figures": figures, "wall_s": wall, "cpu_s": user + system,
                            "cpu_share": (user + system) / wall if wall else None,
                            "loadavg": [load0, loadavg()]})
    return out


class KeepAlive:
    """One keep-alive HTTP/1.1 connection to a JSON-RPC server on 127.0.0.1."""

    def __init__(self, url):
        host, port = url.split("//", 1)[1].rstrip("/").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)

    def post(self, body):
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/", body, {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed the idle connection (as servers do): once more on a new one.
                self.conn.close()
                if attempt:
                    raise
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
        return data

    def fresh(self):
        """Starts the next requests on a new connection (the other instance's turn may have
        outlasted the server's idle timeout)."""
        self.conn.close()

    def close(self):
        self.conn.close()


def metric_values(admin, prefixes):
    """{name{labels}: value} of the /metrics lines starting with one of `prefixes`."""
    with urllib.request.urlopen(admin + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


VERIFY_METRICS = ("nodewatch_verify_fetches_total", "nodewatch_upstream_attempts_total",
                  "nodewatch_verified_answers_total", "nodewatch_verify_cache_hits_total",
                  "nodewatch_wrong_answers_total", "nodewatch_verify_skipped_total")


def metric_delta(before, after):
    """Per metric name: {labels: increase} and the total increase."""
    out = {}
    for key, value in after.items():
        d = value - before.get(key, 0.0)
        if d:
            name, _, labels = key.partition("{")
            out.setdefault(name, {"total": 0.0, "by": {}})
            out[name]["total"] += d
            out[name]["by"]["{" + labels if labels else ""] = d
    return out


def verify_kinds(cfg, chain):
    """The request bodies of each kind, the same for both nodewatch instances. Every request
    asks for blocks and receipts in chain order, as an ETL job does, and nothing is asked
    twice but the 100-block batches' blocks: the receipts are cold (nothing cached)."""
    blocks, hashes = chain["blocks"], chain["hashes"]

    def env(items):
        return json.dumps(items, separators=(",", ":")).encode()

    def call(i, method, params):
        return {"jsonrpc": "2.0", "id": i, "method": method, "params": params}

    n_full = cfg["verify_full_requests"]
    n_receipts = min(cfg["verify_receipt_batches"], len(hashes) // 100)
    n_blocks = cfg["verify_block_batches"]
    # The receipts of the chain's last blocks, apart from the first blocks' full blocks (asked
    # first), so that neither their headers nor their receipts are in the verifier's cache.
    skip = len(hashes) - n_receipts * 100
    return {
        "full_block": {"items": 1, "bodies": [env(call(1, "eth_getBlockByNumber", [hex(blocks[i % len(blocks)]), True]))
                                               for i in range(n_full)]},
        "receipts100": {"items": 100, "bodies": [env([call(j, "eth_getTransactionReceipt", [hashes[skip + i * 100 + j]])
                                                       for j in range(100)]) for i in range(n_receipts)]},
        "full_blocks100": {"items": 100, "bodies": [env([call(j, "eth_getBlockByNumber",
                                                              [hex(blocks[(i * 100 + j) % len(blocks)]), True])
                                                         for j in range(100)]) for i in range(n_blocks)]},
    }


def verify_run(client, proc, admin, bodies):
    """Sends `bodies` one after the other on one connection; nodewatch's CPU and wall time
    over them, and what its metrics counted."""
    client.fresh()
    m0 = metric_values(admin, VERIFY_METRICS)
    ns0, ticks0 = proc.cpu_ns(), proc.cpu_ticks()
    t0 = time.perf_counter()
    size = errors = nulls = 0
    first = None
    for body in bodies:
        raw = client.post(body)
        if first is None:
            first = raw
        size += len(raw)
        errors += raw.count(b'"error":')
        nulls += raw.count(b'"result":null')
    wall = time.perf_counter() - t0
    ns1, ticks1 = proc.cpu_ns(), proc.cpu_ticks()
    deltas = metric_delta(m0, metric_values(admin, VERIFY_METRICS))
    return {"requests": len(bodies), "cpu_s": (ns1 - ns0) / 1e9, "cpu_ticks_s": (ticks1 - ticks0) / CLK_TCK,
            "wall_s": wall, "bytes": size, "errors": errors, "nulls": nulls, "metrics": deltas}, first


def verify_proxy(cfg, anvil, anvil_url, chain):
    """Proxy CPU per request with verification on (the default) and off
    (NODEWATCH__VERIFY__ENABLED=false): two fresh nodewatch instances per repeat, against the
    same anvil, the same requests to each, one at a time on a keep-alive connection."""
    kinds = verify_kinds(cfg, chain)
    runs, checks = [], []
    for rep in range(cfg["verify_repeats"]):
        nws = {}
        for on in (True, False):
            env = {} if on else {"NODEWATCH__VERIFY__ENABLED": "false"}
            proc, url = start_nodewatch(f"nodewatch-verify-{'on' if on else 'off'}-{rep}", [anvil_url], extra_env=env)
            nws[on] = (proc, url, KeepAlive(url))
        time.sleep(0.5)
        for k, (kind, spec) in enumerate(kinds.items()):
            order = [True, False] if (rep + k) % 2 == 0 else [False, True]
            firsts = {}
            for on in order:
                proc, url, client = nws[on]
                log(f"verify: proxy, {kind} x {len(spec['bodies'])}, verification {'on' if on else 'off'} "
                    f"(repeat {rep + 1})")
                anvil0 = anvil.cpu_ticks()
                r, firsts[on] = verify_run(client, proc, proc.admin, spec["bodies"])
                r.update(kind=kind, verify=on, rep=rep, items=spec["items"], order=order.index(on),
                         node_cpu_s=(anvil.cpu_ticks() - anvil0) / CLK_TCK, loadavg=loadavg())
                runs.append(r)
            if rep == 0:
                same = json.loads(firsts[True]) == json.loads(firsts[False])
                checks.append({"kind": kind, "same_answer": same})
                if not same:
                    log(f"verify: {kind}: the answers with verification on and off differ")
        for proc, _, client in nws.values():
            client.close()
            proc.stop()
    return {"runs": runs, "checks": checks,
            "requests": {k: len(v["bodies"]) for k, v in kinds.items()}}


def verify_export_cmds(url, first, last, hashes_file, workdir, etl):
    """Every exporter command verification touches, for ethereumetl, nodewatch-export
    (verifying, its default) and nodewatch-export --no-verify, with the same flags
    (`-b 100 -w 5`, export_all: two partitions, `-B 100`). Each: (command, tool, output, argv)."""
    tools = [("ethereumetl", [etl])]
    if EXPORTER.exists():
        tools += [("nodewatch-export", [EXPORTER, "-q"]), ("nodewatch-export --no-verify", [EXPORTER, "-q", "--no-verify"])]
    cmds = []
    for tool, exe in tools:
        d = workdir / tool.replace(" --", "-")
        rng = ["-s", first, "-e", last]
        cmds.append(("export_blocks_and_transactions", tool, d / "blocks",
                     [*exe, "export_blocks_and_transactions", *rng, "-b", 100, "-w", 5, "-p", url,
                      "--blocks-output", d / "blocks/blocks.csv", "--transactions-output", d / "blocks/transactions.csv"]))
        cmds.append(("export_receipts_and_logs", tool, d / "receipts",
                     [*exe, "export_receipts_and_logs", "--transaction-hashes", hashes_file, "-b", 100, "-w", 5,
                      "-p", url, "--receipts-output", d / "receipts/receipts.csv", "--logs-output", d / "receipts/logs.csv"]))
        cmds.append(("export_token_transfers", tool, d / "token_transfers",
                     [*exe, "export_token_transfers", *rng, "-b", 100, "-w", 5, "-p", url,
                      "-o", d / "token_transfers/token_transfers.csv"]))
        cmds.append(("export_all", tool, d / "all",
                     [*exe, "export_all", *rng, "-b", (last - first) // 2 + 1, "-B", 100, "-w", 5, "-p", url,
                      "-o", d / "all"]))
    return cmds


def verify_exporter(cfg, anvil_url, chain):
    """ethereumetl vs nodewatch-export with and without verification, on every command that
    verification touches, over the verification chain (receipts with logs, token transfers),
    straight at anvil (the node sets the pace) and at the replay upstream (answers from
    memory: the tools' own speed)."""
    workdir = OUT / "verify-export"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    etl = ETHEREUMETL310 if ETHEREUMETL310.exists() else ETHEREUMETL
    runs, notes, failures, ranges = [], [], [], {}
    replay_info = None
    upstreams = ["anvil"] + (["replay"] if NWBENCH.exists() else [])
    for upstream in upstreams:
        blocks = chain["blocks"][:cfg["verify_export_blocks"][upstream]]
        first, last = blocks[0], blocks[-1]
        ranges[upstream] = {"blocks": [first, last], "txs": len(blocks) * VERIFY_TXS}
        hashes_file = workdir / f"transaction_hashes-{upstream}.txt"
        hashes_file.write_text("\n".join(chain["hashes"][:len(blocks) * VERIFY_TXS]) + "\n")
        proc = None
        if upstream == "replay":
            proc, (url,) = start_replay([free_port()], anvil_url, last + 1, last, receipts_and_traces=True)
            # What the verifier asks beyond what ethereumetl does: a replay without it makes
            # nodewatch-export's verified receipts and logs fail there (a node has both).
            head = rpc(url, "eth_getBlockByNumber", [hex(first), False])["result"]["hash"]
            serves = {}
            for method, params in (("eth_getBlockByHash", [head, False]), ("eth_getBlockReceipts", [head])):
                answer = rpc(url, method, params)
                serves[method] = "result" in answer and answer["result"] is not None
            replay_info = {"nwbench": str(NWBENCH), "serves": serves}
        else:
            url = anvil_url
        cases = verify_export_cmds(url, first, last, hashes_file, workdir / upstream, etl)
        for rep in range(cfg["verify_export_repeats"]):
            order = cases[rep % len(cases):] + cases[:rep % len(cases)]
            for command, tool, out, argv in order:
                if (upstream, command, tool) in failures:
                    continue
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True, exist_ok=True)
                log(f"verify: exporter ({upstream}): {tool} {command}, repeat {rep + 1}")
                try:
                    secs, rss = timed(argv)
                except RuntimeError as e:
                    failures.append((upstream, command, tool))
                    why = last_line(e)
                    notes.append(f"{command} ({upstream}): {tool} failed: `{why}`"
                                 + (MISSING_BY_HASH if upstream == "replay" and "-32601" in why
                                    and not (replay_info or {}).get("serves", {}).get("eth_getBlockByHash") else ""))
                    log(f"verify: {tool} {command} failed: {str(e)[-400:]}")
                    continue
                runs.append({"upstream": upstream, "command": command, "tool": tool, "blocks": len(blocks),
                             "txs": len(blocks) * VERIFY_TXS, "rep": rep, "secs": secs,
                             "blocks_per_s": len(blocks) / secs, "max_rss_kib": rss, "loadavg": loadavg()})
        for command in dict.fromkeys(c for c, *_ in cases):
            outs = {tool: out for c, tool, out, _ in cases if c == command}
            ref = sorted_lines(outs["ethereumetl"]) if (upstream, command, "ethereumetl") not in failures else None
            for tool, out in outs.items():
                if tool == "ethereumetl" or ref is None or (upstream, command, tool) in failures:
                    continue
                got = sorted_lines(out)
                notes.append(f"{command} ({upstream}): {tool}'s output holds "
                             + ("the same lines as ethereumetl's" if got == ref else "DIFFERENT lines from ethereumetl's"))
        if proc:
            proc.stop()
    return {"runs": runs, "notes": notes, "ethereumetl": str(etl), "exporter_found": EXPORTER.exists(),
            "ranges": ranges, "failures": [list(f) for f in failures], "replay": replay_info}


def section_verify(cfg, state, res):
    """Issue 19's figures: the verification crate's own speed, the proxy's CPU per request
    with verification on and off, and the exporters on every command it touches."""
    out = {"loadavg_start": loadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    out["crate"] = verify_crate_bench(cfg)
    vstate, built = verify_chain_state()
    anvil, anvil_url = start_anvil("anvil-verify", load_state=vstate)
    chain = verify_chain_info(anvil_url)
    out["chain"] = {k: v for k, v in chain.items() if k not in ("blocks", "hashes")}
    out["chain"].update(blocks=len(chain["blocks"]), first=chain["blocks"][0], built_now=built)
    out["proxy"] = verify_proxy(cfg, anvil, anvil_url, chain)
    out["exporter"] = verify_exporter(cfg, anvil_url, chain)
    anvil.stop()
    out["loadavg_end"] = loadavg()
    res["verify"] = out


# === a rate-limited provider (issue: the learned rate against the true limit) ================

# What nodewatch exports about the pace of its upstreams (src/metrics.rs), summed over the
# upstream label (each sidecar here has one upstream).
RATELIMIT_METRICS = ("nodewatch_upstream_learned_rps", "nodewatch_rate_limited_total",
                     "nodewatch_rate_limit_waits_total", "nodewatch_rate_limit_wait_seconds_total")


# Read from every sidecar once its export is done.
RATELIMIT_END_METRICS = ("nodewatch_requests_total", "nodewatch_upstream_attempts_total",
                         "nodewatch_probes_total", "nodewatch_verify_fetches_total", "nodewatch_hedges_total",
                         "nodewatch_retry_budget_exhausted_total") + RATELIMIT_METRICS


def ratelimit_config(quick):
    """The section's sizes. The limit L and ethereumetl's -b can be changed from the
    environment (BENCH_RATELIMIT_RPS, BENCH_RATELIMIT_BATCH)."""
    return {
        "ratelimit_rps": int(os.environ.get("BENCH_RATELIMIT_RPS", "120")),
        # ethereumetl's -b: 100 (its default, and what the issue asks), then 1 (what
        # tests/rate_limit.rs runs: a refused request is then one call).
        "ratelimit_batches": [int(b) for b in os.environ.get("BENCH_RATELIMIT_BATCH", "100,1").split(",")],
        "ratelimit_workers": 8,
        # Blocks 1..N of the benchmark chain (10 transfers each): N blocks + 10 N receipts
        # are the calls of one export.
        "ratelimit_blocks": 100 if quick else 250,
        "ratelimit_repeats": 1,
        "ratelimit_sample_s": 0.15,
        # An ethereumetl command that takes longer is stopped (and reported).
        "ratelimit_command_timeout_s": 300,
        # The steady part of a run: the last half of the time from when every sidecar had
        # learned a rate to when the first one finished.
        "ratelimit_steady_from": 0.5,
    }


def start_limiter(name, target, rps, log_path):
    """`nwbench limiter` in front of `target`; its URL, and when it started (monotonic)."""
    p = Proc(name, [NWBENCH, "limiter", "--target", target, "--rps", rps, "--log", log_path],
             stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    line = p.popen.stdout.readline().decode().strip()
    if not line.startswith("ready "):
        p.stop()
        raise RuntimeError(f"nwbench limiter did not start ({line!r}): see {p.log_path}")
    p.started_at = time.monotonic()
    p.url = line.split()[1]
    return p


def limiter_cmd(p, command):
    p.popen.stdin.write((command + "\n").encode())
    p.popen.stdin.flush()
    return json.loads(p.popen.stdout.readline())


def finish_limiter(p, log_path):
    """Ends the limiter (end of stdin: it writes its last second and a summary); its
    per-second lines and the summary."""
    p.popen.stdin.close()
    try:
        p.popen.wait(15)
    except subprocess.TimeoutExpired:
        pass
    p.stop()
    seconds, summary = [], {}
    for line in log_path.read_text().splitlines():
        row = json.loads(line)
        if "summary" in row:
            summary = row["summary"]
        else:
            seconds.append(row)
    return seconds, summary


class MetricsSampler(threading.Thread):
    """Scrapes every sidecar's /metrics every `period` s: (t since `t0`, per sidecar: learned
    rate, limit answers, requests that waited for the pace, seconds waited)."""

    def __init__(self, sidecars, t0, period):
        super().__init__(daemon=True)
        self.sidecars, self.t0, self.period = sidecars, t0, period
        self.samples, self.errors = [], 0
        self.done = threading.Event()

    def scrape(self):
        t_start = time.monotonic()
        row = {"learned": [], "limited": [], "waits": [], "wait_s": []}
        for p in self.sidecars:
            try:
                values = metric_values(p.admin, RATELIMIT_METRICS)
            except Exception:
                self.errors += 1
                return
            total = {name: 0.0 for name in RATELIMIT_METRICS}
            for key, value in values.items():
                name = key.partition("{")[0]
                if name in total:
                    total[name] += value
            row["learned"].append(total["nodewatch_upstream_learned_rps"])
            row["limited"].append(total["nodewatch_rate_limited_total"])
            row["waits"].append(total["nodewatch_rate_limit_waits_total"])
            row["wait_s"].append(total["nodewatch_rate_limit_wait_seconds_total"])
        row["t"] = (t_start + time.monotonic()) / 2 - self.t0
        self.samples.append(row)

    def run(self):
        next_at = time.monotonic()
        while not self.done.is_set():
            self.scrape()
            next_at += self.period
            self.done.wait(max(0.0, next_at - time.monotonic()))
        self.scrape()


def ratelimit_commands(url, first, last, d, batch, workers):
    """ethereumetl's two commands of an export into `d`, as argv; the second reads the
    transaction hashes the first wrote (written between them, as `extract_csv_column` would)."""
    d.mkdir(parents=True, exist_ok=True)
    flags = ["-b", batch, "-w", workers, "-p", url]
    return [
        ("export_blocks_and_transactions",
         [ETHEREUMETL, "export_blocks_and_transactions", "-s", first, "-e", last, *flags,
          "--blocks-output", d / "blocks.csv", "--transactions-output", d / "transactions.csv"]),
        ("export_receipts_and_logs",
         [ETHEREUMETL, "export_receipts_and_logs", "--transaction-hashes", d / "transaction_hashes.txt", *flags,
          "--receipts-output", d / "receipts.csv", "--logs-output", d / "logs.csv"]),
    ]


def ratelimit_export(url, first, last, d, cfg, batch, t0, limiter=None):
    """Runs the export into `d`: each command's start and end (s since `t0`) and, given the
    limiter, the time from the first to the last request it took for the command (with
    their calls), as tests/rate_limit.rs measures it."""
    steps = []
    for command, argv in ratelimit_commands(url, first, last, d, batch, cfg["ratelimit_workers"]):
        if command == "export_receipts_and_logs":
            with open(d / "transactions.csv", newline="") as fh:
                hashes = [row["hash"] for row in csv.DictReader(fh)]
            (d / "transaction_hashes.txt").write_text("\n".join(hashes) + "\n")
        mark = limiter_cmd(limiter, "mark")["mark"] if limiter else None
        start = time.monotonic() - t0
        try:
            r = subprocess.run([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=cfg["ratelimit_command_timeout_s"])
            rc, err = r.returncode, r.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            rc, err = "timeout", (e.stderr or b"").decode(errors="replace") + "\n(killed: timeout)"
        end = time.monotonic() - t0
        step = {"command": command, "start": start, "end": end, "secs": end - start, "rc": rc}
        d.with_name(f"{d.name}.{command}.stderr").write_text(err)  # beside the output, not in it
        # ethereumetl logs a failed batch and may still exit 0: its errors are kept.
        step["stderr_errors"] = [l for l in err.splitlines() if "Error" in l or "error" in l][-5:]
        if rc != 0:
            step["error"] = err[-1500:]
            steps.append(step)
            break
        if limiter:
            step["busy"] = limiter_cmd(limiter, f"busy {mark}")
        steps.append(step)
    return steps


def ratelimit_case(cfg, anvil_url, first, last, n, batch, rep, workdir, direct_rows):
    """One limiter of L calls/s in front of anvil, `n` nodewatch sidecars with it as their only
    upstream, each running the whole export at once into a directory of its own."""
    limit = cfg["ratelimit_rps"]
    tag = f"b{batch}-{'one' if n == 1 else n}-{rep}"
    log_path = workdir / f"limiter-{tag}.jsonl"
    limiter = start_limiter(f"limiter-{tag}", anvil_url, limit, log_path)
    for i in range(n):  # their logs are read afterwards: this run's only
        (OUT / "logs" / f"nodewatch-ratelimit-{tag}-{i}.log").unlink(missing_ok=True)
    started = [start_nodewatch(f"nodewatch-ratelimit-{tag}-{i}", [limiter.url]) for i in range(n)]
    sidecars, urls = [p for p, _ in started], [u for _, u in started]
    load0 = loadavg()
    t0 = time.monotonic()
    sampler = MetricsSampler(sidecars, t0, cfg["ratelimit_sample_s"])
    sampler.start()
    counts0 = limiter_cmd(limiter, "counts")
    mark = limiter_cmd(limiter, "mark")["mark"]
    results = [None] * n
    lock = threading.Lock()

    def one(i):
        steps = ratelimit_export(urls[i], first, last, workdir / tag / f"sidecar-{i}", cfg, batch, t0,
                                 limiter if n == 1 else None)
        with lock:
            results[i] = steps

    log(f"ratelimit: {n} sidecar(s) on one limit of {limit} calls/s, blocks {first}–{last} "
        f"(-b {batch} -w {cfg['ratelimit_workers']}), repeat {rep + 1}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    # limiter_cmd is not thread-safe: with two sidecars only the whole run is marked.
    counts1 = limiter_cmd(limiter, "counts")
    busy = limiter_cmd(limiter, f"busy {mark}")
    sampler.done.set()
    sampler.join()
    load1 = loadavg()
    status, metrics, refusals = [], [], {}
    for p in sidecars:
        try:
            # Where the calls billed beyond the export's went, and what the clients got.
            metrics.append(metric_values(p.admin, RATELIMIT_END_METRICS))
        except Exception as e:
            metrics.append({"error": str(e)})
        try:
            with urllib.request.urlopen(p.admin + "/status", timeout=5) as r:
                st = json.loads(r.read())
            status.append([{k: u.get(k) for k in ("name", "status", "learned_rps", "rate_limited", "breaker")}
                           for u in st.get("upstreams", [])])
        except Exception as e:
            status.append({"error": str(e)})
        p.stop()
        # Why a client got an error, in nodewatch's words (its log, without colours).
        text = re.sub(r"\x1b\[[0-9;]*m", "", p.log_path.read_text(errors="replace"))
        failures = [l.split("error=", 1)[-1].strip() for l in text.splitlines() if "no upstream could answer" in l]
        refusals[p.name] = {"count": len(failures), "first": failures[0][:300] if failures else None}
    seconds, summary = finish_limiter(limiter, log_path)
    offset = limiter.started_at - t0  # the limiter's second s is [offset + s, offset + s + 1) here
    same, rows = [], []
    for i in range(n):
        got = sorted_lines(workdir / tag / f"sidecar-{i}")
        same.append(direct_rows is not None and got == direct_rows)
        # Rows written per file, and how many of the direct export's are missing.
        rows.append({f: {"rows": len(got.get(f, [])),
                         "missing": len(set(direct_rows[f]) - set(got.get(f, []))) if direct_rows else None}
                     for f in (direct_rows or got) if f.endswith(".csv")})
    return {
        "sidecars": n, "rep": rep, "limit": limit, "batch": batch,
        "workers": cfg["ratelimit_workers"], "blocks": [first, last], "wall_s": wall,
        "steps": results, "counts": {k: counts1[k] - counts0[k] for k in ("requests", "refused", "calls")},
        "busy": busy, "limiter_offset_s": offset, "limiter_seconds": seconds,
        "refused_at": [t + offset for t in summary.get("refused_at", [])],
        "limiter_summary": {k: v for k, v in summary.items() if k != "refused_at"},
        "samples": sampler.samples, "scrape_errors": sampler.errors,
        "sample_period_s": cfg["ratelimit_sample_s"], "status_end": status, "metrics_end": metrics,
        "unanswered": [refusals.get(p.name) for p in sidecars],
        "same_rows": same, "rows": rows,
        "loadavg": [load0, load1],
    }


def section_ratelimit(cfg, state, res):
    """A paid provider's limit in front of anvil; ethereumetl through nodewatch (one sidecar,
    then two at once on the one limit): what nodewatch learned, over time, against the limit."""
    out = {"loadavg_start": loadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    probe = subprocess.run([str(NWBENCH), "limiter", "--help"], capture_output=True)
    if probe.returncode != 0:
        out["error"] = (f"{NWBENCH.relative_to(ROOT) if str(NWBENCH).startswith(str(ROOT)) else NWBENCH} has no "
                        "`limiter` command: rebuild it (`make bench-build`)")
        log("ratelimit: " + out["error"])
        res["ratelimit"] = out
        return
    workdir = OUT / "ratelimit"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    anvil, anvil_url = start_anvil("anvil-ratelimit", load_state=state)
    first, last = 1, cfg["ratelimit_blocks"]
    # The export straight at anvil, no limit, with each -b: the rows every limited export
    # must hold, and ethereumetl's own time for the work.
    out["direct"] = {}
    direct_rows = None
    for batch in cfg["ratelimit_batches"]:
        log(f"ratelimit: direct export (no limit), blocks {first}–{last}, -b {batch}")
        d = workdir / f"direct-b{batch}"
        t0 = time.monotonic()
        steps = ratelimit_export(anvil_url, first, last, d, cfg, batch, t0)
        out["direct"][str(batch)] = {"steps": steps, "wall_s": time.monotonic() - t0, "loadavg": loadavg()}
        if direct_rows is None and all(s["rc"] == 0 for s in steps):
            direct_rows = sorted_lines(d)
            with open(d / "transactions.csv", newline="") as fh:
                txs = sum(1 for _ in csv.DictReader(fh))
    if direct_rows is None:
        out["error"] = "ethereumetl failed straight at anvil: see target/bench/ratelimit/direct-*/"
        anvil.stop()
        res["ratelimit"] = out
        return
    out["chain"] = {"blocks": [first, last], "txs": txs, "calls_per_export": (last - first + 1) + txs}
    out["runs"] = []
    for rep in range(cfg["ratelimit_repeats"]):
        for batch in cfg["ratelimit_batches"]:
            for n in (1, 2):
                try:
                    out["runs"].append(ratelimit_case(cfg, anvil_url, first, last, n, batch, rep, workdir, direct_rows))
                except Exception as e:
                    log(f"ratelimit: {n} sidecar(s), -b {batch} failed: {e}")
                    out.setdefault("failures", []).append(f"{n} sidecar(s), -b {batch}, repeat {rep + 1}: {last_line(e)}")
    anvil.stop()
    out["nodewatch"] = str(NODEWATCH)
    out["loadavg_end"] = loadavg()
    res["ratelimit"] = out


# === main ===================================================================================


def versions():
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, timeout=30)
            return (r.stdout or r.stderr).decode().strip().splitlines()[0]
        except Exception as e:
            return f"unavailable ({e})"
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown")
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True).stdout.decode().strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem, "kernel": platform.release(),
        "nodewatch_commit": git,
        "rustc": first_line(["rustc", "--version"]),
        "anvil": first_line([str(ANVIL), "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "--version"]),
        "ethereumetl": pip_version("ethereum-etl"),
        "perf": first_line(["perf", "--version"]),
        "python": platform.python_version(),
        "exporter": first_line([str(EXPORTER), "--version"]) if EXPORTER.exists() else "not built",
    }


def job_cmds(url, end, workdir, tag):
    """export_traces and export_all for both tools, each as argv with the same flags (batches
    of 100, 5 in flight); outputs under `workdir/<tag>/<tool>-<command>`."""
    cmds = []
    for tool, exe in (("ethereumetl", ETHEREUMETL310), ("nodewatch-export", EXPORTER), (NO_VERIFY, EXPORTER)):
        if not Path(exe).exists():
            continue
        quiet = {"nodewatch-export": ["-q"], NO_VERIFY: ["-q", "--no-verify"]}.get(tool, [])
        name = tool.replace(" --", "-")
        out = workdir / tag / f"{name}-export_traces.csv"
        cmds.append(("export_traces", tool, out, [exe, *quiet, "export_traces", "-s", 0, "-e", end,
                                                  "-b", 100, "-w", 5, "-p", url, "-o", out]))
        out = workdir / tag / f"{name}-export_all"
        cmds.append(("export_all", tool, out, [exe, *quiet, "export_all", "-s", 0, "-e", end,
                                               "-b", (end + 1) // 2, "-B", 100, "-w", 5, "-p", url,
                                               "-o", out]))
    return cmds


def sorted_lines(path):
    """Every line of a file, or of each file under a directory (by relative path), sorted:
    ethereumetl with 5 workers writes rows in completion order."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(f.relative_to(path)) if path.is_dir() else "": sorted(f.read_bytes().splitlines())
            for f in files if ".tmp" not in f.parts}


def section_exporter_jobs(cfg, state, res):
    """export_traces and export_all on anvil (node-bound: anvil serves full blocks at about
    1,200/s) and on the replay upstream recording receipts, traces and code too."""
    workdir = OUT / "export-jobs"
    shutil.rmtree(workdir, ignore_errors=True)
    anvil, anvil_url = start_anvil("anvil-export-jobs", load_state=state)
    end = cfg["export_blocks"] - 1
    runs, notes, failed = [], [], set()
    replay = None
    for upstream in ("anvil", "replay"):
        if upstream == "replay":
            replay, (url,) = start_replay([free_port()], anvil_url, end + 1, end, receipts_and_traces=True)
        else:
            url = anvil_url
        cases = job_cmds(url, end, workdir, upstream)
        for rep in range(cfg["export_repeats"]):
            order = cases[rep % len(cases):] + cases[:rep % len(cases)]
            for command, tool, out, argv in order:
                if (upstream, command, tool) in failed:
                    continue
                if out.is_dir():
                    shutil.rmtree(out)
                out.unlink(missing_ok=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                log(f"exporter jobs ({upstream}): {tool} {command}, repeat {rep + 1}")
                try:
                    secs, rss = timed(argv)
                except RuntimeError as e:
                    # e.g. nodewatch-export verifying against a replay without eth_getBlockByHash
                    failed.add((upstream, command, tool))
                    notes.append(f"{command} ({upstream}): {tool} failed: `{last_line(e)}`"
                                 + (MISSING_BY_HASH if upstream == "replay" and "-32601" in str(e) else ""))
                    log(f"exporter jobs: {tool} {command} failed: {str(e)[-300:]}")
                    continue
                runs.append({"upstream": upstream, "command": command, "tool": tool, "blocks": end + 1,
                             "rep": rep, "secs": secs, "blocks_per_s": (end + 1) / secs, "max_rss_kib": rss})
        for command in ("export_traces", "export_all"):
            outs = {tool: out for c, tool, out, _ in cases if c == command and (upstream, c, tool) not in failed}
            if "ethereumetl" not in outs:
                continue
            ref = sorted_lines(outs["ethereumetl"])
            for tool in ("nodewatch-export", NO_VERIFY):
                if tool in outs:
                    same = sorted_lines(outs[tool]) == ref
                    notes.append(f"{command} ({upstream}): {tool}'s output holds "
                                 + ("the same lines as ethereumetl's" if same else "DIFFERENT lines from ethereumetl's"))
    replay.stop()
    anvil.stop()
    res["exporter_jobs"] = {"runs": runs, "notes": notes, "ethereumetl": str(ETHEREUMETL310),
                            "exporter_found": EXPORTER.exists()}


def pip_version(package):
    try:
        r = subprocess.run([str(TOOLS / "venv/bin/pip"), "show", package], capture_output=True, timeout=60)
        version = re.search(r"^Version: (\S+)", r.stdout.decode(), re.M)
        return f"{package} {version.group(1)}" if version else "unknown"
    except Exception as e:
        return f"unavailable ({e})"


def config(quick):
    return {**base_config(quick), **ratelimit_config(quick)}


def base_config(quick):
    if quick:
        return {"quick": True, "secs": 1, "secs_big": 2, "repeats": 1, "conns": [1, 32],
                "proxy_upstreams": ["anvil", "replay"],
                "failover_secs": 5, "stop_secs": 14, "failover_repeats": 1, "failover_conns": 8,
                "export_blocks": 500, "export_repeats": 1, "export_via_repeats": 1, "ranges": [1000, 10000], "etl_max_range": 1000,
                "range_repeats": 1, "batch_sizes": [1, 100], "upstream_counts": [1, 10],
                "scale_conns": 32, "scale_repeats": 1, "perf_secs": 3,
                "verify_crate_repeats": 1, "verify_repeats": 1, "verify_full_requests": 30,
                "verify_receipt_batches": 30, "verify_block_batches": 1,
                "verify_export_blocks": {"anvil": 15, "replay": 30}, "verify_export_repeats": 1}
    return {"quick": False, "secs": 2, "secs_big": 3, "repeats": 3, "conns": [1, 8, 32, 128],
            "proxy_upstreams": ["anvil", "replay"],
            "failover_secs": 5, "stop_secs": 15, "failover_repeats": 3, "failover_conns": 8,
            "export_blocks": CHAIN_BLOCKS, "export_repeats": 3, "export_via_repeats": 2, "ranges": [1000, 10000, 100000],
            "etl_max_range": 10000, "range_repeats": 1, "batch_sizes": [1, 10, 100, 1000],
            "upstream_counts": [1, 3, 10], "scale_conns": 32, "scale_repeats": 2, "perf_secs": 5,
            # anvil takes ~0.1 s per 150-transaction full block: the request counts keep the
            # section at a few minutes.
            "verify_crate_repeats": 2, "verify_repeats": 2, "verify_full_requests": 60,
            "verify_receipt_batches": 90, "verify_block_batches": 2,
            "verify_export_blocks": {"anvil": 30, "replay": VERIFY_BLOCKS}, "verify_export_repeats": 2}


SECTIONS = ["proxy", "failover", "exporter", "exporter_jobs", "scaling", "profile", "verify", "ratelimit"]
# The sections that run on the benchmark chain (`verify` builds a chain of its own).
ON_CHAIN = {"proxy", "failover", "exporter", "exporter_jobs", "scaling", "profile", "ratelimit"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") not in (None, "", "0"))
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = ap.parse_args()
    for tool in (ANVIL, ETHEREUMETL, NODEWATCH, NWBENCH):
        if not Path(tool).exists():
            sys.exit(f"bench: {tool} is missing (run `make bench`, which builds and installs everything)")
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = config(args.quick)
    results_path = OUT / "results.json"
    only = args.only.split(",")
    # A partial run (--only) updates the sections it ran in the previous results.
    res = json.loads(results_path.read_text()) if set(only) != set(SECTIONS) and results_path.exists() else {}
    res["config"] = cfg
    res["machine"] = versions()
    res["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    res["loadavg_start"] = loadavg()
    t0 = time.time()
    state = None
    if ON_CHAIN & set(only):
        state, built = chain_state()
        res["chain"] = {"blocks": CHAIN_BLOCKS, "txs": CHAIN_TXS, "big_blocks": BIG_BLOCKS, "big_txs": BIG_TXS,
                        "big_block": BIG_BLOCK, "built_now": built}
    timings = res.setdefault("section_secs", {})
    # When and how each section was last measured: a partial run keeps the others' figures.
    measured = res.setdefault("section_runs", {})
    for name in SECTIONS:
        if name in only:
            s0 = time.time()
            load0 = loadavg()
            globals()[f"section_{name}"](cfg, state, res)
            timings[name] = time.time() - s0
            measured[name] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(s0)),
                              "commit": res["machine"]["nodewatch_commit"], "quick": cfg["quick"],
                              "secs": timings[name], "loadavg": [load0, loadavg()]}
            results_path.write_text(json.dumps(res, indent=1))
    res["total_secs"] = time.time() - t0
    res["loadavg_end"] = loadavg()
    results_path.write_text(json.dumps(res, indent=1))
    log(f"done in {res['total_secs']:.0f}s: {results_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
