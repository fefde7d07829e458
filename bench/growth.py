"""Growth over a long session: memory of one server process over 10,000 calls, audit append cost as the log
grows, and the guard's decision time with a year of state versus an empty state dir.

A. 10,000 calls to ONE `python -m binance_mcp serve` process over stdio (custom mode against a simulator started
   here with its rate limits lifted). Every 10 calls: 8 x binance_spot_price, 1 x binance_spot_place_order
   (LIMIT BUY far under the market, under a policy with max_notional_usd and daily caps, so each order reads and
   writes the SQLite state; since e7e0fd5 it also reads the book and the last price), 1 x binance_spot_cancel_order. Resident memory is VmRSS from
   /proc/<server pid>/status (the server is a child of this process), read after start-up + tools/list, after
   the first 100 calls and every 1,000 calls. Call latency of the first and the last 500 calls is compared too.
B. AuditLog.append (binance_mcp.policy.audit) timed per record (each append writes, flushes and fsyncs one JSON
   line like the guard's): one log is grown to 9,900 records (timed, shown in fifths), then records 9,901..10,000
   of it are appended alternately with records 1..100 of a fresh log, so both windows meet the same disk.
C. The guard path in-process, with a price source that answers from memory (no exchange): an order under a
   spot-trader-like policy (limits, daily caps, rate limits, a kill-switch file that does not exist). Since
   604d816 the guard has no evaluate/commit pair: it gathers facts (PolicyGuard._facts: kill switch, the orders in
   flight from the state store, the exchange facts), previews the decision (_preview: today's sums and the
   rate-limit waits in one read, engine.decide), and decides again and reserves in ONE write transaction
   (StateStore.commit: orders in flight, sums, rate waits, decide, then the reservation, the rate-limit hits and
   the in-flight record), settled when the exchange answers (StateStore.settle). The store runs in a worker thread
   (StoreWorker), the audit writes in another. Timed: the decision without reserving (_facts + _preview, through
   the worker threads as in the server: what PolicyGuard.evaluate measured before), StateStore.view (what
   StateStore.used was, now with the rate-limit waits), StateStore.snapshot, StateStore.commit (what
   StateStore.reserve was), StateStore.settle, StateStore.check_writable (since 604d816 only before a human is
   asked), and the whole guard wrapper around a no-op tool (decision + commit + the "sending" record with fsync +
   settle + the outcome record, flushed). Once with an empty state dir, once with a year of state: 10,000 audit
   records, 365 days x 4 keys in daily_sums and 365 x 40 reservation rows, plus what the guard keeps for a while
   before it prunes it (24 h of rate-limit hits, 1 h of answered in-flight records), written with SQL; the two
   alternate at every sample.
D. The state store's newer tables as they fill, each on a fresh store: StateStore.view with 0..10,000 hits of each
   rate key inside the current window (rate limits live in the store since 604d816); StateStore.commit of one order
   next to 0..36,000 in-flight records of orders answered in the last hour; this process's VmRSS over 24,000
   commit + settle pairs on one store.

    /work/main/.venv/bin/python bench/growth.py [--quick] [--calls N] [--parts ABCD]

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

    def invalidate(self, symbol):  # the guard drops cached prices on an answered order; nothing cached here
        return None


class Placed(BaseModel):
    order_id: int = 1


RATE_KEYS = ["tool:binance_spot_place_order", "account"]


def fill_state(guard: PolicyGuard, days: int = 365, per_day: int = 20, hits_per_key: int = 43_200,
               released: int = 3_600) -> dict[str, int]:
    """What a year of use leaves in state.db: daily sums for 4 keys and per_day orders x 2 keys a day (never
    pruned), plus what the guard keeps for a while and then prunes: a day of rate-limit hits (RATE_KEEP_S: 24 h)
    under both rate keys, one per 2 s, all older than the 60 s window, and an hour of in-flight records of
    answered orders (RELEASED_KEEP_S: 1 h), one per second, released one after another."""
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
    now = time.time()
    hits = [(k, now - 120 - i * 2.0) for k in RATE_KEYS for i in range(hits_per_key)]
    flights = [(uuid.uuid4().hex[:16], guard.account, "binance_spot_place_order", "spot", BTC, "BUY", None, "0.001", 0,
                f"bmcp{i:028d}", 0, "bench-old-process", now - 3600 + i, "released", i + 1, now - 3600 + i + 0.05,
                '{"status": "ok"}') for i in range(released)]
    db.execute("BEGIN")
    db.executemany("INSERT INTO daily_sums (day, key, total) VALUES (?, ?, ?)", sums)
    db.executemany("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?)", res)
    db.executemany("INSERT INTO rate_hits (key, at) VALUES (?, ?)", hits)
    db.executemany("INSERT INTO inflight VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", flights)
    db.execute("INSERT INTO counters (name, value) VALUES ('released', ?) ON CONFLICT (name) DO UPDATE "
               "SET value = excluded.value", (released,))
    db.execute("COMMIT")
    return {"daily_sums": len(sums), "reservations": len(res), "rate_hits": len(hits), "inflight": len(flights)}


async def part_c(tmp: Path, audit_src: Path, n: int) -> dict:
    """The guard's decision path since 604d816 (see the module docstring): PolicyGuard._facts + _preview for the
    decision without reserving (what PolicyGuard.evaluate was), the StateStore transactions one by one, and the
    whole wrapper."""
    from binance_mcp.policy import engine
    from binance_mcp.policy.engine import Call, Counters
    from binance_mcp.policy.facts import pending_entry, with_pending

    if not hasattr(PolicyGuard, "_preview"):
        raise SystemExit("part C measures the guard of 604d816 and later; for an older tree run its own "
                         "bench/growth.py")
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
    call = Call(spec.name, args.model_dump(mode="json", exclude_none=True))
    policy = loaded.policy
    caps = {c.key: c.limit for c in engine.daily_caps(policy, spec.name)}
    rates = [(key, rl) for key, _, rl in engine.rate_limits(policy, spec.name)]
    assert sorted(caps) == sorted(RATE_KEYS) and [k for k, _ in rates] == RATE_KEYS, (caps, rates)

    async def noop(a):
        return Placed()

    wrapped = {k: g.wrap(spec, None, noop) for k, g in guards.items()}
    kinds = ("decision", "state.view", "state.snapshot", "state.commit", "state.settle", "state.check_writable",
             "wrapper")
    res: dict[str, dict[str, list[float]]] = {k: {w: [] for w in kinds} for k in guards}
    pc = time.perf_counter

    async def decision(g):
        facts, seq, failed = await g._facts(loaded, call)
        assert failed is None, failed
        return await g._preview(loaded, call, facts), facts, seq

    for g in guards.values():  # warm-up: the state db opened, the worker threads started
        for _ in range(50):
            await decision(g)
    facts0 = (await decision(guards["empty"]))[1]

    def decide(room):
        return engine.decide(policy, call, with_pending(call, facts0, room.pending),
                             Counters(daily_used=room.daily_used, rate_wait=room.rate_wait))

    # The two state dirs alternate at every sample (order swapped every step), so disk and CPU noise hit both;
    # the reads and the ones that write (fsync) run in separate loops, so neither disturbs the other.
    for i in range(n):
        for name in (("empty", "year") if i % 2 == 0 else ("year", "empty")):
            g = guards[name]
            t = pc()
            d, _, _ = await decision(g)
            res[name]["decision"].append((pc() - t) * 1e6)
            t = pc()
            g.state.view(list(caps), rates)
            res[name]["state.view"].append((pc() - t) * 1e6)
            t = pc()
            g.state.snapshot(g.account)
            res[name]["state.snapshot"].append((pc() - t) * 1e6)
    for i in range(n // 4):
        for name in (("empty", "year") if i % 2 == 0 else ("year", "empty")):
            g = guards[name]
            seq = g.state.seq()
            call_id = uuid.uuid4().hex[:16]
            entry = pending_entry(call, facts0, call_id, g.owner, uuid.uuid4().hex)
            t = pc()
            out = g.state.commit(g.account, seq, caps, Decimal("60"), rates, entry, decide)
            res[name]["state.commit"].append((pc() - t) * 1e6)
            assert out.allowed, out.reason
            t = pc()
            g.state.settle(call_id, {"status": "ok"}, False)
            res[name]["state.settle"].append((pc() - t) * 1e6)
            t = pc()
            g.state.check_writable()
            res[name]["state.check_writable"].append((pc() - t) * 1e6)
            t = pc()
            await wrapped[name](args)
            res[name]["wrapper"].append((pc() - t) * 1e6)
    assert d.allowed, d.reason
    counts = {}
    for name, g in guards.items():
        db = g.state._conn()
        counts[name] = (db.execute("SELECT COUNT(*) FROM daily_sums").fetchone()[0],
                        db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0],
                        db.execute("SELECT COUNT(*) FROM rate_hits").fetchone()[0],
                        db.execute("SELECT COUNT(*) FROM inflight").fetchone()[0],
                        sum(1 for _ in open(g.audit.path)))
        await asyncio.get_running_loop().run_in_executor(None, g.close)
    return {"res": res, "counts": counts, "inserted": rows_info}


async def part_d(tmp: Path) -> dict:
    """What the state store's newer tables cost as they fill (604d816), each on a fresh store:
    D1. StateStore.view (2 sums + 2 rate waits) with k hits of each rate key inside the current window, under a
        max of 1,000,000 per 60 s (so no call is refused): the wait is read by a range scan over those hits.
    D2. StateStore.commit of one order with k in-flight records of orders answered in the last hour (kept
        RELEASED_KEEP_S = 1 h for decisions that noted an older release counter), then settled (untimed).
    D3. VmRSS of this process over 24,000 commit + settle pairs on one store (SQLite's page cache)."""
    from binance_mcp.policy import engine
    from binance_mcp.policy.state import Pending, StateStore

    kill = tmp / "d-STOP"
    loaded = parse_text(guard_policy(kill), "growth-guard.yaml")
    rates = [(key, rl) for key, _, rl in engine.rate_limits(loaded.policy, "binance_spot_place_order")]
    out: dict[str, list] = {"window": [], "released": [], "rss": []}
    for k in (0, 100, 1_000, 10_000):
        st = StateStore(tmp / f"d1-{k}" / "state.db", time.time)
        db = st._conn()
        now = time.time()
        db.execute("BEGIN")
        db.executemany("INSERT INTO rate_hits (key, at) VALUES (?, ?)",
                       [(key, now - 50 + i * 50 / max(k, 1)) for key in RATE_KEYS for i in range(k)])
        db.execute("COMMIT")
        samples = []
        for _ in range(300):
            t = time.perf_counter()
            st.view(list(RATE_KEYS), rates)
            samples.append((time.perf_counter() - t) * 1e6)
        out["window"].append([f"{k:,}", median(samples), pct(samples, 90)])
        st.close()

    allowed = type("Allowed", (), {"allowed": True})()

    def order(st: StateStore, i: int) -> float:
        cid = uuid.uuid4().hex[:16]
        entry = Pending(cid, "binance_spot_place_order", "spot", BTC, "BUY", None, Decimal("0.001"), False,
                        f"bmcp{cid}", False, 0.0, "bench")
        seq = st.seq()
        t = time.perf_counter()
        st.commit("default", seq, {k: None for k in RATE_KEYS}, Decimal("60"), [], entry, lambda room: allowed)
        dt = (time.perf_counter() - t) * 1e6
        st.settle(cid, {"status": "ok", "order_id": i}, False)
        return dt

    for k in (0, 3_600, 36_000):
        st = StateStore(tmp / f"d2-{k}" / "state.db", time.time)
        db = st._conn()
        now = time.time()
        db.execute("BEGIN")
        db.executemany("INSERT INTO inflight VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(uuid.uuid4().hex[:16], "default", "binance_spot_place_order", "spot", BTC, "BUY", None,
                         "0.001", 0, f"c{i}", 0, "other", now - 3600 + i * 0.09, "released", i + 1,
                         now - 3600 + i * 0.09, "{}") for i in range(k)])
        db.execute("INSERT INTO counters (name, value) VALUES ('released', ?)", (k,))
        db.execute("COMMIT")
        samples = [order(st, i) for i in range(400)]
        out["released"].append([f"{k:,}", median(samples), pct(samples, 90)])
        st.close()

    st = StateStore(tmp / "d3" / "state.db", time.time)
    for i in range(1, 24_001):
        order(st, i)
        if i in (1, 500, 1_000, 2_000, 3_000, 4_000, 8_000, 16_000, 24_000):
            out["rss"].append([f"{i:,}", rss_kb(os.getpid())])
    st.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 server calls, 2,000 audit records, fewer samples")
    ap.add_argument("--calls", type=int, default=None, help="calls to the server in part A (default 10,000)")
    ap.add_argument("--parts", default="ABCD", help="which parts to run (default ABCD; C needs B's audit log)")
    args = ap.parse_args()
    parts = set(args.parts.upper())
    if "C" in parts:
        parts.add("B")
    calls = args.calls or (2000 if args.quick else 10_000)
    records = 2000 if args.quick else 10_000
    tmp = temp_dir("bench-growth-")
    t0 = time.perf_counter()

    a = asyncio.run(part_a(tmp, calls)) if "A" in parts else None
    b = part_b(tmp, records) if "B" in parts else None
    c = asyncio.run(part_c(tmp, tmp / "b-audit.jsonl", 2000 if args.quick else 8000)) if "C" in parts else None
    d = asyncio.run(part_d(tmp)) if "D" in parts else None

    print(f"growth  {machine()}")
    print(f"wall {time.perf_counter() - t0:.0f} s; parts {''.join(sorted(parts))}\n")
    if a is not None:
        print_a(a, calls)
    if b is not None:
        print_b(b, records)
    if c is not None:
        print_c(c)
    if d is not None:
        print_d(d)
    return 0


