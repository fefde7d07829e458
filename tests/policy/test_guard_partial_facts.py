"""When a fact cannot be fetched the guard still reports an earlier denial, and otherwise fails closed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel

from binance_mcp.catalog import BY_NAME
from binance_mcp.errors import BinanceMcpError
from binance_mcp.policy.guard import PolicyDenied, PolicyGuard
from binance_mcp.policy.loader import parse_text
from binance_mcp.tools.spot import SpotOrderArgs

POLICY = """\
version: 1
default: deny
tools:
  binance_spot_place_order:
    limits: {symbols: [BTCUSDT], max_notional_usd: 500}
"""


class DownExchange:
    """A PriceSource whose every fetch fails, as an unreachable exchange would."""

    async def spot_book_top(self, symbol):
        raise BinanceMcpError("the exchange at 127.0.0.1:1 is unreachable", code="EXCHANGE_UNAVAILABLE")

    spot_price = mark_price = spot_book_top

    async def quote_asset(self, market, symbol):
        return "USDT"


class Ran(BaseModel):
    ran: bool = True


@pytest.fixture
def guard(tmp_path):
    g = PolicyGuard(parse_text(POLICY, "p.yaml"), tmp_path, DownExchange())
    yield g
    g.close()


async def _call(guard: PolicyGuard, **args) -> BaseModel:
    calls = []

    async def runner(a):
        calls.append(a)
        return Ran()

    spec = BY_NAME["binance_spot_place_order"]
    wrapped = guard.wrap(spec, None, runner)
    try:
        return await wrapped(SpotOrderArgs(side="BUY", type="MARKET", quantity=Decimal("0.001"), **args))
    finally:
        assert calls == []  # nothing ran


async def test_an_earlier_denial_wins_over_a_missing_price(guard):
    with pytest.raises(PolicyDenied) as err:
        await _call(guard, symbol="ETHUSDT")
    assert err.value.decision.code == "SYMBOL_NOT_ALLOWED"


async def test_a_missing_price_fails_closed_at_the_rule_that_needed_it(guard):
    with pytest.raises(PolicyDenied) as err:
        await _call(guard, symbol="BTCUSDT")
    d = err.value.decision
    assert d.code == "POLICY_ERROR" and d.rule.endswith("max_notional_usd")
    assert "unreachable" in d.reason and str(err.value).startswith("POLICY_ERROR: ")
