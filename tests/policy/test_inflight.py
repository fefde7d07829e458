"""Limits hold when calls arrive together: orders allowed but not yet answered count toward every limit they would
change, in one MCP session and across server processes that share a state directory and an exchange account.

The servers run as real subprocesses over stdio against one standalone simulator (the shared account); what
counts is what the simulator holds, read with the real python-binance client, never what the servers answered.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import AsyncExitStack

import pytest

from binance_mcp.policy.state import StateStore
from binance_mcp.simulator.runner import RunningSimulator
from tests.policy.account import codes, futures_position, order_posts, serve_on
from tests.policy.test_guard_helpers import D, limit_buy, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPOT = "binance_spot_place_order"
FUT = "binance_futures_place_order"


OPEN_ONE = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {max_open_orders: 1}
"""


async def test_simultaneous_orders_in_one_session_leave_one_open_order(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", OPEN_ONE)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        seq = acct.control("state")["last_seq"]
        results = await asyncio.gather(*(server.call(SPOT, limit_buy()) for _ in range(6)))
        assert codes(results) == ["OPEN_ORDERS_OVER_LIMIT"] * 5
        assert len(binance.get_open_orders(symbol="BTCUSDT")) == 1
        assert len(order_posts(acct, seq, "/api/v3/order")) == 1  # the others never reached the exchange
        # Answered orders leave the in-flight table: the open order now counts from the exchange itself.
        await server.denied(SPOT, limit_buy(), "OPEN_ORDERS_OVER_LIMIT")


async def test_two_processes_on_one_account_leave_one_open_order(acct, binance, tmp_path, store_backend):
    policy = write_policy(tmp_path / "policy.yaml", OPEN_ONE)
    async with AsyncExitStack() as stack:
        a, b = await asyncio.gather(stack.enter_async_context(serve_on(acct, tmp_path / "state", policy)),
                                    stack.enter_async_context(serve_on(acct, tmp_path / "state", policy)))
        results = await asyncio.gather(*(p.call(SPOT, limit_buy()) for _ in range(5) for p in (a, b)))
        assert codes(results) == ["OPEN_ORDERS_OVER_LIMIT"] * 9
        assert len(binance.get_open_orders(symbol="BTCUSDT")) == 1


POSITION_CAP = """\
version: 1
default: allow
tools:
  binance_futures_place_order:
    limits: {max_position_notional_usd: 300}
"""
BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}  # about 194 USD at mark


