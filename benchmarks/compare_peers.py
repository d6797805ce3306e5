#!/usr/bin/env python3
"""Side-by-side run of workload 1 on this library (bench_throughput), etcd raft
and canonical raft (the harnesses of ../shared/peers), alternating, on one
pinned core.

For every (nodes, config) and every repetition the three programs run one
after the other (the order rotates each repetition), each under
`/usr/bin/time -v taskset -c CPU ...`; Go also gets GOMAXPROCS=1. Per program
the line of the run with the median entries_per_s is kept, with rss_mb = the
median peak RSS, exactly as ../shared/peers/common/median.py does. Then the
ratios raftpp/etcd and raftpp/canonical of the median entries_per_s are
printed, plus a Markdown table.

usage:
  compare_peers.py --raftpp BUILD/bench_throughput --etcd ETCDBENCH --canonical CANONBENCH
                   [--reps 5] [--cpu 1] [--nodes 3,5] [--n-raftpp 1000000]
                   [--n-etcd 300000] [--n-canonical 1000000] [--out FILE]

Build the peers first, as their run.sh scripts do:
  gcc -O2 -g -Wall -Wextra -o /tmp/canonbench ../shared/peers/canonical/bench.c $(pkg-config --cflags --libs raft)
  (cd ../shared/peers/etcd && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o /tmp/etcdbench main.go)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

MODES = [  # (label, batch, window, multi)
    ("batch=1", 1, 0, False),
    ("batch=64", 64, 0, False),
    ("batch=256", 256, 0, False),
    ("batch=64(multi)", 64, 0, True),
    ("batch=256(multi)", 256, 0, True),
    ("window=1024", 1, 1024, False),
    ("window=1024(multi)", 1, 1024, True),
]


def cmd_for(lib, path, nodes, n, batch, window, multi):
    if lib == "raftpp":
        c = [path, "--nodes", str(nodes), "--entries", str(n)]
        c += ["--window", str(window)] if window else ["--batch", str(batch)]
        if multi:
            c.append("--multi")
    elif lib == "etcd":
        c = [path, "-nodes", str(nodes), "-n", str(n)]
        c += ["-window", str(window)] if window else ["-batch", str(batch)]
        if multi:
            c.append("-multiprop")
    else:
        c = [path, "-N", str(nodes), "-n", str(n)]
        c += ["-w", str(window)] if window else ["-b", str(batch)]
        if multi:
            c.append("-m")
    return c


def run_once(cmd, cpu, env):
    p = subprocess.run(["/usr/bin/time", "-v", "taskset", "-c", str(cpu)] + cmd,
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit("benchmark failed: " + " ".join(cmd))
    line = [l for l in p.stdout.splitlines() if "entries_per_s=" in l][-1]
    eps = float(re.search(r"entries_per_s=([0-9.]+)", line).group(1))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return eps, line, rss_kb


def summarize(runs):
    runs = sorted(runs, key=lambda r: r[0])
    eps, line, _ = runs[len(runs) // 2]
    rss = statistics.median(r[2] for r in runs) / 1024.0
    return eps, "%s rss_mb=%.1f reps=%d eps_min=%.0f eps_max=%.0f" % (line, rss, len(runs), runs[0][0], runs[-1][0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raftpp", required=True)
    ap.add_argument("--etcd", required=True)
    ap.add_argument("--canonical", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--nodes", default="3,5")
    ap.add_argument("--n-raftpp", type=int, default=1000000)
    ap.add_argument("--n-etcd", type=int, default=300000)
    ap.add_argument("--n-canonical", type=int, default=1000000)
    ap.add_argument("--modes", default="", help="comma-separated labels to run (default: all)")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    paths = {"raftpp": a.raftpp, "etcd": a.etcd, "canonical": a.canonical}
    ns = {"raftpp": a.n_raftpp, "etcd": a.n_etcd, "canonical": a.n_canonical}
    libs = ["raftpp", "etcd", "canonical"]
    env = dict(os.environ, GOMAXPROCS="1")
    wanted = set(x for x in a.modes.split(",") if x)
    out = open(a.out, "a") if a.out else None

    def emit(s):
        print(s, flush=True)
        if out:
            out.write(s + "\n")
            out.flush()

    rows = []
    for nodes in [int(x) for x in a.nodes.split(",")]:
        for label, batch, window, multi in MODES:
            if wanted and label not in wanted:
                continue
            runs = {l: [] for l in libs}
            for rep in range(a.reps):
                order = libs[rep % 3:] + libs[:rep % 3]
                for lib in order:
                    cmd = cmd_for(lib, paths[lib], nodes, ns[lib], batch, window, multi)
                    runs[lib].append(run_once(cmd, a.cpu, env))
            med = {}
            for lib in libs:
                eps, line = summarize(runs[lib])
                med[lib] = eps
                emit(line)
            r_e = med["raftpp"] / med["etcd"]
            r_c = med["raftpp"] / med["canonical"]
            emit("ratio %dnodes %s raftpp/etcd=%.2f raftpp/canonical=%.2f" % (nodes, label, r_e, r_c))
            rows.append((nodes, label, med, r_e, r_c))
    emit("")
    emit("| nodes | config | raftpp entries/s | etcd entries/s | canonical entries/s | raftpp/etcd | raftpp/canonical |")
    emit("|---|---|---|---|---|---|---|")
    for nodes, label, med, r_e, r_c in rows:
        emit("| %d | %s | %.0f | %.0f | %.0f | %.2fx | %.2fx |" % (
            nodes, label, med["raftpp"], med["etcd"], med["canonical"], r_e, r_c))


if __name__ == "__main__":
    main()
