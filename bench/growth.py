"""Growth over a long session: memory of one server process over 10,000 calls, audit append cost as the log
grows, and the guard's decision time with a year of state versus an empty state dir.

A. 10,000 calls to ONE `python -m binance_mcp serve` process over stdio (custom mode against a simulator started
   here with its rate limits lifted). Every 10 calls: 8 x binance_spot_price, 1 x binance_spot_place_order
   (LIMIT BUY far under the market, under a policy with max_notional_usd and daily caps, so each order reads and
   writes the SQLite state), 1 x binance_spot_cancel_order. Resident memory is VmRSS from
   /proc/<server pid>/status (the server is a child of this process), read after start-up + tools/list, after
   the first 100 calls and every 1,000 calls. Call latency of the first and the last 500 calls is compared too.
B. AuditLog.append (binance_mcp.policy.audit) timed per record (each append writes, flushes and fsyncs one JSON
   line like the guard's): one log is grown to 9,900 records (timed, shown in fifths), then records 9,901..10,000
   of it are appended alternately with records 1..100 of a fresh log, so both windows meet the same disk.
C. The guard path in-process, with a price source that answers from memory (no exchange): an order under a
   spot-trader-like policy (limits, daily caps, rate limits). Timed: PolicyGuard.evaluate (facts, counters,
   StateStore.used, engine) and the whole guard wrapper around a no-op tool (evaluate + state check + reserve in
   SQLite + the audit records with fsync: since 8fc6440 two per trading call, "sending" and the outcome), and
   StateStore.used / StateStore.reserve / StateStore.check_writable (where it exists) on their own. Once with an
   empty state dir, once with 10,000 audit records and a year of daily sums (365 days x 4 keys in daily_sums,
   365 x 40 reservation rows) written into state.db with SQL; the two alternate at every sample.

    /work/venv/bin/python bench/growth.py [--quick] [--calls N]

Everything is written under one temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import bench_env, machine, median, pct, table, temp_dir, verdict
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from pydantic import BaseModel

from binance_mcp.catalog import BY_NAME
from binance_mcp.policy.audit import AuditLog
from binance_mcp.policy.guard import PolicyGuard
from binance_mcp.policy.loader import parse_text
from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.runner import start_in_thread
from binance_mcp.tools.spot import SpotOrderArgs

BTC = "BTCUSDT"
ORDER = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000", "timeInForce": "GTC"}
SERVER_POLICY = """version: 1
default: allow
tools:
  binance_spot_place_order:
    action: allow
    limits:
      max_notional_usd: 1000
      daily_notional_usd: 1000000000
account:
  daily_notional_usd: 1000000000
"""


def guard_policy(kill_file: Path) -> str:
    return f"""version: 1
default: deny
classes:
  read: allow
  destructive: allow
tools:
  binance_spot_place_order:
    action: allow
    rate_limit: {{max: 1000000, window: 60}}
    approval_above: {{notional_usd: 250}}
    limits:
      symbols: [BTCUSDT, ETHUSDT]
      sides: [BUY, SELL]
      order_types: [LIMIT, LIMIT_MAKER, MARKET]
      max_notional_usd: 500
      daily_notional_usd: 1000000000
      max_price_deviation_pct: 50
      max_open_orders: 1000000
account:
  daily_notional_usd: 1000000000
  rate_limit: {{max: 1000000, window: 60}}
  kill_switch_file: {kill_file}
"""


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def server_pid() -> int:
    """The `binance_mcp serve` child of this process."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"binance_mcp" in cmd:
            return int(d)
    raise RuntimeError("server process not found")