async def test_simultaneous_futures_buys_never_build_a_position_over_the_cap(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", POSITION_CAP)
    mark = D(binance.futures_mark_price(symbol="BTCUSDT")["markPrice"])
    assert 300 < 2 * D(BUY["quantity"]) * mark and D(BUY["quantity"]) * mark < 300  # one fits, two do not
    async with AsyncExitStack() as stack:
        a, b = await asyncio.gather(stack.enter_async_context(serve_on(acct, tmp_path / "state", policy)),
                                    stack.enter_async_context(serve_on(acct, tmp_path / "state", policy)))
        results = await asyncio.gather(*(p.call(FUT, BUY) for _ in range(3) for p in (a, b)))
        assert codes(results) == ["POSITION_OVER_LIMIT"] * 5
    position = futures_position(binance)
    assert position == D(BUY["quantity"])
    assert abs(position) * mark <= 300


REDUCE_ONLY = """\
version: 1
default: allow
tools:
  binance_futures_place_order:
    limits: {reduce_only: true}
"""


async def test_simultaneous_reduce_only_orders_share_the_position_they_reduce(acct, binance, tmp_path):
    binance.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.004")
    assert futures_position(binance) == D("0.004")
    policy = write_policy(tmp_path / "policy.yaml", REDUCE_ONLY)
    sell = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.002", "reduceOnly": True}
    async with serve_on(acct, tmp_path / "state", policy) as server:
        seq = acct.control("state")["last_seq"]
        results = await asyncio.gather(*(server.call(FUT, sell) for _ in range(5)))
        assert codes(results) == ["REDUCE_ONLY_REQUIRED"] * 3
        assert len(order_posts(acct, seq, "/fapi/v1/order")) == 2  # only the two that fit were sent
    assert futures_position(binance) == 0  # reduced to flat, never flipped


RATE = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    rate_limit: {max: 3, window: 3600}
"""


async def test_rate_limits_are_shared_by_processes_and_survive_a_restart(acct, binance, tmp_path, store_backend):
    policy = write_policy(tmp_path / "policy.yaml", RATE)
    state = tmp_path / "state"
    async with AsyncExitStack() as stack:
        a, b = await asyncio.gather(stack.enter_async_context(serve_on(acct, state, policy)),
                                    stack.enter_async_context(serve_on(acct, state, policy)))
        results = await asyncio.gather(*(p.call(SPOT, limit_buy()) for _ in range(4) for p in (a, b)))
        assert codes(results) == ["RATE_LIMITED"] * 5
    assert len(binance.get_open_orders(symbol="BTCUSDT")) == 3
    async with serve_on(acct, state, policy) as restarted:  # a fresh process gets no fresh allowance
        text = await restarted.denied(SPOT, limit_buy(), "RATE_LIMITED")
        assert "tools.binance_spot_place_order.rate_limit" in text
        assert (await restarted.status())["rate_limits"][0]["used"] == 3


DAILY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 100000}
"""


async def test_a_read_answers_while_an_order_waits_for_a_locked_state_database(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", DAILY)
    state = tmp_path / "state"
    async with serve_on(acct, state, policy) as server:
        await server.ok(SPOT, limit_buy())  # the state database exists and works
        seq = acct.control("state")["last_seq"]
        other = sqlite3.connect(state / "state.db", isolation_level=None)  # another process's write lock
        other.execute("BEGIN IMMEDIATE")
        try:
            order = asyncio.ensure_future(server.call(SPOT, limit_buy()))
            await asyncio.sleep(0.3)  # the order is now waiting for the lock
            assert not order.done()
            loop = asyncio.get_running_loop()
            started = loop.time()
            price = await server.ok("binance_spot_price", {"symbol": "BTCUSDT"})
            read_s = loop.time() - started
            assert D(price["prices"][0]["price"]) > 0
            assert not order.done(), "the read should have answered while the order still waited"
            assert order_posts(acct, seq, "/api/v3/order") == []
        finally:
            other.execute("ROLLBACK")
            other.close()
        result = await order
        assert not result.is_error, result.content[0].text  # it went on once the lock was free
        assert len(order_posts(acct, seq, "/api/v3/order")) == 1
        print(f"read next to an order waiting for a locked state database: {read_s * 1000:.1f} ms")



async def test_a_call_the_client_cancels_mid_send_is_audited_and_still_counts(acct, binance, tmp_path, store_backend):
    """MCP ``notifications/cancelled`` (sent by the client when the caller abandons the call) while the order is on
    its way: the final audit record says so with the client order id, and the order keeps counting as in flight
    (it may exist) until a lookup by that id settles it (tests/policy/test_guard_cancel.py, with a fake clock)."""
    policy = write_policy(tmp_path / "policy.yaml", OPEN_ONE)
    state = tmp_path / "state"
    acct.control("faults", {"kind": "latency", "path": "/api/v3/order", "method": "POST", "count": 1,
                           "latency_ms": 1500})
    async with serve_on(acct, state, policy) as server:
        call = asyncio.ensure_future(server.call(SPOT, limit_buy()))
        for _ in range(100):  # until the order request is on its way (the latency fault holds it at the exchange)
            await asyncio.sleep(0.05)
            if server.sending():
                break
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(100):  # the server writes its final record once the cancellation reached it
            cancelled = [r for r in server.calls(SPOT) if r["outcome"]["status"] == "cancelled"]
            if cancelled:
                break
            await asyncio.sleep(0.05)
        (record,) = cancelled
        assert record["outcome"]["phase"] == "sending" and record["outcome"]["may_have_been_sent"] is True
        cid = record["outcome"]["client_order_id"]
        (pending,) = StateStore(state / "state.db", time.time).in_flight(server_account(acct))
        assert pending.client_order_id == cid
        # It still counts: the next order is refused before it reaches the exchange.
        await server.denied(SPOT, limit_buy(), "OPEN_ORDERS_OVER_LIMIT")
    for _ in range(60):  # the held request lands on the exchange: not after the next test's reset of the account
        if acct.sim.spot.orders:
            break
        await asyncio.sleep(0.05)


def server_account(acct: RunningSimulator) -> str:
    from binance_mcp.server import account_id
    from binance_mcp.settings import load_settings

    return account_id(load_settings({"BINANCE_API_KEY": acct.api_key, "BINANCE_API_SECRET": acct.api_secret,
                                     "BINANCE_MCP_BASE_URL": acct.base_url}))
