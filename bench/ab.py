"""A/B of nodewatch binaries: CPU per 10k requests, req/s, p99 and RSS of each binary (and of
nginx beside them) against the in-memory replay upstream (`AB_UPSTREAM=anvil`: against anvil
itself), at 32 connections, the binaries taking turns in every repeat so a busier moment of
the machine hits all of them.

    /usr/bin/python3 bench/ab.py SECS REPEATS NAME=BINARY[:ENV=VALUE,...] ...

e.g. `bench/ab.py 3 3 before=/tmp/nodewatch-before after=target/release/nodewatch` or
`after1=target/release/nodewatch:NODEWATCH__PROXY__THREADS=1`. Needs what `make bench` builds
(anvil, the chain state, nwbench, nginx, wrk). For a change's effect only: BENCHMARKS.md's
figures come from `make bench`."""
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402

CONNS = 32


def variants(args):
    out = []
    for a in args:
        name, _, rest = a.partition("=")
        binary, _, envs = rest.partition(":")
        if not name or not Path(binary).exists():
            sys.exit(f"ab: {a!r}: expected NAME=BINARY[:ENV=VALUE,...] with an existing binary")
        out.append((name, binary, dict(e.split("=", 1) for e in envs.split(",") if e)))
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    secs, repeats = int(sys.argv[1]), int(sys.argv[2])
    wanted = variants(sys.argv[3:])
    state, _ = B.chain_state()
    anvil, anvil_url = B.start_anvil("anvil-ab", load_state=state)
    if os.environ.get("AB_UPSTREAM", "replay") == "anvil":
        node, node_url = anvil, anvil_url
    else:
        node, (node_url,) = B.start_replay([B.free_port()], anvil_url, 200, 10_000_000,
                                           threads=1, also=[B.BIG_BLOCK])
        anvil.stop()
    shapes = {
        "eth_blockNumber": B.write_body("blockNumber", {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}),
        "getBlock_full": B.write_body("getBlock_full", {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(B.BIG_BLOCK), True]}),
        "batch100": B.write_body("batch100", B.batch_body(100)),
    }
    procs = {"nginx": B.start_nginx(node_url)}
    for name, binary, env in wanted:
        B.NODEWATCH = binary
        procs[name] = B.start_nodewatch(f"nodewatch-ab-{name}", [node_url], extra_env=env)
    runs = {}
    for shape, body in shapes.items():
        for _ in range(repeats):
            for name, (p, url) in procs.items():
                s = B.wrk(url, body, CONNS, secs, [node, p])
                runs.setdefault((shape, name), []).append(
                    (s["rps"], s["cpu_s"][p.name] / s["requests"] * 1e4, s["lat_us"]["p99"], s["rss_kib"][p.name] / 1024))
    print(f"{'shape':16} {'binary':10} {'req/s':>8} {'CPU s/10k':>10} {'(spread)':>13} {'p99 us':>8} {'RSS MiB':>8}")
    for shape in shapes:
        for name in procs:
            rows = runs[(shape, name)]
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            cpu = [r[1] for r in rows]
            print(f"{shape:16} {name:10} {med[0]:8.0f} {med[1]:10.3f} {min(cpu):6.3f}-{max(cpu):.3f} {med[2]:8.0f} {med[3]:8.1f}")
    for p, _ in procs.values():
        p.stop()
    node.stop()


if __name__ == "__main__":
    main()
