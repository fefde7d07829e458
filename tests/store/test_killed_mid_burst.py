"""The PostgreSQL server killed (SIGKILL) and restarted in the middle of a burst of orders: no order reaches the
exchange without its reservation and in-flight record in the store (written and committed before it is sent), and
once the exchange's receive window has closed, nothing is left reserved but what the exchange holds (answers that
could not be settled while the database was away are settled on the exchange's word)."""

from __future__ import annotations

import asyncio
import time

import pytest

from binance_mcp.policy.state import StateStore
from tests.policy.account import acct, exchange, serve_on  # noqa: F401 - fixtures: the account
from tests.policy.test_guard_helpers import limit_buy, write_policy

pytestmark = pytest.mark.asyncio

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 100000, max_open_orders: 500}
"""
ORDERS = 40


def rows(store: StateStore, sql: str) -> list[tuple]:
    return store.transaction(lambda db: db.execute(sql).fetchall(), "read", write=False)


async def test_a_database_killed_mid_burst_sends_nothing_unreserved_and_leaves_nothing_behind(
        acct, pg_server, tmp_path, monkeypatch):  # noqa: F811
    url = pg_server.new_schema()
    monkeypatch.setenv("BINANCE_MCP_STATE_URL", url)
    acct.control("limits", {"reset_counters": True, "spot_weight_per_minute": 100000})
    # the first orders are held at the exchange for a while: answered after the database died
    acct.control("faults", {"kind": "latency", "path": "/api/v3/order", "method": "POST", "count": 10,
                            "latency_ms": 800})
    policy = write_policy(tmp_path / "policy.yaml", POLICY)
    async with serve_on(acct, tmp_path / "state", policy, BINANCE_MCP_MODE="testnet") as server:
        calls = [asyncio.ensure_future(server.call("binance_spot_place_order", limit_buy(
            price=str(80000 + i)))) for i in range(ORDERS)]
        for _ in range(200):  # until some orders are on their way
            await asyncio.sleep(0.01)
            if any(e["path"] == "/api/v3/order" for e in acct.control("requests?since=0")):
                break
        pg_server.kill()
        await asyncio.sleep(0.5)
        pg_server.start()
        results = await asyncio.gather(*calls)
        codes = {r.content[0].text.split(":")[0] if r.is_error else "OK" for r in results}
        assert codes <= {"OK", "POLICY_ERROR"}, [r.content[0].text[:200] for r in results if r.is_error]
        assert "POLICY_ERROR" in codes  # the database was away for some of them
        store = StateStore(tmp_path / "state.db", time.time, url=url)
        on_exchange = {o.client_order_id for o in acct.sim.spot.orders.values()}
        assert on_exchange
        # Every order on the exchange was recorded in flight and reserved before it was sent.
        recorded = dict(rows(store, "SELECT client_order_id, call_id FROM inflight"))
        reserved = {c for (c,) in rows(store, "SELECT call_id FROM reservations WHERE status = 'reserved'")}
        assert on_exchange <= set(recorded)
        assert {recorded[cid] for cid in on_exchange} <= reserved
        # After the receive window: nothing in flight, and nothing reserved that the exchange does not hold.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            left = rows(store, "SELECT call_id FROM inflight WHERE status = 'inflight'")
            if not left:
                break
            await asyncio.sleep(0.5)
        assert left == []
        reserved = {c for (c,) in rows(store, "SELECT call_id FROM reservations WHERE status = 'reserved'")}
        assert reserved == {recorded[cid] for cid in on_exchange}
        store.close()
