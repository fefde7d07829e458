"""Latency of a read next to orders: does a trading call's guard work (SQLite, fsync) stall the reads beside it?

One `python -m binance_mcp serve` in paper mode (its embedded simulator, BINANCE_MCP_PAPER_TICK_SECONDS=0) and one
MCP session over stdio (fastmcp `Client`, `StdioTransport`, `mode="legacy"`), as a real client has. The policy is
`default: allow` plus a daily cap and an open-orders limit on the order tool, so every order gathers a fact (GET
/api/v3/openOrders), reads and reserves its notional in the state database (BEGIN IMMEDIATE), and fsyncs its
"sending" audit record:

    version: 1
    default: allow
    tools: {binance_spot_place_order: {limits: {daily_notional_usd: 100000000, max_open_orders: 100000}}}

Timed, in the client: one `call_tool("binance_spot_price", {"symbol": "BTCUSDT"})` (the read), in four conditions.
Only the read is timed. The background calls are started just before it, and the read is sent only once all of
them have been written to the server's stdin (counted on the mcp client's dispatcher: every request handed to the
stdio writer task, and that task idle again), and none has finished, so they are really in flight when the read
goes out:

  A  alone: nothing else in flight.
  B  next to reads: 5 other reads in flight on the same session (3 x binance_spot_price BTCUSDT, 2 x
     binance_spot_orderbook BTCUSDT limit 5).
  C  next to orders: 5 binance_spot_place_order in flight on the same session (LIMIT BUY 0.001 BTCUSDT @ 30000
     GTC: far under the market, so they rest; the simulator's floor is 0.2 x the price). The simulator is reset
     after the round (/_sim/reset, untimed), which removes the resting orders.
  D  next to a locked state database: ANOTHER PROCESS holds the write lock of <state_dir>/state.db (sqlite3,
     BEGIN IMMEDIATE, held --hold seconds), one order call is sent and waits for that lock (the simulator has
     answered its GET /api/v3/openOrders, and 20 ms more have passed), then the read is sent. If the guard's SQLite
     work runs on the event loop, the read waits until the lock is released (the state store's busy timeout is
     2 s); if not, it takes about as long as in A. "lock left" = how long the lock was still held after the read
     was sent (both clocks: CLOCK_MONOTONIC).

Interleaved: every round runs A, B, C once each (and D in every --d-every-th round), in an order that rotates
from round to round, so drift and other load hit every condition alike. Warm-up first (time sync, caches, the
state database, one D), untimed. The simulator's rate limits are lifted through /_sim/limits after every reset.

Targets (ratios, since absolute times drift on a shared machine):
  p99(C) / p99(B) <= 1.5   a read next to orders has a tail like a read next to reads
  p50(C) / p50(A)          informative: what 5 orders in flight cost a read at the median
  p50(D) / p50(A)          informative, should be near 1: a read does not wait for the state database's lock

    PYTHONPATH=. /work/main/.venv/bin/python bench/reads_next_to_orders.py [--quick] [--rounds R] [--d-every K] [--hold S]
                                                                           [--no-fsync] [--old DIR]

--quick: 60 rounds, D every 10th (60 samples of A, B, C; 6 of D), about 20 s. Full: 800 rounds, D every 25th
(800 samples of A, B, C; 32 of D), 2.5-4.5 minutes on 2 cores (the longer at load 6). The server imports the tree this script is in
(its directory's parent is put first on its PYTHONPATH; BENCH_TREE names another one); the output names it.
BENCH_SOURCE replaces the git line (see _common.git_state). --no-fsync (an ablation, informative): the server is
bench/ours_variant.py --no-fsync. --old DIR (before / after under the same load): a second server runs DIR's
code, with its own session, paper exchange and state dir; every round runs its conditions on both servers, the
first of the two alternating from round to round. About twice as long.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import REPO, bench_env, machine, median, old_tree, pct, table, temp_dir, tree_state, verdict
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

TARGET_C_OVER_B_P99 = 1.5
SYMBOL = "BTCUSDT"
READ = ("binance_spot_price", {"symbol": SYMBOL})
BACKGROUND_READS = [("binance_spot_price", {"symbol": SYMBOL}), ("binance_spot_orderbook", {"symbol": SYMBOL, "limit": 5}),
                    ("binance_spot_price", {"symbol": SYMBOL}), ("binance_spot_orderbook", {"symbol": SYMBOL, "limit": 5}),
                    ("binance_spot_price", {"symbol": SYMBOL})]
ORDER = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "30000", "timeInForce": "GTC"}
N_BACKGROUND = 5
POLICY = ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    limits:\n"
          "      daily_notional_usd: 100000000\n      max_open_orders: 100000\n")
NO_LIMITS = {"spot_weight_per_minute": 10**9, "futures_weight_per_minute": 10**9, "spot_orders_per_10s": 10**9,
             "spot_orders_per_day": 10**9, "futures_orders_per_10s": 10**9, "futures_orders_per_minute": 10**9,
             "reset_counters": True}
# The other process of condition D: one sqlite3 connection to the state database; per line on stdin (seconds to
# hold), BEGIN IMMEDIATE, report, hold, ROLLBACK, report. Times are time.monotonic(): CLOCK_MONOTONIC, as ours.
LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
print("ready", flush=True)
for line in sys.stdin:
    hold = float(line)
    db.execute("BEGIN IMMEDIATE")
    t0 = time.monotonic()
    print("locked", t0, flush=True)
    time.sleep(max(0.0, t0 + hold - time.monotonic()))
    db.execute("ROLLBACK")
    print("released", time.monotonic(), flush=True)
"""


