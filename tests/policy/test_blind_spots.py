"""The guard's former blind spots, probed as a hostile agent would, checked on the simulator's own state: orders
that wait, prices where orders fill, reducing that must never be blocked, leverage raised another way, and the
account's position mode. One standalone simulator is the account; ``binance-mcp serve`` trades it over stdio."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.policy.account import futures_position, order_posts, serve_on
from tests.policy.test_guard_helpers import D, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

FUT = "binance_futures_place_order"
CLOSE = "binance_futures_close_position"


def mark_of(binance) -> Decimal:
    return D(binance.futures_mark_price(symbol="BTCUSDT")["markPrice"])


async def test_resting_and_conditional_orders_count_toward_the_position_cap(acct, binance, tmp_path):
    mark = mark_of(binance)
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        tools:
          binance_futures_place_order:
            limits: {max_position_notional_usd: 300}
        """)
    resting = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002",
               "price": str((mark * D("0.9")).quantize(D("0.1")))}  # rests under the market: about 194 USD at mark
    stop = {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.002",
            "stopPrice": str((mark * D("1.01")).quantize(D("0.1")))}
    async with serve_on(acct, tmp_path / "state", policy) as server:
        await server.ok(FUT, resting)
        # Each alone is under the cap; with the resting one filled, either would take the position over it.
        await server.denied(FUT, resting, "POSITION_OVER_LIMIT")
        await server.denied(FUT, stop, "POSITION_OVER_LIMIT")
    assert len(binance.futures_get_open_orders(symbol="BTCUSDT")) == 1
    assert binance.futures_get_open_orders(symbol="BTCUSDT", conditional=True) == []


async def test_a_stop_far_from_the_market_is_counted_at_its_stop_price(acct, binance, tmp_path):
    mark = mark_of(binance)
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        tools:
          binance_futures_place_order:
            limits: {max_notional_usd: 250}
        """)
    far = {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.002",
           "stopPrice": str((mark * D("1.5")).quantize(D("0.1")))}  # 194 USD at mark, 291 USD at its stop
    async with serve_on(acct, tmp_path / "state", policy) as server:
        seq = acct.control("state")["last_seq"]
        text = await server.denied(FUT, far, "NOTIONAL_OVER_LIMIT")
        assert "291." in text, text
        assert order_posts(acct, seq, "/fapi/v1/algoOrder") == []
        await server.ok(FUT, {**far, "stopPrice": str((mark * D("1.2")).quantize(D("0.1")))})  # 232.8 USD: fits


async def test_a_close_larger_than_the_order_cap_still_flattens(acct, binance, tmp_path):
    binance.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")  # about 970 USD
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        tools:
          binance_futures_close_position:
            limits: {max_notional_usd: 100, daily_notional_usd: 100}
          binance_futures_place_order:
            limits: {max_notional_usd: 100}
        """)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        await server.ok(FUT, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.004",
                              "reduceOnly": True})  # a reduce-only order over the per-order cap
        closed = await server.ok(CLOSE, {"symbol": "BTCUSDT"})
        assert len(closed["closed"]) == 1
        status = {d["rule"]: d for d in (await server.status())["daily"]}
        assert D(status["tools.binance_futures_close_position.limits.daily_notional_usd"]["used_usd"]) > 100  # recorded
    assert futures_position(binance) == 0


async def test_leverage_raised_another_way_is_still_capped(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account: {max_leverage: 5}
        """)
    binance.futures_change_leverage(symbol="BTCUSDT", leverage=5)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        await server.denied("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 10},
                            "LEVERAGE_OVER_LIMIT")
        await server.ok(FUT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"})
        binance.futures_change_leverage(symbol="BTCUSDT", leverage=20)  # raised by hand, outside the server
        text = await server.denied(FUT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
                                   "LEVERAGE_OVER_LIMIT")
        assert "account.max_leverage" in text
        await server.ok(FUT, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.002",
                              "reduceOnly": True})  # reducing still works
    assert futures_position(binance) == D("0.002") - D("0.002")


async def test_a_position_side_that_does_not_match_the_account_mode_is_invalid_input(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        tools:
          binance_futures_place_order:
            limits: {max_position_notional_usd: 1000}
        """)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    async with serve_on(acct, tmp_path / "state", policy) as server:
        text = await server.denied(FUT, {**order, "positionSide": "LONG"}, "INVALID_INPUT")  # one-way account
        assert "one-way mode" in text, text
        binance.futures_change_position_mode(dualSidePosition="true")  # by hand, while the server runs
        binance.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.009",
                                     positionSide="SHORT")  # a short leg of about 870 USD
        # The server read the mode a moment ago (it keeps it 30 s): the exchange refuses the order (-4061, nothing
        # placed) and the server reads the mode again, so the next such order is refused before it is sent.
        first = await server.error(FUT, order)
        assert "(Binance code -4061)" in first, first
        text = await server.denied(FUT, order, "INVALID_INPUT")  # hedge mode needs LONG or SHORT
        assert "hedge mode" in text, text
        # Each leg is checked as it is: the LONG leg is empty, so a long of 194 USD fits; more short does not.
        await server.ok(FUT, {**order, "positionSide": "LONG"})
        await server.denied(FUT, {**order, "side": "SELL", "positionSide": "SHORT"}, "POSITION_OVER_LIMIT")
    legs = {r["positionSide"]: D(r["positionAmt"]) for r in binance.futures_position_information(symbol="BTCUSDT")}
    assert legs == {"LONG": D("0.002"), "SHORT": D("-0.009")}
