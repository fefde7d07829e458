"""The state store on PostgreSQL vs SQLite: decision latency and a trading call's round trip, interleaved.

1. The store alone (decision latency): per order, ``StateStore.commit`` with an in-flight entry under two daily
   caps (the write transaction that decides and reserves), then ``settle`` (the answer), on a SQLite file in a temp
   dir (WAL, synchronous=NORMAL, as the guard opens it) and on a PostgreSQL database on 127.0.0.1 (a throwaway
   cluster started by tests/pgserver.py, fsync ON, synchronous_commit on: PostgreSQL's defaults). Kinds alternate
   in rounds; each call timed on its own.
2. A trading call's round trip: ``binance_spot_place_order`` (a MARKET BUY, under a tool and an account daily
   cap) through a whole server built by ``build_server`` with fastmcp's in-memory client, on the one simulator, one
   server per backend; calls alternate between the two. In memory, without stdio's JSON-RPC framing, a call is
   shorter than over stdio, so the ratio here is an upper bound of the stdio one. Target: PostgreSQL at most 1.3x.

    /work/venv/bin/python bench/state_backends.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from decimal import Decimal

import _common  # noqa: F401 - puts the repository on sys.path
from _common import SimBench, machine, median, pct, table, temp_dir, verdict

from binance_mcp.policy.state import Pending, StateStore
from tests import pgserver

TARGET = 1.3
POLICY = """\
version: 1
default: allow
account:
  daily_notional_usd: 100000000
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 100000000}
"""


class Decided:
    allowed = True


def store_round(store: StateStore, n: int, i: int) -> tuple[list[float], list[float]]:
    commits, settles = [], []
    caps = {"tool:x": Decimal(10**9), "account": Decimal(10**9)}
    for j in range(n):
        cid = f"c{i}-{j}"
        entry = Pending(cid, "binance_spot_place_order", "spot", "BTCUSDT", "BUY", None, Decimal("0.001"), False,
                        f"cid-{cid}", False, 0.0, "bench", Decimal("97"))
        t = time.perf_counter_ns()
        store.commit("acct", None, caps, Decimal("97"), [], entry, lambda room: Decided())
        commits.append((time.perf_counter_ns() - t) / 1e6)
        t = time.perf_counter_ns()
        store.settle(cid, {"status": "ok"}, False)
        settles.append((time.perf_counter_ns() - t) / 1e6)
    return commits, settles


def part_one(url: str, rounds: int, per: int) -> list[list[object]]:
    tmp = temp_dir("bench-backends-")
    stores = {"sqlite": StateStore(tmp / "state.db", time.time, url=None),
              "postgres": StateStore(tmp / "pg.db", time.time, url=url)}
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in stores}
    for s in stores.values():
        store_round(s, 5, -1)  # warm: schema, connection, prepared statements
    gc.disable()
    for i in range(rounds):
        for name in (list(stores) if i % 2 == 0 else list(reversed(stores))):
            c, s = store_round(stores[name], per, i)
            out[name][0].extend(c)
            out[name][1].extend(s)
    gc.enable()
    rows = []
    for op, idx in (("commit (decide + reserve)", 0), ("settle", 1)):
        lite, pg = out["sqlite"][idx], out["postgres"][idx]
        rows.append([op, f"{median(lite):.3f}", f"{pct(lite, 99):.3f}", f"{median(pg):.3f}", f"{pct(pg, 99):.3f}",
                     f"{median(pg) / median(lite):.2f}"])
    for s in stores.values():
        s.close()
    return rows


async def part_two(url: str, calls: int) -> tuple[list[list[object]], float]:
    bench = SimBench("bench-backends-calls-")
    servers = {"sqlite": bench.server(POLICY), "postgres": _with_url(bench, url)}
    bench.sim.control("balances", {"spot": {"USDT": "1000000000"}})  # every resting order locks its funds
    bench.sim.control("limits", {"reset_counters": True, "spot_orders_per_10s": 100000,
                                 "spot_weight_per_minute": 1000000})
    times: dict[str, list[float]] = {k: [] for k in servers}
    async with servers["sqlite"] as a, servers["postgres"] as b:
        clients = {"sqlite": a, "postgres": b}
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}  # filled: no open order
        for c in clients.values():  # warm: first call of the tool, the connection
            for _ in range(5):
                await c.call_tool("binance_spot_place_order", order)
        for i in range(calls):
            for name in (("sqlite", "postgres") if i % 2 == 0 else ("postgres", "sqlite")):
                t = time.perf_counter_ns()
                r = await clients[name].call_tool("binance_spot_place_order", order, raise_on_error=False)
                times[name].append((time.perf_counter_ns() - t) / 1e6)
                assert not r.is_error, r.content[0].text
    lite, pg = times["sqlite"], times["postgres"]
    ratio = median(pg) / median(lite)
    return [["place_order round trip", f"{median(lite):.2f}", f"{pct(lite, 99):.2f}", f"{median(pg):.2f}",
             f"{pct(pg, 99):.2f}", f"{ratio:.2f}"]], ratio


def _with_url(bench: SimBench, url: str):
    """SimBench.server with BINANCE_MCP_STATE_URL in the settings it loads."""
    from fastmcp import Client

    from binance_mcp.server import build_server
    from binance_mcp.settings import load_settings

    bench.n += 1
    pol = bench.tmp / f"policy-{bench.n}.yaml"
    pol.write_text(POLICY)
    settings = load_settings({"BINANCE_MCP_BASE_URL": bench.sim.base_url, "BINANCE_API_KEY": bench.sim.api_key,
                              "BINANCE_API_SECRET": bench.sim.api_secret, "BINANCE_MCP_POLICY": str(pol),
                              "BINANCE_MCP_STATE_DIR": str(bench.tmp / f"state-{bench.n}"),
                              "BINANCE_MCP_STATE_URL": url})
    return Client(build_server(settings))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    server = pgserver.start_server(durable=True)
    if server is None:
        raise SystemExit("no PostgreSQL server here (initdb): apt-get install postgresql")
    try:
        print(machine())
        rounds, per, calls = (6, 50, 100) if args.quick else (20, 100, 400)
        headers = ["", "SQLite p50 ms", "p99", "PostgreSQL p50 ms", "p99", "ratio p50"]
        print(table(headers, part_one(server.new_database(), rounds, per),
                    f"1. the store alone: {rounds * per} orders per backend, in rounds of {per}"))
        rows, ratio = asyncio.run(part_two(server.new_database(), calls))
        print(table(headers, rows, f"2. a trading call through the whole server (in memory): {calls} per backend, "
                                   "alternating"))
        print(f"target: PostgreSQL round trip at most {TARGET}x SQLite's: {ratio:.2f}x, {verdict(ratio <= TARGET)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
