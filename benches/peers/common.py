"""Shared helpers of the peer benchmarks (PyTorch, JAX): the command line, the timing
loop (warm-up, then the median/min/max of timed repetitions, as `kiln bench`), the case
names and byte counts shared with `kiln bench`, and the JSON result format.

The result JSON mirrors `kiln bench --json`: {"results": [...], "machine": {...}} where
each result has `suite` and `name` exactly as kiln names the same case (so the two can
be joined), `peer` (e.g. "torch-eager", "jax-jit"), `median_ms`, `min_ms`, `max_ms`,
`reps`, `bytes_per_step` (kiln's minimal bytes where that applies), `gbps` and
`compile_ms` (first call minus a steady-state call: tracing + compilation).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

OPTIMIZERS = ("sgd", "adam", "vsgd")
# Minimal bytes per element of one optimizer step (kiln_benches::minimal_bytes): every
# tensor read once, every updated tensor written once, fp32.
BYTES_PER_ELEMENT = {"sgd": 12, "adam": 28, "vsgd": 36}
MLP = (784, 256, 256, 10)
XENT_CLASSES = 1000
# The 20 ops of kiln's chain20 (benches/src/fusion.rs): a(dd) m(ul) s(ub) (ma)x (mi)n
# with b, - neg, | abs; a <- chain(a, b).
CHAIN = "amsx-na|snma-xsm|anm"
SUITES = ("optim", "step", "fusion")


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--suite", default="all", help="optim, step, fusion or all (default all)")
    p.add_argument("--optim", default=",".join(OPTIMIZERS), help="comma-separated: sgd,adam,vsgd")
    p.add_argument("--size", type=int, default=1 << 24, help="elements of the optimizer step / chain")
    p.add_argument("--batch", type=int, default=128, help="MLP batch")
    p.add_argument("--xent-rows", type=int, default=4096, help="rows of the [rows, 1000] cross-entropy")
    p.add_argument("--reps", type=int, default=20, help="timed repetitions per case")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile / only eager")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()
    if a.suite not in SUITES + ("all",):
        p.error(f"unknown suite {a.suite!r}; valid: optim, step, fusion, all")
    a.optim = [o for o in a.optim.split(",") if o]
    for o in a.optim:
        if o not in OPTIMIZERS:
            p.error(f"unknown optimizer {o!r}; the peers implement {', '.join(OPTIMIZERS)}")
    if a.reps < 1:
        p.error("--reps must be at least 1")
    a.warmup = min(max(a.reps // 5, 2), 10)
    return a


def wants(args, suite):
    return args.suite in (suite, "all")


def time_fn(fn, warmup, reps, sync=lambda r: r):
    """Call fn() once cold (timed as the compile), `warmup` times untimed, then `reps`
    times timed. `sync` blocks until a result is ready (JAX is asynchronous)."""
    t = time.perf_counter()
    sync(fn())
    first_ms = (time.perf_counter() - t) * 1e3
    for _ in range(warmup):
        sync(fn())
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        sync(fn())
        ms.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(ms)
    return {
        "median_ms": med,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "reps": reps,
        "compile_ms": max(first_ms - med, 0.0),
    }


def result(suite, name, peer, timing, bytes_per_step=0, **extra):
    r = {"suite": suite, "name": name, "peer": peer, "bytes_per_step": bytes_per_step}
    r.update(timing)
    ms = timing["median_ms"]
    r["gbps"] = bytes_per_step / (ms * 1e-3) / 1e9 if ms > 0 else 0.0
    r.update(extra)
    line = f"  {peer:<16} {name:<28} {ms:10.3f} ms (min {timing['min_ms']:.3f}, max {timing['max_ms']:.3f})"
    if bytes_per_step:
        line += f" {r['gbps']:7.2f} GB/s"
    print(line, file=sys.stderr, flush=True)
    return r


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = []
    return {"cpu": cpu, "threads": os.cpu_count(), "os": sys.platform, "arch": platform.machine(),
            "python": platform.python_version(), "loadavg": load}


def write(args, results, peers, notes):
    doc = {"results": results, "machine": machine(), "peers": peers, "notes": notes}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return doc


def missing(args, what, hint):
    """A peer library is not importable: say so plainly, write an empty result, exit 0."""
    msg = f"{what} is not installed, so its peer benchmarks are skipped ({hint})"
    print(msg, file=sys.stderr)
    write(args, [], {}, [msg])
    sys.exit(0)


def labels(rows, classes):
    return [i % classes for i in range(rows)]