# -- A ---------------------------------------------------------------------------------------------
async def part_a(tmp: Path, calls: int) -> dict:
    sim = start_in_thread(SimConfig(controls=True, tick_seconds=0, spot_weight_per_minute=10**9,
                                    spot_orders_per_10s=10**9, spot_orders_per_day=10**9))
    pol = tmp / "a-policy.yaml"
    pol.write_text(SERVER_POLICY)
    env = bench_env(BINANCE_MCP_BASE_URL=sim.base_url, BINANCE_API_KEY=sim.api_key, BINANCE_API_SECRET=sim.api_secret,
                    BINANCE_MCP_POLICY=str(pol), BINANCE_MCP_STATE_DIR=str(tmp / "a-state"))
    client = Client(StdioTransport(command=sys.executable, args=["-m", "binance_mcp", "serve"], env=env, cwd=str(tmp),
                                   keep_alive=False, log_file=tmp / "a-server.stderr.log"), mode="legacy")
    out: dict = {"rss": [], "lat": []}
    t0 = time.perf_counter()
    try:
        async with client:
            await client.list_tools()
            pid = server_pid()
            out["rss"].append((0, rss_kb(pid)))
            order_id = None
            for i in range(1, calls + 1):
                k = i % 10
                t = time.perf_counter()
                if k == 9:
                    r = await client.call_tool("binance_spot_place_order", ORDER)
                    order_id = r.structured_content["orderId"]
                elif k == 0 and order_id is not None:
                    await client.call_tool("binance_spot_cancel_order", {"symbol": BTC, "orderId": order_id})
                    order_id = None
                else:
                    await client.call_tool("binance_spot_price", {"symbol": BTC})
                out["lat"].append((time.perf_counter() - t) * 1000)
                if i == 100 or i % 1000 == 0:
                    out["rss"].append((i, rss_kb(pid)))
            audit = tmp / "a-state" / "audit.jsonl"
            out["audit_lines"] = sum(1 for _ in open(audit)) if audit.exists() else 0
            out["audit_bytes"] = audit.stat().st_size if audit.exists() else 0
            db = tmp / "a-state" / "state.db"
            out["db_bytes"] = sum(p.stat().st_size for p in db.parent.glob("state.db*"))
    finally:
        sim.stop()
    out["wall"] = time.perf_counter() - t0
    return out


# -- B ---------------------------------------------------------------------------------------------
def audit_record(i: int) -> dict:
    return {"call_id": uuid.uuid4().hex[:16], "tool": "binance_spot_place_order", "args": dict(ORDER),
            "decision": {"effect": "allow", "code": "ALLOWED", "rule": "tools.binance_spot_place_order",
                         "reason": "allowed by tools.binance_spot_place_order",
                         "facts": {"notional_usd": "60.000", "quantity": "0.001"}},
            "outcome": {"status": "ok", "order_id": 1000 + i, "client_order_id": f"bmcp{i:028d}"},
            "duration_ms": 3.217, "policy": {"source": "/tmp/policy.yaml", "sha256": "0123456789abcdef",
                                             "mode": "enforce"}}


def part_b(tmp: Path, n: int) -> dict:
    """Grow one log to n - 100 records (timing every append), then append records n-99..n to it interleaved,
    one for one, with records 1..100 of a fresh log: both windows see the same disk at the same moments."""
    big = AuditLog(tmp / "b-audit.jsonl")
    pc = time.perf_counter
    grow = []
    for i in range(n - 100):
        rec = audit_record(i)
        t = pc()
        big.append(rec)
        grow.append((pc() - t) * 1e6)
    fresh = AuditLog(tmp / "b-audit-fresh.jsonl")
    early, late = [], []
    for i in range(100):
        for log, out, k in ((fresh, early, i), (big, late, n - 100 + i)):
            rec = audit_record(k)
            t = pc()
            log.append(rec)
            out.append((pc() - t) * 1e6)
    big.close()
    fresh.close()
    return {"grow": grow, "early": early, "late": late, "bytes": (tmp / "b-audit.jsonl").stat().st_size}


# -- C ---------------------------------------------------------------------------------------------
class MemoryPrices:
    """A PriceSource answering from memory: the guard path without the exchange."""

    async def spot_book_top(self, symbol):
        return Decimal("96999.99"), Decimal("97000.01")

    async def spot_price(self, symbol):
        return Decimal("97000")

    async def mark_price(self, symbol):
        return Decimal("97000")

    async def quote_asset(self, market, symbol):
        return "USDT"

    async def open_orders(self, market):
        return 3

    async def leverage(self, symbol):
        return 5

    async def position(self, symbol, side):
        return Decimal(0)

    async def positions(self, symbol):
        return {}


class Placed(BaseModel):
    order_id: int = 1


