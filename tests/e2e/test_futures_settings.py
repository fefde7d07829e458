"""USD-M futures settings and closing over stdio: binance_futures_change_leverage,
binance_futures_set_margin_type, binance_futures_close_position."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC, ETH = "BTCUSDT", "ETHUSDT"
PLACE = "binance_futures_place_order"


def symbol_config(paper: Paper, symbol: str) -> dict:
    (row,) = paper.signed("/fapi/v1/symbolConfig", symbol=symbol)
    return row


def positions(paper: Paper, symbol: str | None = None) -> dict[tuple[str, str], Decimal]:
    rows = paper.signed("/fapi/v3/positionRisk", symbol=symbol)
    return {(r["symbol"], r["positionSide"]): D(r["positionAmt"]) for r in rows if D(r["positionAmt"])}


def max_notional_at(paper: Paper, symbol: str, leverage: int) -> Decimal:
    """From the exchange's own brackets: the largest notional cap among brackets that allow this leverage."""
    brackets = paper.signed("/fapi/v1/leverageBracket", symbol=symbol)["brackets"]
    return max(D(b["notionalCap"]) for b in brackets if b["initialLeverage"] >= leverage)


async def test_change_leverage_sets_it_and_reports_the_cap(paper: Paper):
    for lev in (50, 125, 1):
        r = await paper.call("binance_futures_change_leverage", {"symbol": "btcusdt", "leverage": lev})
        assert r == {"leverage": lev, "maxNotionalValue": str(max_notional_at(paper, BTC, lev))}
        assert symbol_config(paper, BTC)["leverage"] == lev
    assert r["maxNotionalValue"] == "1800000000"
    # The position tool reads it back.
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.002"})
    (p,) = (await paper.call("binance_futures_positions"))["positions"]
    assert p["leverage"] == 1


async def test_change_leverage_failures(paper: Paper):
    tool = "binance_futures_change_leverage"
    await paper.invalid(tool, {"symbol": BTC, "leverage": 0}, "leverage")
    await paper.invalid(tool, {"symbol": BTC, "leverage": 126}, "leverage")
    await paper.invalid(tool, {"symbol": BTC, "leverage": 2.5}, "leverage")
    await paper.invalid(tool, {"leverage": 5}, "symbol")
    # SOLUSDT's brackets stop at 75x.
    await paper.rejected(tool, {"symbol": "SOLUSDT", "leverage": 100}, -4028, "not allowed for this symbol")
    assert symbol_config(paper, "SOLUSDT")["leverage"] == 20
    # A 0.6 BTC position (about 58k notional) is above the 50k cap of 125x.
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.6"})
    await paper.rejected(tool, {"symbol": BTC, "leverage": 125}, -2027, "lower the leverage")
    await paper.unknown_symbol(tool, {"symbol": "XRPUSDT", "leverage": 5})


async def test_set_margin_type_and_no_op(paper: Paper):
    tool = "binance_futures_set_margin_type"
    assert await paper.call(tool, {"symbol": BTC, "marginType": "ISOLATED"}) == {"changed": True}
    assert symbol_config(paper, BTC)["marginType"] == "ISOLATED"
    # Already ISOLATED: a no-op, reported as such, not an error.
    assert await paper.call(tool, {"symbol": BTC, "marginType": "ISOLATED"}) == {"changed": False}
    assert symbol_config(paper, BTC)["marginType"] == "ISOLATED"
    assert await paper.call(tool, {"symbol": BTC, "marginType": "CROSSED"}) == {"changed": True}
    assert symbol_config(paper, BTC)["marginType"] == "CROSSED"


async def test_set_margin_type_failures(paper: Paper):
    tool = "binance_futures_set_margin_type"
    await paper.invalid(tool, {"symbol": BTC, "marginType": "CROSS"}, "marginType")
    await paper.invalid(tool, {"symbol": BTC}, "marginType")
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "90000"})
    await paper.rejected(tool, {"symbol": BTC, "marginType": "ISOLATED"}, -4047, "cancel them first")
    await paper.call("binance_futures_cancel_all_orders", {"symbol": BTC})
    await paper.call(PLACE, {"symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.01"})
    await paper.rejected(tool, {"symbol": BTC, "marginType": "ISOLATED"}, -4048, "close it first")
    assert symbol_config(paper, BTC)["marginType"] == "CROSSED"
    await paper.unknown_symbol(tool, {"symbol": "XRPUSDT", "marginType": "ISOLATED"})