def print_a(a: dict, calls: int) -> None:
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


def print_b(b: dict, records: int) -> None:
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


def print_c(c: dict) -> None:
    res, counts = c["res"], c["counts"]
    print("C. guard path for one order (in-process, prices from memory), microseconds")
    label = {"decision": "decision: PolicyGuard._facts + _preview (kill switch, snapshot, facts, view, decide)",
             "state.view": "StateStore.view (2 daily sums + 2 rate-limit waits)",
             "state.snapshot": "StateStore.snapshot (release counter + orders in flight)",
             "state.commit": "StateStore.commit (BEGIN IMMEDIATE: in flight, sums, rate waits, decide, write)",
             "state.settle": "StateStore.settle (the order answered: in-flight record released)",
             "state.check_writable": "StateStore.check_writable (only before asking a human now)",
             "wrapper": "guard wrapper around a no-op tool (decision + commit + settle + 2 audit records, 1 fsync)"}
    rows = []
    for what in label:
        for name in ("empty", "year"):
            v = res[name][what]
            rows.append([label[what] if name == "empty" else "", name, median(v), pct(v, 90), pct(v, 99), len(v)])
    print(table(["path", "state", "median us", "p90", "p99", "n"], rows))
    ins = c["inserted"]
    print(f"  year: inserted {ins['daily_sums']:,} daily sums, {ins['reservations']:,} reservations, "
          f"{ins['rate_hits']:,} rate-limit hits (the last 24 h, outside the window), {ins['inflight']:,} in-flight "
          f"records of answered orders (the last hour), and 10,000 audit records")
    for name in ("empty", "year"):
        ds, rs, rh, fl, al = counts[name]
        print(f"  {name}: at the end {ds:,} daily sums, {rs:,} reservations, {rh:,} rate-limit hits, {fl:,} in-flight "
              f"records, {al:,} audit lines")
    for what in label:
        ratio = median(res["year"][what]) / median(res["empty"][what])
        print(f"{what}: year / empty = {ratio:.2f}  -> no growth (<= 1.15): {verdict(ratio <= 1.15)}")
    for what in ("decision", "state.commit", "wrapper"):
        v = res["empty"][what]
        k = max(1, len(v) // 10)
        print(f"{what}, empty state: first tenth {median(v[:k]):.0f} us, last tenth {median(v[-k:]):.0f} us "
              f"(rate-limit hits and answered in-flight records pile up during the run)")
    print()


def print_d(d: dict) -> None:
    print("D. the state store's newer tables as they fill (each on a fresh store), microseconds")
    print(table(["hits of each rate key in the 60 s window", "StateStore.view median us", "p90"], d["window"],
                title="D1. rate limits in the state store (max 1,000,000 per 60 s): the wait is a range scan over "
                      "the hits in the window"))
    print()
    print(table(["answered in-flight records (last hour)", "StateStore.commit median us", "p90"], d["released"],
                title="D2. one order's commit transaction (no caps checked, no rate limits) next to the records of "
                      "orders answered in the last hour"))
    print()
    first = d["rss"][0][1]
    print(table(["commit + settle pairs", "VmRSS MiB of this process", "vs after the first, MiB"],
                [[n, kb / 1024, (kb - first) / 1024] for n, kb in d["rss"]],
                title="D3. memory of one store over 24,000 orders"))


if __name__ == "__main__":
    raise SystemExit(main())
