"""POLICY.md's table "What adds exposure, and which checks apply", decided in one place (facts.adds_exposure and
engine.reducing), and the account-level leverage cap that binds every way to raise leverage."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.facts import adds_exposure
from binance_mcp.policy.loader import parse_text

D = Decimal
SPOT, FUT, CLOSE = "binance_spot_place_order", "binance_futures_place_order", "binance_futures_close_position"
LEV, MARGIN = "binance_futures_change_leverage", "binance_futures_set_margin_type"
KILL = "account: {kill_switch_file: /tmp/STOP}\n"


def load(text: str):
    return parse_text("version: 1\ndefault: allow\n" + textwrap.dedent(text), "t.yaml").policy


class Quotes:
    async def quote_asset(self, market, symbol):
        return "BTC" if symbol.endswith("BTC") else "USDT"


@pytest.mark.parametrize(("tool", "args", "facts", "adds"), [
    (SPOT, {"symbol": "BTCUSDT", "side": "BUY"}, Facts(), True),
    (SPOT, {"symbol": "BTCUSDT", "side": "SELL"}, Facts(), False),  # into a USD stablecoin
    (SPOT, {"symbol": "ETHBTC", "side": "SELL"}, Facts(), True),  # buys BTC
    (FUT, {"symbol": "BTCUSDT", "side": "BUY"}, Facts(), True),
    (FUT, {"symbol": "BTCUSDT", "side": "SELL", "reduceOnly": True}, Facts(), False),
    (FUT, {"symbol": "BTCUSDT", "side": "SELL", "closePosition": True}, Facts(), False),
    (FUT, {"symbol": "BTCUSDT", "side": "SELL", "positionSide": "LONG"}, Facts(), False),  # hedge-mode close
    (FUT, {"symbol": "BTCUSDT", "side": "SELL", "positionSide": "SHORT"}, Facts(), True),  # opens a short
    (CLOSE, {"symbol": "BTCUSDT"}, Facts(), False),
    (LEV, {"symbol": "BTCUSDT", "leverage": 10}, Facts(leverage=5), True),  # up
    (LEV, {"symbol": "BTCUSDT", "leverage": 3}, Facts(leverage=5), False),  # down
    (LEV, {"symbol": "BTCUSDT", "leverage": 3}, Facts(), True),  # current leverage unknown: the careful side
    (MARGIN, {"symbol": "BTCUSDT", "marginType": "ISOLATED"}, Facts(), True),
    ("binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": 1}, Facts(), False),
    ("binance_futures_cancel_all_orders", {"symbol": "BTCUSDT"}, Facts(), False),
])
async def test_what_adds_exposure(tool, args, facts, adds):
    assert await adds_exposure(Call(tool, args), facts, Quotes()) is adds


@pytest.mark.parametrize(("scope", "adds", "code"), [
    ("exposure", True, "KILL_SWITCH"),
    ("exposure", None, "KILL_SWITCH"),  # not known: fail closed
    ("exposure", False, "ALLOWED"),
    ("all", False, "KILL_SWITCH"),
])
def test_the_kill_switch_stops_what_adds_exposure_unless_its_scope_is_all(scope, adds, code):
    policy = load(f"account: {{kill_switch_file: /tmp/STOP, kill_switch_scope: {scope}}}\n")
    d = engine.decide(policy, Call("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"}),
                      Facts(adds_exposure=adds), Counters(kill_switch=True))
    assert d.code == code, d.reason


REDUCE = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "1", "reduceOnly": True}
OPEN = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}


@pytest.mark.parametrize(("rules", "tool", "args", "facts", "counters", "code"), [
    # A close bigger than the per-order cap, or than what is left of today's cap, still closes.
    (f"tools:\n  {CLOSE}: {{limits: {{max_notional_usd: 100, daily_notional_usd: 100}}}}\n", CLOSE,
     {"symbol": "BTCUSDT"}, Facts(notional_usd=D(90000)), Counters(daily_used={f"tool:{CLOSE}": D(100)}), "ALLOWED"),
    (f"tools:\n  {FUT}: {{limits: {{max_notional_usd: 100}}}}\n", FUT, REDUCE, Facts(notional_usd=D(90000)),
     Counters(), "ALLOWED"),
    (f"tools:\n  {FUT}: {{limits: {{max_notional_usd: 100}}}}\n", FUT, OPEN, Facts(notional_usd=D(90000)),
     Counters(), "NOTIONAL_OVER_LIMIT"),
    ("account: {daily_notional_usd: 100}\n", FUT, REDUCE, Facts(notional_usd=D(90000)),
     Counters(daily_used={"account": D(100)}), "ALLOWED"),
    # No approval_above for a reducing order.
    (f"tools:\n  {FUT}: {{approval_above: {{notional_usd: 10}}}}\n", FUT, REDUCE, Facts(notional_usd=D(90000)),
     Counters(), "ALLOWED"),
    (f"tools:\n  {FUT}: {{approval_above: {{notional_usd: 10}}}}\n", FUT, OPEN, Facts(notional_usd=D(90000)),
     Counters(), "APPROVAL_REQUIRED"),
    # Leverage and position caps never refuse a reduction, even when the position is already over the cap.
    (f"tools:\n  {FUT}: {{limits: {{max_leverage: 5}}}}\n", FUT, REDUCE, Facts(leverage=20), Counters(), "ALLOWED"),
    (f"tools:\n  {FUT}: {{limits: {{max_position_notional_usd: 100}}}}\n", FUT, REDUCE,
     Facts(position_after_usd=D(5000), reduces_position=True), Counters(), "ALLOWED"),
    # The tool's own deny and its rate limit apply to every call, adding or not.
    (f"tools:\n  {CLOSE}: {{action: deny}}\n", CLOSE, {"symbol": "BTCUSDT"}, Facts(), Counters(), "TOOL_DENIED"),
    (f"tools:\n  {CLOSE}: {{rate_limit: {{max: 1, window: 60}}}}\n", CLOSE, {"symbol": "BTCUSDT"}, Facts(),
     Counters(rate_wait={f"tool:{CLOSE}": 30.0}), "RATE_LIMITED"),
])
def test_reducing_risk_is_never_blocked_by_a_rule_against_adding_it(rules, tool, args, facts, counters, code):
    d = engine.decide(load(rules), Call(tool, args), facts, counters)
    assert d.code == code, d.reason


@pytest.mark.parametrize(("tool", "args", "facts", "code", "rule"), [
    (LEV, {"symbol": "BTCUSDT", "leverage": 10}, Facts(), "LEVERAGE_OVER_LIMIT", "account.max_leverage"),
    (LEV, {"symbol": "BTCUSDT", "leverage": 5}, Facts(), "ALLOWED", "default"),
    (FUT, OPEN, Facts(leverage=10), "LEVERAGE_OVER_LIMIT", "account.max_leverage"),  # raised earlier, then an order
    (FUT, OPEN, Facts(leverage=5), "ALLOWED", "default"),
    (FUT, OPEN, Facts(), "POLICY_ERROR", "account.max_leverage"),  # the leverage could not be read: fail closed
    (FUT, REDUCE, Facts(leverage=10), "ALLOWED", "default"),  # reducing is never blocked
])
def test_account_max_leverage_binds_the_leverage_tool_and_every_futures_order(tool, args, facts, code, rule):
    policy = load("account: {max_leverage: 5}\n")
    d = engine.decide(policy, Call(tool, args), facts, Counters())
    assert (d.code, d.rule) == (code, rule), d.reason


def test_account_max_leverage_makes_an_order_read_the_leverage():
    policy = load("account: {max_leverage: 5}\n")
    assert "leverage" in engine.needs(policy, Call(FUT, OPEN))
    assert "leverage" not in engine.needs(policy, Call(FUT, REDUCE))
