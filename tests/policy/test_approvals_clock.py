"""Approval expiry and the notional an approval binds, on a fake clock: the guard in process with fixed prices.

The stdio end-to-end flow (a real client, the approvals CLI as another process) is in test_approvals_oob.py."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import BaseModel

from binance_mcp.catalog import BY_NAME
from binance_mcp.policy.guard import PolicyDenied, PolicyGuard
from binance_mcp.policy.loader import parse_text
from binance_mcp.tools.spot import SpotOrderArgs
from tests.fakeclock import FakeClock

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""
TTL = 600.0


class Prices:
    def __init__(self) -> None:
        self.ask = Decimal("97000.01")

    async def spot_book_top(self, symbol):
        return self.ask - Decimal("0.02"), self.ask

    async def spot_price(self, symbol):
        return self.ask - Decimal("0.01")

    async def quote_asset(self, market, symbol):
        return "USDT"


class Placed(BaseModel):  # a placement's result, as the guard reads it (Binance's name)
    orderId: int = 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prices() -> Prices:
    return Prices()


@pytest.fixture
def guard(tmp_path, clock, prices):
    g = PolicyGuard(parse_text(POLICY, "p.yaml"), tmp_path, prices, clock=clock, approval_ttl=TTL,
                    sleep=clock.sleep)
    yield g
    g.close()


@pytest.fixture
def order(guard):
    sent: list = []

    async def runner(args):
        sent.append(args)
        return Placed()

    wrapped = guard.wrap(BY_NAME["binance_spot_place_order"], None, runner)

    async def call(quantity: str = "0.001"):
        return await wrapped(SpotOrderArgs(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=Decimal(quantity)))

    call.sent = sent
    return call


async def required(order) -> str:
    with pytest.raises(PolicyDenied) as err:
        await order()
    assert err.value.decision.code == "APPROVAL_REQUIRED", err.value.decision.reason
    return err.value.decision.facts["approval_id"]


def events(guard: PolicyGuard, approval_id: str) -> list[str]:
    lines = guard.audit.path.read_text(encoding="utf-8").splitlines()
    return [r["event"] for r in map(json.loads, lines) if r.get("approval_id") == approval_id]


async def test_an_approval_used_before_it_expires_runs_once(guard, order, clock):
    first = await required(order)
    guard.approvals.decide(first, True)
    clock.advance(TTL - 1)
    assert isinstance(await order(), Placed)
    assert len(order.sent) == 1
    assert await required(order) != first  # single use: the same call again needs a new approval


async def test_an_expired_approval_is_refused_and_a_new_request_follows(guard, order, clock):
    approved = await required(order)
    guard.approvals.decide(approved, True)
    clock.advance(TTL + 1)
    with pytest.raises(PolicyDenied) as err:
        await order()
    assert err.value.decision.code == "APPROVAL_EXPIRED"
    assert f"approval {approved} expired before it was used" in err.value.decision.reason
    fresh = await required(order)  # the expiry was reported: calling again starts a new request
    assert fresh != approved and order.sent == []
    assert events(guard, approved) == ["approval_requested", "approval_expired", "approval_expired_refused"]


async def test_a_request_nobody_answered_lapses_into_a_new_one(guard, order, clock):
    pending = await required(order)
    clock.advance(TTL + 1)
    renewed = await required(order)
    assert renewed != pending and order.sent == []
    assert events(guard, pending) == ["approval_requested", "approval_expired"]


async def test_an_approval_binds_the_notional_it_showed(guard, order, prices):
    approved = await required(order)
    guard.approvals.decide(approved, True)
    prices.ask = prices.ask * Decimal("1.03")  # the market moved 3 % up after the human said yes
    with pytest.raises(PolicyDenied) as err:
        await order()
    assert err.value.decision.code == "APPROVAL_REQUIRED" and "more than 2 %" in err.value.decision.reason
    assert order.sent == []


async def test_an_approval_allows_a_small_move_of_the_notional(guard, order, prices):
    approved = await required(order)
    guard.approvals.decide(approved, True)
    prices.ask = prices.ask * Decimal("1.015")
    assert isinstance(await order(), Placed) and len(order.sent) == 1

