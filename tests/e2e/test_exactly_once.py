"""Orders are placed exactly once, whatever the exchange does to the answer.

The server (built in-process, talking to a real simulator over HTTP through python-binance) places an
order while the simulator drops the connection, answers 5xx, or answers too late. In every case exactly
one or zero orders exist on the exchange, the tool's report says which, and the policy's daily sum
matches what the exchange holds.

The placement's receive-window wait runs on a fake clock (``server``): its pauses pass at once in fake
time (with a short real pause, so a request the simulator holds can still be answered), so no case waits
for the 5 s window on the wall clock. The simulator's own check of late requests is tested with the
simulator (tests/simulator/test_auth.py).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from fastmcp import Client

from binance_mcp.exchange.client import Exchange
from binance_mcp.server import build_server
from binance_mcp.settings import load_settings
from tests.helpers import simulator

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 100000}
  binance_futures_place_order:
    limits: {daily_notional_usd: 100000}
"""


@pytest.fixture(scope="module")
def exchange_sim():
    with simulator() as rs:
        yield rs


@pytest.fixture
def env(exchange_sim, tmp_path):
    exchange_sim.control("reset", {})
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return {
        "BINANCE_API_KEY": exchange_sim.api_key, "BINANCE_API_SECRET": exchange_sim.api_secret,
        "BINANCE_MCP_BASE_URL": exchange_sim.base_url, "BINANCE_MCP_STATE_DIR": str(tmp_path / "state"),
        "BINANCE_MCP_POLICY": str(policy), "BINANCE_MCP_TIMEOUT": "1",
    }