async def test_close_position_flattens_one_symbol_exactly(paper: Paper):
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.013"})
    await paper.call(PLACE, {"symbol": ETH, "side": "SELL", "type": "MARKET", "quantity": "0.5"})
    assert positions(paper) == {(BTC, "BOTH"): Decimal("0.013"), (ETH, "BOTH"): Decimal("-0.5")}
    before = paper.last_seq()
    res = await paper.call("binance_futures_close_position", {"symbol": BTC})
    assert set(res) == {"closed"}  # no note: there was a position to close
    (o,) = res["closed"]
    assert (o["side"], o["positionSide"], o["executedQty"], o["status"]) == ("SELL", "BOTH", "0.013", "FILLED")
    assert D(o["avgPrice"]) > 0 and o["orderId"] > 0
    orders = [e["params"] for e in paper.requests(before) if e["method"] == "POST"]
    assert len(orders) == 1 and orders[0]["reduceOnly"] == "true" and orders[0]["quantity"] == "0.013"
    assert orders[0]["type"] == "MARKET" and orders[0]["newClientOrderId"] == o["clientOrderId"]
    hist = {x["orderId"]: x for x in (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]}
    assert (hist[o["orderId"]]["type"], hist[o["orderId"]]["origQty"], hist[o["orderId"]]["reduceOnly"]) == (
        "MARKET", "0.013", True)
    assert positions(paper) == {(ETH, "BOTH"): Decimal("-0.5")}  # ETH untouched
    # The short closes with a BUY.
    eth = await paper.call("binance_futures_close_position", {"symbol": "ethusdt", "positionSide": "BOTH"})
    assert [(c["side"], c["executedQty"]) for c in eth["closed"]] == [("BUY", "0.5")]
    assert positions(paper) == {}
    assert (await paper.call("binance_futures_positions"))["positions"] == []


async def test_close_position_with_nothing_open(paper: Paper):
    before = paper.last_seq()
    res = await paper.call("binance_futures_close_position", {"symbol": BTC})
    assert res == {"closed": [], "note": "no open position to close"}
    assert not [e for e in paper.requests(before) if e["method"] == "POST"]
    # One-way mode has no SHORT side: nothing to close there either, and the long stays.
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.002"})
    res = await paper.call("binance_futures_close_position", {"symbol": BTC, "positionSide": "SHORT"})
    assert res["closed"] == [] and positions(paper) == {(BTC, "BOTH"): Decimal("0.002")}


async def test_close_position_in_hedge_mode(paper: Paper):
    assert paper.signed("/fapi/v1/positionSide/dual", "POST", dualSidePosition="true") == {
        "code": 200, "msg": "success"}
    await paper.call(PLACE, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.004",
                             "positionSide": "LONG"})
    await paper.call(PLACE, {"symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.003",
                             "positionSide": "SHORT"})
    assert positions(paper) == {(BTC, "LONG"): Decimal("0.004"), (BTC, "SHORT"): Decimal("-0.003")}
    pos = await paper.call("binance_futures_positions", {"symbol": BTC})
    assert sorted((p["positionSide"], p["positionAmt"]) for p in pos["positions"]) == [
        ("LONG", "0.004"), ("SHORT", "-0.003")]
    before = paper.last_seq()
    res = await paper.call("binance_futures_close_position", {"symbol": BTC, "positionSide": "LONG"})
    assert [(o["side"], o["positionSide"], o["executedQty"]) for o in res["closed"]] == [("SELL", "LONG", "0.004")]
    (params,) = [e["params"] for e in paper.requests(before) if e["method"] == "POST"]
    assert params["positionSide"] == "LONG" and "reduceOnly" not in params  # hedge mode takes no reduceOnly
    assert positions(paper) == {(BTC, "SHORT"): Decimal("-0.003")}
    res = await paper.call("binance_futures_close_position", {"symbol": BTC})
    assert [(o["side"], o["positionSide"]) for o in res["closed"]] == [("BUY", "SHORT")]
    assert positions(paper) == {}


async def test_close_position_failures(paper: Paper):
    await paper.invalid("binance_futures_close_position", {"symbol": BTC, "positionSide": "ALL"}, "positionSide")
    await paper.invalid("binance_futures_close_position", {"symbol": BTC, "quantity": "1"}, "unknown argument")
    await paper.unknown_symbol("binance_futures_close_position", {"symbol": "XRPUSDT"})