class Sim:
    """The server's embedded simulator, reached through its /_sim/ controls (host from binance_account_status)."""

    def __init__(self, host: str) -> None:
        assert host.startswith("127.0.0.1:"), host
        self.base = f"http://{host}"

    def _call(self, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}/_sim/{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
            return json.loads(resp.read())

    async def call(self, path: str, body: dict | None = None) -> object:
        return await asyncio.to_thread(self._call, path, body)

    async def fresh(self) -> None:
        """Start balances and prices, no open orders, rate limits lifted (reset restores the default limits)."""
        await self.call("reset", {})
        await self.call("limits", NO_LIMITS)


class Wire:
    """Counts the messages the mcp client has handed to its stdio writer task, to know what is in flight.

    Wraps the mcp dispatcher's ``_write`` (private: its write stream to the stdio writer has no buffer, so a write
    returns once the writer took the message). ``until(n)`` yields to the loop until ``n`` messages were written and
    the writer is idle again, i.e. has put the last one on the server's stdin. Without that internal (another mcp
    version) it takes 50 plain yields and ``verified`` is False (printed in the output)."""

    def __init__(self, client: Client) -> None:
        d = getattr(client.session, "_dispatcher", None)
        self.stream = getattr(d, "_write_stream", None)
        self.written = 0
        orig = getattr(d, "_write", None)
        self.verified = orig is not None and hasattr(self.stream, "statistics")
        if self.verified:
            async def write(message, metadata=None):
                await orig(message, metadata)
                self.written += 1

            d._write = write

    async def until(self, n: int) -> int:
        """The yields taken until ``n`` messages are on the server's stdin."""
        if not self.verified:
            for _ in range(50):
                await asyncio.sleep(0)
            return -1
        for k in range(1, 10_000):
            await asyncio.sleep(0)
            st = self.stream.statistics()
            if self.written >= n and st.tasks_waiting_send == 0 and st.tasks_waiting_receive >= 1:
                return k
        raise RuntimeError(f"{n} messages not written after 10,000 yields ({self.written}; {self.stream.statistics()})")


def check(result, name: str) -> None:
    if result.is_error:
        text = result.content[0].text if result.content else result
        raise RuntimeError(f"{name} failed: {text}")


class Bench:
    def __init__(self, client: Client, sim: Sim, state_db: Path, hold: float) -> None:
        self.client = client
        self.wire = Wire(client)
        self.sim = sim
        self.state_db = state_db
        self.hold = hold
        self.locker: asyncio.subprocess.Process | None = None
        self.samples: dict[str, list[float]] = {k: [] for k in "ABCD"}
        self.info: dict[str, list[float]] = {}  # diagnostics per condition
        self.d_error = ""  # the first error of an order in D, if any

    def note(self, key: str, value: float) -> None:
        self.info.setdefault(key, []).append(value)

    async def read(self) -> float:
        t = time.perf_counter()
        r = await self.client.call_tool(*READ)
        dt = (time.perf_counter() - t) * 1000
        assert r.structured_content["prices"][0]["symbol"] == SYMBOL, r.structured_content
        return dt

    async def background(self, name: str, args: dict) -> float:
        t = time.perf_counter()
        r = await self.client.call_tool_mcp(name, args)  # no fastmcp-side parsing: less client work beside the read
        dt = (time.perf_counter() - t) * 1000
        check(r, name)
        return dt

    async def next_to(self, kind: str, calls: list[tuple[str, dict]]) -> float:
        base = self.wire.written
        tasks = [asyncio.create_task(self.background(n, a)) for n, a in calls]
        yields = await self.wire.until(base + len(calls))
        assert not any(t.done() for t in tasks), "a background call finished before the read was sent"
        dt = await self.read()
        self.note(f"{kind}:unfinished", sum(not t.done() for t in tasks))
        self.note(f"{kind}:yields", yields)
        for bg in await asyncio.gather(*tasks):
            self.note(f"{kind}:bg_ms", bg)
        return dt

    async def cond_a(self) -> float:
        return await self.read()

    async def cond_b(self) -> float:
        return await self.next_to("B", BACKGROUND_READS)

    async def cond_c(self) -> float:
        try:
            return await self.next_to("C", [("binance_spot_place_order", ORDER)] * N_BACKGROUND)
        finally:
            await self.sim.fresh()

    async def start_locker(self) -> None:
        self.locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(self.state_db), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        assert (await self.locker.stdout.readline()).split() == [b"ready"]

    async def stop_locker(self) -> None:
        if self.locker is not None and self.locker.returncode is None:
            self.locker.stdin.close()
            await self.locker.wait()

    async def cond_d(self) -> float:
        assert self.locker is not None
        seq = (await self.sim.call("state"))["last_seq"]
        self.locker.stdin.write(f"{self.hold}\n".encode())
        await self.locker.stdin.drain()
        word, t_locked = (await self.locker.stdout.readline()).split()
        assert word == b"locked"
        t0 = time.perf_counter()
        base = self.wire.written
        order = asyncio.create_task(self.client.call_tool_mcp("binance_spot_place_order", ORDER))
        await self.wire.until(base + 1)
        # The order has its fact (the simulator logs a request as it answers it) and goes on to the state database.
        for _ in range(200):
            log = await self.sim.call(f"requests?since={seq}")
            paths = [(e["method"], e["path"]) for e in log]
            if ("GET", "/api/v3/openOrders") in paths:
                break
            await asyncio.sleep(0.005)
        else:
            raise RuntimeError(f"the order's GET /api/v3/openOrders did not come within 1 s: {paths}")
        await asyncio.sleep(0.02)
        sent_order = any(e["path"] == "/api/v3/order" and e["method"] == "POST"
                         for e in await self.sim.call(f"requests?since={seq}"))
        # Not asserted, counted: a guard that answers "locked" at once (or sends before it reserves) changes these.
        self.note("D:order_waiting_at_send", float(not order.done() and not sent_order))
        t_send = time.monotonic()
        dt = await self.read()
        self.note("D:order_done_before_read", float(order.done()))
        r = await order
        self.note("D:order_ms", (time.perf_counter() - t0) * 1000)
        self.note("D:order_ok", float(not r.is_error))
        if r.is_error and not self.d_error:
            self.d_error = r.content[0].text if r.content else str(r)
        word, t_released = (await self.locker.stdout.readline()).split()
        assert word == b"released"
        self.note("D:lock_left_ms", (float(t_released) - t_send) * 1000)
        self.note("D:locked_before_read_ms", (t_send - float(t_locked)) * 1000)
        await self.sim.fresh()
        return dt


async def start(stack: contextlib.AsyncExitStack, tmp: Path, name: str, tree: Path, no_fsync: bool
                ) -> tuple[Bench, dict]:
    """One paper-mode server running ``tree``'s code, its session, and a Bench on it."""
    pol = tmp / f"policy-{name}.yaml"
    pol.write_text(POLICY)
    state = tmp / f"state-{name}"
    # The server imports ``tree`` (first on its PYTHONPATH), even where an editable install points elsewhere.
    env = bench_env(tree, BINANCE_MCP_STATE_DIR=str(state), BINANCE_MCP_PAPER_TICK_SECONDS="0",
                    BINANCE_MCP_POLICY=str(pol))
    meta: dict = {"server_code": subprocess.run(
        [sys.executable, "-c", "import binance_mcp; print(binance_mcp.__file__)"], env=env, cwd=str(tmp),
        capture_output=True, text=True, check=True).stdout.strip(), "tree": tree}
    args = [str(REPO / "bench" / "ours_variant.py"), "--no-fsync"] if no_fsync else ["-m", "binance_mcp", "serve"]
    client = Client(StdioTransport(command=sys.executable, args=args, env=env, cwd=str(tmp),
                                   keep_alive=False, log_file=tmp / f"server-{name}.stderr.log"), mode="legacy")
    await stack.enter_async_context(client)
    await client.list_tools()  # what a real client does first (and fastmcp needs the output schemas)
    status = (await client.call_tool("binance_account_status", {})).structured_content
    assert status["connected"] and status["exchange"] == "paper", status
    sim = Sim(status["host"])
    await sim.fresh()
    return Bench(client, sim, state / "state.db", 0.0), meta


async def run(rounds: int, d_every: int, hold: float, warmup: int, no_fsync: bool, old: Path | None
              ) -> tuple[dict[str, Bench], dict]:
    """Every round runs A, B, C (and D every d_every-th round) on each server; with ``old``, the two servers take
    turns within the round (the first one alternates), so both meet the same load."""
    tmp = temp_dir("bench-reads-orders-")
    trees = {"new": _common.CODE} | ({"old": old} if old is not None else {})
    benches: dict[str, Bench] = {}
    meta: dict = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, tree in trees.items():
            benches[name], meta[name] = await start(stack, tmp, name, tree, no_fsync)
            benches[name].hold = hold
        t = time.perf_counter()
        for bench in benches.values():
            conds = {"A": bench.cond_a, "B": bench.cond_b, "C": bench.cond_c}
            for _ in range(warmup):  # time sync, exchangeInfo, the state database, imports on first use
                for k in "ABC":
                    await conds[k]()
            assert bench.state_db.exists(), bench.state_db
            await bench.start_locker()
            stack.push_async_callback(bench.stop_locker)
            await bench.cond_d()
            bench.info.clear()
            for k in bench.samples:
                bench.samples[k].clear()
        meta["warmup_s"] = time.perf_counter() - t
        t = time.perf_counter()
        names = list(benches)
        for r in range(rounds):
            kinds = ["A", "B", "C"] + (["D"] if r % d_every == d_every - 1 else [])
            k0 = r % len(kinds)
            for name in (names if r % 2 == 0 else names[::-1]):
                bench = benches[name]
                conds = {"A": bench.cond_a, "B": bench.cond_b, "C": bench.cond_c, "D": bench.cond_d}
                for k in kinds[k0:] + kinds[:k0]:
                    bench.samples[k].append(await conds[k]())
        meta["measure_s"] = time.perf_counter() - t
    return benches, meta


LABEL = {"A": "A alone", "B": f"B next to {N_BACKGROUND} reads", "C": f"C next to {N_BACKGROUND} orders",
         "D": "D next to a locked state db + 1 order"}


def report(bench: Bench) -> dict[str, float]:
    """The tables and diagnostics of one server; returns its ratios."""
    s, info = bench.samples, bench.info
    p50 = {k: median(v) for k, v in s.items()}
    p99 = {k: pct(v, 99) for k, v in s.items()}
    rows = [[LABEL[k], p50[k], pct(v, 90), p99[k], max(v) if v else float("nan"), len(v)] for k, v in s.items()]
    print(table(["condition", "p50 ms", "p90", "p99", "max", "n"], rows))
    print("background calls on the server's stdin before each read was sent: " +
          ("verified (mcp dispatcher write count)" if bench.wire.verified else
           "NOT verified (the mcp client's internals changed: 50 plain loop yields instead)"))
    if len(s["D"]) < 100:
        print(f"(D has {len(s['D'])} samples: its p99 is close to its maximum)")
    print("\nBackground calls (B, C): their own latency, and how many were still unfinished when the read returned")
    for k in "BC":
        bg = info.get(f"{k}:bg_ms", [])
        print(f"  {k}: background p50 {median(bg):.2f} ms, p99 {pct(bg, 99):.2f} ms; unfinished at the read's end: "
              f"mean {sum(info[f'{k}:unfinished']) / len(info[f'{k}:unfinished']):.2f} of {N_BACKGROUND}; "
              f"loop yields until all were on the server's stdin: median {median(info[f'{k}:yields']):.0f}")
    if s["D"]:
        n_d = len(s["D"])
        print(f"  D: the lock was taken {median(info['D:locked_before_read_ms']):.0f} ms (median) before the read was "
              f"sent and still held for {median(info['D:lock_left_ms']):.0f} ms (median; min "
              f"{min(info['D:lock_left_ms']):.0f}) after it. The order: still waiting (not done, nothing sent) when "
              f"the read was sent in {sum(info['D:order_waiting_at_send']):.0f} of {n_d} rounds; done before the read "
              f"returned in {sum(info['D:order_done_before_read']):.0f} of {n_d}; succeeded in "
              f"{sum(info['D:order_ok']):.0f} of {n_d}; took {median(info['D:order_ms']):.0f} ms (median)")
        if bench.d_error:
            print(f"     first order error in D: {bench.d_error[:300]}")
    c_b = p99["C"] / p99["B"]
    print(f"\np99(C) / p99(B) = {c_b:.2f}  -> target <= {TARGET_C_OVER_B_P99}: {verdict(c_b <= TARGET_C_OVER_B_P99)}")
    print(f"p50(C) / p50(A) = {p50['C'] / p50['A']:.2f}  (informative: what {N_BACKGROUND} orders in flight cost a "
          f"read at the median; p50(B) / p50(A) = {p50['B'] / p50['A']:.2f}, p99(B) / p99(A) = "
          f"{p99['B'] / p99['A']:.2f})")
    out = {"C/B p99": c_b, "C/A p50": p50["C"] / p50["A"], "B/A p50": p50["B"] / p50["A"], "A p50": p50["A"],
           "A p99": p99["A"], "B p99": p99["B"], "C p99": p99["C"]}
    if s["D"]:
        print(f"p50(D) / p50(A) = {p50['D'] / p50['A']:.2f}  (should be near 1: a read need not wait for the state "
              f"database's lock; {p50['D']:.1f} ms against the {median(info['D:lock_left_ms']):.0f} ms the lock was "
              f"still held)")
        out["D/A p50"] = p50["D"] / p50["A"]
        out["D p50"] = p50["D"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 rounds, D every 10th, instead of 800 and every 25th")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--d-every", type=int, default=None, help="condition D in every K-th round (each takes --hold s)")
    ap.add_argument("--hold", type=float, default=1.0, help="seconds the other process holds the lock in D (1.0)")
    ap.add_argument("--no-fsync", action="store_true", help="ablation: the server is bench/ours_variant.py --no-fsync "
                    "(audit records written and flushed, never fsynced)")
    ap.add_argument("--old", metavar="DIR", default=None,
                    help="a second server with DIR's code (the code before a change), its own session and paper "
                         "exchange; every round runs on both, in alternating order")
    args = ap.parse_args()
    old = old_tree(args.old)
    rounds = args.rounds or (60 if args.quick else 800)
    d_every = args.d_every or (10 if args.quick else 25)
    t0 = time.perf_counter()
    benches, meta = asyncio.run(run(rounds, d_every, args.hold, 5 if args.quick else 20, args.no_fsync, old))
    print(f"reads_next_to_orders  {machine()}")
    print(f"{rounds} interleaved rounds (A, B, C each round, rotating; D every {d_every}th round, lock held "
          f"{args.hold:g} s); {'two paper-mode servers (new, old), each' if old else 'one paper-mode server,'} one "
          f"stdio session; the timed call is binance_spot_price {SYMBOL}, in ms, measured in the client (wall "
          f"{time.perf_counter() - t0:.0f} s: warm-up {meta['warmup_s']:.0f} s, measured rounds {meta['measure_s']:.0f} s)")
    server = "bench/ours_variant.py --no-fsync (ABLATION: no audit fsync)" if args.no_fsync else \
        "python -m binance_mcp serve"
    ratios = {}
    for name, bench in benches.items():
        m = meta[name]
        head = f"{name}: {tree_state(m['tree'])}, " if old else ""
        print(f"\n=== {head}server: {server}, paper mode, code from {Path(m['server_code']).parent}\n")
        ratios[name] = report(bench)
    if old:
        print("\nnew vs old, same rounds:")
        for key in ratios["new"]:
            print(f"  {key:8}  new {ratios['new'][key]:8.2f}  old {ratios['old'][key]:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
