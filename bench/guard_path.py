"""The policy guard alone, in process: its time around one order and one read, and how many thread hops it makes.

No exchange, no stdio, no FastMCP: PolicyGuard.wrap() around a tool that returns at once, with a price source
that answers from memory, a policy file on disk (so the hot-reload check runs, as in the server) and a fresh state
dir. This is the guard's share of call_overhead.py's per-call time, without that harness's noise (two processes
and a pipe per call).

  order   binance_spot_place_order LIMIT BUY 0.001 BTCUSDT @ 60000 under `default: allow` plus
          binance_spot_place_order.limits.max_notional_usd: 1000 (call_overhead.py's order policy)
  read    binance_spot_price BTCUSDT under the same policy

Also counted: loop.run_in_executor calls per guarded call ("hops": since 604d816 the state store, the audit writes
and file stats run in worker threads), and for each hop its work in the thread and its whole time seen from the
event loop (the difference is handing the call to a thread and back).

    /work/main/.venv/bin/python bench/guard_path.py [--quick] [--n N] [--old DIR [--workers W]]

--old DIR measures the checkout DIR the same way, in worker processes that alternate with the code measured (this
script again, with BENCH_TREE set), so both meet the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import CODE, bench_env, machine, median, old_tree, pct, table, temp_dir, tree_state
from pydantic import BaseModel

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000",
         "timeInForce": "GTC"}
POLICY = ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    action: allow\n    limits:\n"
          "      max_notional_usd: 1000\n")


class MemoryPrices:
    async def spot_book_top(self, symbol):
        return Decimal("96999.99"), Decimal("97000.01")

    async def spot_price(self, symbol):
        return Decimal("97000")

    async def quote_asset(self, market, symbol):
        return "USDT"


class Placed(BaseModel):
    order_id: int = 1


async def measure(n: int, tmp: Path) -> dict:
    from binance_mcp.catalog import BY_NAME
    from binance_mcp.policy.guard import PolicyGuard
    from binance_mcp.policy.loader import load_file
    from binance_mcp.tools.market import PriceArgs
    from binance_mcp.tools.spot import SpotOrderArgs

    pol = tmp / "policy.yaml"
    pol.write_text(POLICY)
    guard = PolicyGuard(load_file(pol), tmp / "state", MemoryPrices(), policy_path=pol)

    async def noop(args):
        return Placed()

    calls = {"order": (guard.wrap(BY_NAME["binance_spot_place_order"], None, noop), SpotOrderArgs.model_validate(ORDER)),
             "read": (guard.wrap(BY_NAME["binance_spot_price"], None, noop), PriceArgs.model_validate({"symbol": "BTCUSDT"}))}
    loop = asyncio.get_running_loop()
    orig = loop.run_in_executor
    hops: dict[str, list] = {}
    current = [""]

    def counted(executor, fn, *args):
        name = getattr(fn, "__qualname__", repr(fn)).replace(".<locals>.<lambda>", "")
        if args:
            name += f"({getattr(args[0], '__qualname__', type(args[0]).__name__)})"
        key = f"{current[0]}: {name}"

        def work(*a):
            t = time.perf_counter()
            try:
                return fn(*a)
            finally:
                hops.setdefault(key, [[], []])[0].append((time.perf_counter() - t) * 1e6)

        t0 = time.perf_counter()
        fut = orig(executor, work, *args)
        fut.add_done_callback(lambda f: hops.setdefault(key, [[], []])[1].append((time.perf_counter() - t0) * 1e6))
        return fut

    loop.run_in_executor = counted
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(50):  # warm-up: the state db, the worker threads, the audit file
        for wrapped, args in calls.values():
            await wrapped(args)
    hops.clear()
    for i in range(n):
        for kind in (("order", "read") if i % 2 == 0 else ("read", "order")):
            wrapped, args = calls[kind]
            current[0] = kind
            t = time.perf_counter()
            await wrapped(args)
            samples[kind].append((time.perf_counter() - t) * 1e6)
    loop.run_in_executor = orig
    await asyncio.get_running_loop().run_in_executor(None, guard.close)
    return {"samples": samples, "hops": hops}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 calls of each kind instead of 3,000")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--old", metavar="DIR", default=None, help="also measure the checkout DIR (the code before)")
    ap.add_argument("--workers", type=int, default=6, help="with --old: worker processes per tree (6)")
    ap.add_argument("--worker", metavar="FILE", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n or (500 if args.quick else 3000)
    if args.worker:
        out = asyncio.run(measure(n, temp_dir("bench-guard-")))
        Path(args.worker).write_text(json.dumps(out))
        return 0
    old = old_tree(args.old)
    trees = {"new": CODE} | ({"old": old} if old else {})
    workers = args.workers if old else 1
    tmp = temp_dir("bench-guard-parent-")
    res = {name: {"samples": {"order": [], "read": []}, "hops": {}, "p50s": {"order": [], "read": []}} for name in trees}
    for i in range(workers):
        names = list(trees) if i % 2 == 0 else list(trees)[::-1]
        for name in names:
            f = tmp / f"{name}-{i}.json"
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(f), "--n", str(n // workers)],
                           env=bench_env(trees[name]), check=True)
            got = json.loads(f.read_text())
            for kind, s in got["samples"].items():
                res[name]["samples"][kind] += s
                res[name]["p50s"][kind].append(median(s))
            for key, (work, total) in got["hops"].items():
                h = res[name]["hops"].setdefault(key, [[], []])
                h[0] += work
                h[1] += total
    print(f"guard_path  {machine()}")
    if old:
        print(f"old: {tree_state(old)} at {old}")
    print(f"{n} calls of each kind per tree ({workers} worker process(es) per tree, alternating); microseconds\n")
    rows = []
    for kind in ("order", "read"):
        for name in trees:
            s = res[name]["samples"][kind]
            nh = sum(len(w) for k, (w, _) in res[name]["hops"].items() if k.startswith(kind + ":")) / len(s)
            rows.append([f"{kind} ({name})", median(s), pct(s, 10), pct(s, 90), pct(s, 99), nh, len(s),
                         " ".join(f"{v:.0f}" for v in res[name]["p50s"][kind])])
    print(table(["guarded call", "median us", "p10", "p90", "p99", "thread hops / call", "n",
                 "median per worker"], rows))
    if old:
        for kind in ("order", "read"):
            a, b = median(res["new"]["samples"][kind]), median(res["old"]["samples"][kind])
            print(f"{kind}: new - old = {a - b:+.0f} us per call (new / old = {a / b:.2f})")
    for name in trees:
        hops = res[name]["hops"]
        if not hops:
            continue
        print(f"\nthread hops of {name} (work = in the thread; whole = seen from the event loop, until its callback ran)")
        print(table(["kind: function in the thread", "n per call", "work median us", "whole median us", "hand-off us"],
                    [[k, len(w) / len(res[name]["samples"][k.split(":")[0]]), median(w), median(t),
                      median(t) - median(w)] for k, (w, t) in sorted(hops.items())]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