class Clock:
    """The placement's clock: each pause advances it at once, with a real pause of at most 50 ms."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(min(seconds, 0.05))


def server(env: dict):
    settings = load_settings(env)
    clock = Clock()
    exchange = Exchange(settings, clock=clock)
    exchange.sleep = clock.sleep
    return build_server(settings, exchange=exchange)


def spot_orders(sim, client_id: str) -> list[dict]:
    log = sim.sim.spot.orders.values()
    return [o for o in log if o.client_order_id == client_id]


def futures_orders(sim, client_id: str) -> list:
    return [o for o in sim.sim.futures.orders.values() if o.client_order_id == client_id]


async def daily_used(client: Client, tool: str) -> Decimal:
    status = (await client.call_tool("binance_policy_status", {})).structured_content
    rule = f"tools.{tool}.limits.daily_notional_usd"
    return next(Decimal(d["used_usd"]) for d in status["daily"] if d["rule"] == rule)


SPOT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
FUTURES = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}

# (fault, latency_ms, orders expected on the exchange, text the report must contain)
SPOT_CASES = [
    ("drop_after", 0, 1, None),
    ("error_5xx_after", 0, 1, None),
    ("drop_before", 0, 0, "ORDER_NOT_PLACED"),
    ("error_5xx", 0, 0, "ORDER_NOT_PLACED"),
    ("latency", 1300, 1, None),  # answered after the 1 s timeout, inside the 5 s receive window: placed
]


@pytest.mark.parametrize(("fault", "latency", "expected", "error"), SPOT_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in SPOT_CASES])
async def test_spot_order_survives_a_lost_answer(exchange_sim, env, fault, latency, expected, error):
    cid = f"t{fault.replace('_', '')}{latency}"
    since = exchange_sim.control("state")["last_seq"]
    exchange_sim.control("faults", {"kind": fault, "path": "/api/v3/order", "method": "POST", "count": 1,
                                    "latency_ms": latency})
    async with Client(server(env), mode="legacy") as client:
        result = await client.call_tool("binance_spot_place_order", {**SPOT, "newClientOrderId": cid},
                                        raise_on_error=False)
        placed = spot_orders(exchange_sim, cid)
        assert len(placed) == expected
        if expected:
            assert not result.is_error, result.content[0].text
            data = result.structured_content
            assert data["orderId"] == placed[0].order_id and data["clientOrderId"] == cid
            assert data["note"] and cid in data["note"]
            assert await daily_used(client, "binance_spot_place_order") == Decimal("97.00001")  # at the ask
        else:
            assert result.is_error and result.content[0].text.startswith(error), result.content[0].text
            assert cid in result.content[0].text
            assert await daily_used(client, "binance_spot_place_order") == 0
        log = exchange_sim.control(f"requests?since={since}")
        posts = [e for e in log if e["path"] == "/api/v3/order" and e["method"] == "POST"]
        assert len(posts) == 1  # never a second order request for one tool call


@pytest.mark.parametrize("fault", ["drop_after", "error_5xx_after", "drop_before"])
async def test_futures_order_survives_a_lost_answer(exchange_sim, env, fault):
    cid = f"f{fault.replace('_', '')}"
    exchange_sim.control("faults", {"kind": fault, "path": "/fapi/v1/order", "method": "POST", "count": 1})
    async with Client(server(env), mode="legacy") as client:
        result = await client.call_tool("binance_futures_place_order", {**FUTURES, "newClientOrderId": cid},
                                        raise_on_error=False)
        placed = futures_orders(exchange_sim, cid)
        expected = 0 if fault == "drop_before" else 1
        assert len(placed) == expected
        if expected:
            assert not result.is_error, result.content[0].text
            assert result.structured_content["orderId"] == placed[0].order_id
            assert await daily_used(client, "binance_futures_place_order") > 0
        else:
            assert result.content[0].text.startswith("ORDER_NOT_PLACED")
            assert await daily_used(client, "binance_futures_place_order") == 0


async def test_unreachable_lookup_reports_unknown_status(exchange_sim, env):
    """The order request and every lookup fail: the report says the status is unknown, with the id to check."""
    cid = "tunknown1"
    exchange_sim.control("faults", {"kind": "error_5xx_after", "path": "/api/v3/order", "count": -1})
    try:
        async with Client(server(env), mode="legacy") as client:
            result = await client.call_tool("binance_spot_place_order", {**SPOT, "newClientOrderId": cid},
                                            raise_on_error=False)
    finally:
        exchange_sim.control("faults", method="DELETE")
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("ORDER_STATUS_UNKNOWN") and cid in text and "do NOT place it again" in text
    assert len(spot_orders(exchange_sim, cid)) == 1  # it did reach the exchange: the report did not claim otherwise


async def test_a_read_is_retried_after_one_transient_failure(exchange_sim, env):
    """Reads (never orders) get bounded retries: one 503 and one dropped answer are absorbed."""
    exchange_sim.control("faults", {"kind": "error_5xx", "path": "/api/v3/ticker/price", "count": 1})
    exchange_sim.control("faults", {"kind": "non_json", "path": "/api/v3/ticker/price", "count": 1})
    since = exchange_sim.control("state")["last_seq"]
    async with Client(server(env), mode="legacy") as client:
        result = await client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"})
    assert result.structured_content["prices"][0]["price"] == "97000"
    log = [e for e in exchange_sim.control(f"requests?since={since}") if e["path"] == "/api/v3/ticker/price"]
    assert len(log) == 3  # two failures, then the answer


async def test_after_a_429_nothing_is_sent_until_retry_after(exchange_sim, env):
    """Binance's 429 with Retry-After: the agent is told when to try again, and the server does not hammer."""
    exchange_sim.control("limits", {"spot_weight_per_minute": 1})
    try:
        async with Client(server(env), mode="legacy") as client:
            first = await client.call_tool("binance_spot_orderbook", {"symbol": "BTCUSDT", "limit": 5},
                                           raise_on_error=False)
            assert first.is_error and "-1003" in first.content[0].text and "Retry after" in first.content[0].text
            since = exchange_sim.control("state")["last_seq"]
            second = await client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"}, raise_on_error=False)
            assert second.is_error and second.content[0].text.startswith("EXCHANGE_RATE_LIMITED")
            assert "try again in" in second.content[0].text
            assert exchange_sim.control(f"requests?since={since}") == []  # nothing was sent
    finally:
        exchange_sim.control("limits", {"reset_counters": True})
        exchange_sim.control("reset", {})
