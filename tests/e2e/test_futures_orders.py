"""USD-M futures order tools over stdio: place (regular and conditional), cancel, cancel all, open orders,
order history and trade history."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC, ETH = "BTCUSDT", "ETHUSDT"
PLACE = "binance_futures_place_order"


def order(side: str = "BUY", type_: str = "MARKET", qty: str | None = "0.01", symbol: str = BTC, **extra) -> dict:
    args = {"symbol": symbol, "side": side, "type": type_, **extra}
    if qty is not None:
        args["quantity"] = qty
    return args


def posted(paper: Paper, since: int) -> list[tuple[str, dict]]:
    return [(e["path"], e["params"]) for e in paper.requests(since) if e["method"] == "POST"]


def position_amt(paper: Paper, symbol: str = BTC) -> Decimal:
    return sum((D(r["positionAmt"]) for r in paper.signed("/fapi/v3/positionRisk", symbol=symbol)), Decimal(0))


async def test_market_order_opens_a_position(paper: Paper):
    ask = D(paper.public("/fapi/v1/depth", symbol=BTC, limit=5)["asks"][0][0])
    before = paper.last_seq()
    o = await paper.call(PLACE, order(qty=0.01))
    assert o["conditional"] is False and o["algo_id"] is None and o["order_id"] > 0
    assert (o["status"], o["executed_qty"], D(o["avg_price"])) == ("FILLED", "0.01", ask)
    assert o["position_side"] == "BOTH" and o["reduce_only"] is False and o["update_time_iso"].endswith("Z")
    ((path, params),) = posted(paper, before)
    assert path == "/fapi/v1/order" and params["quantity"] == "0.01" and params["newOrderRespType"] == "RESULT"
    assert "timeInForce" not in params and "reduceOnly" not in params and "price" not in params
    assert position_amt(paper) == Decimal("0.01")


async def test_limit_order_rests_then_fills_when_price_comes(paper: Paper):
    o = await paper.call(PLACE, order(type_="LIMIT", price="95000", newClientOrderId="e2e.fut_1"))
    assert (o["status"], o["price"], o["time_in_force"], o["client_order_id"]) == ("NEW", "95000", "GTC", "e2e.fut_1")
    opened = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [x["order_id"] for x in opened["orders"]] == [o["order_id"]]
    paper.set_price(BTC, "94990", market="futures")
    hist = (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]
    assert [(x["order_id"], x["status"], x["executed_qty"]) for x in hist] == [(o["order_id"], "FILLED", "0.01")]
    assert position_amt(paper) == Decimal("0.01")


async def test_conditional_orders_go_to_the_algo_endpoint(paper: Paper):
    before = paper.last_seq()
    stop = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="90000",
                                         newClientOrderId="e2e-stop"))
    assert stop["conditional"] is True and stop["order_id"] is None and stop["algo_id"] > 0
    assert (stop["type"], stop["status"], stop["stop_price"], stop["client_order_id"]) == (
        "STOP_MARKET", "NEW", "90000", "e2e-stop")
    ((path, params),) = posted(paper, before)
    assert path == "/fapi/v1/algoOrder" and params["algoType"] == "CONDITIONAL"
    assert params["triggerPrice"] == "90000" and params["clientAlgoId"] == "e2e-stop"
    tp = await paper.call(PLACE, order(side="SELL", type_="TAKE_PROFIT", price="99900", stopPrice="100000"))
    assert tp["conditional"] is True and tp["price"] == "99900" and tp["time_in_force"] == "GTC"
    # The stop triggers when the last price falls through 90000: a market sell opens a short.
    paper.set_price(BTC, "89990", market="futures")
    assert position_amt(paper) == Decimal("-0.01")
    still_open = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [x["algo_id"] for x in still_open["orders"]] == [tp["algo_id"]]


async def test_place_order_bad_input_sends_nothing(paper: Paper):
    await paper.invalid(PLACE, order(type_="STOP_MARKET", side="SELL", stopPrice="90000", closePosition=True),
                        "closePosition", "remove quantity")
    await paper.invalid(PLACE, order(price="97000"), "takes no price")
    await paper.invalid(PLACE, order(type_="STOP", price="90000"), "needs stopPrice")
    await paper.invalid(PLACE, order(timeInForce="GTC"), "timeInForce")
    await paper.invalid(PLACE, order(qty=None), "needs quantity")
    await paper.invalid(PLACE, order(reduceOnly=True, positionSide="LONG"), "reduceOnly")
    await paper.invalid(PLACE, order(positionSide="UP"), "positionSide")
    await paper.invalid(PLACE, order(type_="TRAILING_STOP_MARKET"), "type")
    await paper.invalid(PLACE, order(qty="0"), "quantity")
    await paper.invalid(PLACE, order(newClientOrderId="x" * 37), "newClientOrderId")
    # ":" and "/" would reach Binance as a bad signature (-1022, "fix the API secret"): refused up front.
    await paper.invalid(PLACE, order(newClientOrderId="e2e:1"), "newClientOrderId")
    await paper.invalid(PLACE, order(newClientOrderId="e2e/1"), "newClientOrderId")


async def test_place_order_exchange_rejections(paper: Paper):
    await paper.rejected(PLACE, order(qty="100"), -2019, "Not enough margin")
    await paper.rejected(PLACE, order(qty="0.001"), -4164, "notional")
    await paper.rejected(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="98000"), -2021,
                         "other side of the current price")
    await paper.rejected(PLACE, order(side="SELL", reduceOnly=True), -2022, "reduce-only order needs an open position")
    await paper.rejected(PLACE, order(type_="LIMIT", price="110000"), -4016, "too far above the mark price")
    await paper.rejected(PLACE, order(type_="LIMIT", price="97100", timeInForce="GTX"), -5022, "post-only")
    await paper.rejected(PLACE, order(positionSide="LONG"), -4061, "one-way mode")
    await paper.unknown_symbol(PLACE, order(symbol="XRPUSDT", qty="100"), "Unknown symbol")
    await paper.rejected(PLACE, order(qty="0.0001"), -1111, "decimals")
    assert paper.state()["orders"]["futures"] == 0 and paper.state()["orders"]["algo"] == 0


async def test_cancel_regular_and_conditional_orders(paper: Paper):
    limit = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    stop = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="90000",
                                         newClientOrderId="stop-by-client-id"))
    stop2 = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="89000"))
    c1 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": limit["order_id"]})
    assert (c1["order_id"], c1["status"], c1["conditional"]) == (limit["order_id"], "CANCELED", False)
    c2 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "origClientOrderId": "stop-by-client-id"})
    assert (c2["algo_id"], c2["status"], c2["conditional"]) == (stop["algo_id"], "CANCELED", True)
    c3 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": stop2["algo_id"]})
    assert (c3["algo_id"], c3["status"], c3["type"]) == (stop2["algo_id"], "CANCELED", "STOP_MARKET")
    assert (await paper.call("binance_futures_open_orders"))["orders"] == []
    algo = {a["algoId"]: a["algoStatus"] for a in paper.signed("/fapi/v1/allAlgoOrders", symbol=BTC)}
    assert algo == {stop["algo_id"]: "CANCELED", stop2["algo_id"]: "CANCELED"}


async def test_cancel_order_failures(paper: Paper):
    tool = "binance_futures_cancel_order"
    await paper.invalid(tool, {"symbol": BTC}, "orderId or origClientOrderId")
    await paper.invalid(tool, {"symbol": BTC, "origClientOrderId": "bad id!"}, "origClientOrderId")
    await paper.invalid(tool, {"symbol": BTC, "origClientOrderId": "a:b"}, "origClientOrderId")
    await paper.rejected(tool, {"symbol": BTC, "orderId": 777}, -2011, "unknown or no longer open")


async def test_cancel_order_leaves_other_symbols_alone(paper: Paper):
    """The algo endpoints take no symbol: a conditional order of BTCUSDT must not die through ETHUSDT."""
    tool = "binance_futures_cancel_order"
    stop = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="90000"))
    await paper.rejected(tool, {"symbol": ETH, "orderId": stop["algo_id"]}, -2011)
    opened = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [(x["algo_id"], x["status"]) for x in opened["orders"]] == [(stop["algo_id"], "NEW")]


async def test_cancel_all_regular_and_conditional(paper: Paper):
    a = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    b = await paper.call(PLACE, order(side="SELL", type_="TAKE_PROFIT_MARKET", stopPrice="110000"))
    eth = await paper.call(PLACE, order(symbol=ETH, type_="LIMIT", qty="0.1", price="3300"))
    res = await paper.call("binance_futures_cancel_all_orders", {"symbol": BTC})
    assert res["symbol"] == BTC and res["count"] == 2
    got = {(o["order_id"], o["algo_id"], o["status"]) for o in res["cancelled"]}
    assert got == {(a["order_id"], None, "CANCELED"), (None, b["algo_id"], "CANCELED")}
    left = await paper.call("binance_futures_open_orders")
    assert [o["order_id"] for o in left["orders"]] == [eth["order_id"]]
    before = paper.last_seq()
    assert await paper.call("binance_futures_cancel_all_orders", {"symbol": BTC}) == {
        "symbol": BTC, "cancelled": [], "count": 0}
    assert not [e for e in paper.requests(before) if e["method"] == "DELETE"]  # nothing to cancel, nothing sent


async def test_cancel_all_failures(paper: Paper):
    await paper.invalid("binance_futures_cancel_all_orders", {"symbol": "BTC USDT"}, "symbol")
    await paper.unknown_symbol("binance_futures_cancel_all_orders", {"symbol": "XRPUSDT"})


async def test_open_orders_lists_both_kinds(paper: Paper):
    a = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    b = await paper.call(PLACE, order(side="SELL", type_="STOP", price="89900", stopPrice="90000"))
    c = await paper.call(PLACE, order(symbol=ETH, type_="LIMIT", qty="0.1", price="3300"))
    btc = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [(o["order_id"], o["algo_id"], o["conditional"]) for o in btc["orders"]] == [
        (a["order_id"], None, False), (None, b["algo_id"], True)]
    assert btc["orders"][1]["stop_price"] == "90000" and btc["orders"][1]["price"] == "89900"
    every = await paper.call("binance_futures_open_orders")
    assert every["total"] == 3 and {o["symbol"] for o in every["orders"]} == {BTC, ETH}
    assert c["order_id"] in [o["order_id"] for o in every["orders"]]
    two = await paper.call("binance_futures_open_orders", {"limit": 2})
    assert (two["count"], two["total"], two["truncated"]) == (2, 3, True)


async def test_open_orders_failures(paper: Paper):
    await paper.invalid("binance_futures_open_orders", {"limit": 1001}, "limit")
    await paper.unknown_symbol("binance_futures_open_orders", {"symbol": "XRPUSDT"})


async def test_order_history_all_statuses(paper: Paper):
    filled = await paper.call(PLACE, order())
    cancelled = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": cancelled["order_id"]})
    expired = await paper.call(PLACE, order(type_="LIMIT", price="90000", timeInForce="IOC"))
    assert expired["status"] == "EXPIRED"
    hist = await paper.call("binance_futures_order_history", {"symbol": BTC})
    assert [(o["order_id"], o["status"]) for o in hist["orders"]] == [
        (filled["order_id"], "FILLED"), (cancelled["order_id"], "CANCELED"), (expired["order_id"], "EXPIRED")]
    now = int(time.time() * 1000)
    part = await paper.call("binance_futures_order_history", {"symbol": BTC, "startTime": now - 6 * 86_400_000,
                                                              "endTime": now + 1000, "limit": 1})
    assert part["count"] == 1 and part["truncated"] is True and part["orders"][0]["order_id"] == filled["order_id"]


async def test_order_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_futures_order_history", {"symbol": BTC, "startTime": now - 8 * 86_400_000,
                                                          "endTime": now}, "7 days")
    await paper.invalid("binance_futures_order_history", {"symbol": BTC, "orderId": -1}, "orderId")
    await paper.unknown_symbol("binance_futures_order_history", {"symbol": "XRPUSDT"})


async def test_trade_history_reports_realised_pnl(paper: Paper):
    buy = await paper.call(PLACE, order(qty="0.02"))
    entry = D(buy["avg_price"])
    paper.set_price(BTC, "98000", market="futures")
    bid = D(paper.public("/fapi/v1/depth", symbol=BTC, limit=5)["bids"][0][0])
    sell = await paper.call(PLACE, order(side="SELL", qty="0.02", reduceOnly=True))
    assert sell["reduce_only"] is True and D(sell["avg_price"]) == bid
    trades = await paper.call("binance_futures_trade_history", {"symbol": BTC})
    assert trades["count"] == 2 and trades["truncated"] is False
    opening, closing = trades["trades"]
    assert (opening["order_id"], opening["side"], D(opening["realized_pnl"])) == (buy["order_id"], "BUY", 0)
    assert closing["order_id"] == sell["order_id"] and closing["side"] == "SELL" and closing["maker"] is False
    assert D(closing["realized_pnl"]) == (bid - entry) * Decimal("0.02") > 0
    assert D(closing["commission"]) == (bid * Decimal("0.02") * Decimal("0.0005")).quantize(Decimal("1E-8"))
    assert D(closing["quote_qty"]) == bid * Decimal("0.02") and closing["commission_asset"] == "USDT"
    since = await paper.call("binance_futures_trade_history", {"symbol": BTC, "fromId": closing["id"]})
    assert [t["id"] for t in since["trades"]] == [closing["id"]]


async def test_trade_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_futures_trade_history", {"symbol": BTC, "startTime": now, "endTime": now - 10},
                        "endTime must not be before startTime")
    await paper.invalid("binance_futures_trade_history", {"symbol": BTC, "fromId": 3, "endTime": now},
                        "fromId cannot be combined")
    await paper.unknown_symbol("binance_futures_trade_history", {"symbol": "XRPUSDT"})