def fill_state(guard: PolicyGuard, days: int = 365, per_day: int = 20) -> tuple[int, int]:
    """A year of history straight into state.db: daily sums for 4 keys and per_day orders x 2 keys a day."""
    db = guard.state._conn()
    today = datetime.now(timezone.utc).date()
    keys = ["tool:binance_spot_place_order", "tool:binance_futures_place_order", "tool:binance_futures_close_position",
            "account"]
    sums, res = [], []
    for d in range(1, days + 1):
        day = (today - timedelta(days=d)).isoformat()
        for k in keys:
            sums.append((day, k, "1234.5"))
        for _ in range(per_day):
            cid = uuid.uuid4().hex[:16]
            for k in ("tool:binance_spot_place_order", "account"):
                res.append((cid, day, k, "61.7", "binance_spot_place_order", f"{day}T12:00:00+00:00", "reserved"))
    db.execute("BEGIN")
    db.executemany("INSERT INTO daily_sums (day, key, total) VALUES (?, ?, ?)", sums)
    db.executemany("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?)", res)
    db.execute("COMMIT")
    return len(sums), len(res)


async def part_c(tmp: Path, audit_src: Path, n: int) -> dict:
    kill = tmp / "c-STOP"  # never created
    loaded = parse_text(guard_policy(kill), "growth-guard.yaml")
    guards = {}
    for name in ("empty", "year"):
        d = tmp / f"c-state-{name}"
        d.mkdir()
        if name == "year":
            (d / "audit.jsonl").write_bytes(audit_src.read_bytes())
        guards[name] = PolicyGuard(loaded, d, MemoryPrices(), policy_path=None)
    rows_info = fill_state(guards["year"])
    spec = BY_NAME["binance_spot_place_order"]
    args = SpotOrderArgs.model_validate({**ORDER, "price": "60000"})
    from binance_mcp.policy.engine import Call

    call = Call(spec.name, args.model_dump(mode="json", exclude_none=True))

    async def noop(a):
        return Placed()

    wrapped = {k: g.wrap(spec, None, noop) for k, g in guards.items()}
    kinds = ("evaluate", "state.used", "state.reserve", "state.check_writable", "wrapper")
    res: dict[str, dict[str, list[float]]] = {k: {w: [] for w in kinds} for k in guards}
    keys = ["tool:binance_spot_place_order", "account"]
    caps = {k: Decimal(10) ** 12 for k in keys}
    pc = time.perf_counter
    for g in guards.values():  # warm-up, and the state db opened
        for _ in range(50):
            await g.evaluate(g.current(), call)
    # The two state dirs alternate at every sample (order swapped every step), so disk and CPU noise hit both;
    # the light calls and the ones that write (fsync) run in separate loops, so neither disturbs the other.
    for i in range(n):
        for name in (("empty", "year") if i % 2 == 0 else ("year", "empty")):
            g = guards[name]
            t = pc()
            d, _ = await g.evaluate(g.current(), call)
            res[name]["evaluate"].append((pc() - t) * 1e6)
            t = pc()
            g.state.used(keys)
            res[name]["state.used"].append((pc() - t) * 1e6)
    for i in range(n // 4):
        for name in (("empty", "year") if i % 2 == 0 else ("year", "empty")):
            g = guards[name]
            t = pc()
            g.state.reserve(uuid.uuid4().hex[:16], spec.name, Decimal("60"), caps)
            res[name]["state.reserve"].append((pc() - t) * 1e6)
            if hasattr(g.state, "check_writable"):  # the guard runs it before every trading call (8fc6440 on)
                t = pc()
                g.state.check_writable()
                res[name]["state.check_writable"].append((pc() - t) * 1e6)
            t = pc()
            await wrapped[name](args)
            res[name]["wrapper"].append((pc() - t) * 1e6)
    assert d.allowed, d.text()
    counts = {}
    for name, g in guards.items():
        db = g.state._conn()
        counts[name] = (db.execute("SELECT COUNT(*) FROM daily_sums").fetchone()[0],
                        db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0],
                        sum(1 for _ in open(g.audit.path)))
        g.close()
    return {"res": res, "counts": counts, "inserted": rows_info}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 server calls, 2,000 audit records, fewer samples")
    ap.add_argument("--calls", type=int, default=None, help="calls to the server in part A (default 10,000)")
    args = ap.parse_args()
    calls = args.calls or (2000 if args.quick else 10_000)
    records = 2000 if args.quick else 10_000
    tmp = temp_dir("bench-growth-")
    t0 = time.perf_counter()

    a = asyncio.run(part_a(tmp, calls))
    b = part_b(tmp, records)
    c = asyncio.run(part_c(tmp, tmp / "b-audit.jsonl", 2000 if args.quick else 8000))

    print(f"growth  {machine()}")
    print(f"wall {time.perf_counter() - t0:.0f} s\n")
    print(f"A. {calls:,} calls to one server process over stdio (8 price : 1 order : 1 cancel), {a['wall']:.0f} s")
    start = a["rss"][0][1]
    print(table(["after calls", "VmRSS MiB", "vs start MiB"], [[f"{i:,}", kb / 1024, (kb - start) / 1024]
                                                                  for i, kb in a["rss"]]))
    warm = dict(a["rss"]).get(100, start)
    end = a["rss"][-1][1]
    per_k = (end - warm) / max(1, (calls - 100)) * 1000
    first, last = a["lat"][:500], a["lat"][-500:]
    print(f"growth after warm-up (call 100 -> {calls:,}): {(end - warm) / 1024:+.1f} MiB = {per_k:+.1f} KiB per "
          f"1,000 calls")
    print(f"call latency median: first 500 {median(first):.2f} ms, last 500 {median(last):.2f} ms "
          f"(ratio {median(last) / median(first):.2f}); audit log {a['audit_lines']:,} lines "
          f"{a['audit_bytes'] / 1024:.0f} KiB, state db {a['db_bytes'] / 1024:.0f} KiB\n")

    n, lo, hi, grow = records, b["early"], b["late"], b["grow"]
    print(f"B. AuditLog.append, one fsync each, microseconds: records 1..100 (a fresh log) and {n - 99:,}..{n:,} "
          f"(the log grown to {n - 100:,} records first), appended alternately")
    rows = [["1..100", median(lo), pct(lo, 90), pct(lo, 99), max(lo)],
            [f"{n - 99:,}..{n:,}", median(hi), pct(hi, 90), pct(hi, 99), max(hi)]]
    step = max(1, (n - 100) // 5)
    for k in range(0, n - 100, step):
        w = grow[k:k + step]
        rows.append([f"growing: {k + 1:,}..{k + len(w):,}", median(w), pct(w, 90), pct(w, 99), max(w)])
    print(table(["records", "median us", "p90", "p99", "max"], rows))
    print(f"late / early median: {median(hi) / median(lo):.2f}  -> no growth (<= 1.15): "
          f"{verdict(median(hi) / median(lo) <= 1.15)}; log {b['bytes'] / 1024:.0f} KiB\n")

    res, counts = c["res"], c["counts"]
    print("C. guard path for one order (in-process, prices from memory), microseconds")
    label = {"evaluate": "PolicyGuard.evaluate (facts, counters, state.used, decide)",
             "state.used": "StateStore.used (2 keys, today)",
             "state.reserve": "StateStore.reserve (BEGIN IMMEDIATE, 2 keys)",
             "state.check_writable": "StateStore.check_writable (BEGIN IMMEDIATE, 2 counts, ROLLBACK)",
             "wrapper": "guard wrapper around a no-op tool (evaluate + check + reserve + audit fsyncs)"}
    if not res["empty"]["state.check_writable"]:  # a tree from before 8fc6440: no state check in the guard
        del label["state.check_writable"]
        label["wrapper"] = label["wrapper"].replace("check + ", "")
    rows = []
    for what in label:
        for name in ("empty", "year"):
            v = res[name][what]
            rows.append([label[what] if name == "empty" else "", name, median(v), pct(v, 90), pct(v, 99), len(v)])
    print(table(["path", "state", "median us", "p90", "p99", "n"], rows))
    for name in ("empty", "year"):
        ds, rs, al = counts[name]
        print(f"  {name}: at the end {ds:,} daily sums, {rs:,} reservations, {al:,} audit lines")
    for what in label:
        ratio = median(res["year"][what]) / median(res["empty"][what])
        print(f"{what}: year / empty = {ratio:.2f}  -> no growth (<= 1.15): {verdict(ratio <= 1.15)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
