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


async def open_order(paper: Paper, key: str, value: int, symbol: str = BTC) -> dict:
    """The order (orderId or algoId) as binance_futures_open_orders lists it: a placement returns only what it
    found out, not the terms the call gave."""
    (o,) = [x for x in (await paper.call("binance_futures_open_orders", {"symbol": symbol}))["orders"]
            if x.get(key) == value]
    return o


async def test_market_order_opens_a_position(paper: Paper):
    ask = D(paper.public("/fapi/v1/depth", symbol=BTC, limit=5)["asks"][0][0])
    before = paper.last_seq()
    o = await paper.call(PLACE, order(qty=0.01))
    assert "algoId" not in o and o["orderId"] > 0  # a regular order: an orderId, no algoId
    assert set(o) == {"orderId", "clientOrderId", "status", "executedQty", "avgPrice"}
    assert (o["status"], o["executedQty"], D(o["avgPrice"])) == ("FILLED", "0.01", ask)
    hist = (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]
    (listed,) = [x for x in hist if x["orderId"] == o["orderId"]]
    assert listed["positionSide"] == "BOTH" and listed["reduceOnly"] is False
    assert listed["updateTimeIso"].endswith("Z") and listed["clientOrderId"] == o["clientOrderId"]
    ((path, params),) = posted(paper, before)
    assert path == "/fapi/v1/order" and params["quantity"] == "0.01" and params["newOrderRespType"] == "RESULT"
    assert "timeInForce" not in params and "reduceOnly" not in params and "price" not in params
    assert position_amt(paper) == Decimal("0.01")


async def test_limit_order_rests_then_fills_when_price_comes(paper: Paper):
    before = paper.last_seq()
    o = await paper.call(PLACE, order(type_="LIMIT", price="95000", newClientOrderId="e2e.fut_1"))
    assert (o["status"], o["clientOrderId"]) == ("NEW", "e2e.fut_1")
    ((_, params),) = posted(paper, before)
    assert params["timeInForce"] == "GTC"  # added for LIMIT
    opened = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [(x["orderId"], x["price"], x["origQty"]) for x in opened["orders"]] == [(o["orderId"], "95000", "0.01")]
    paper.set_price(BTC, "94990", market="futures")
    hist = (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]
    assert [(x["orderId"], x["status"], x["executedQty"]) for x in hist] == [(o["orderId"], "FILLED", "0.01")]
    assert position_amt(paper) == Decimal("0.01")


async def test_conditional_orders_go_to_the_algo_endpoint(paper: Paper):
    before = paper.last_seq()
    stop = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="90000",
                                         newClientOrderId="e2e-stop"))
    assert "orderId" not in stop and stop["algoId"] > 0  # a conditional order: an algoId, no orderId
    assert (stop["status"], stop["clientOrderId"]) == ("NEW", "e2e-stop")
    listed = await open_order(paper, "algoId", stop["algoId"])
    assert (listed["type"], listed["status"], listed["stopPrice"], listed["clientOrderId"]) == (
        "STOP_MARKET", "NEW", "90000", "e2e-stop")
    ((path, params),) = posted(paper, before)
    assert path == "/fapi/v1/algoOrder" and params["algoType"] == "CONDITIONAL"
    assert params["triggerPrice"] == "90000" and params["clientAlgoId"] == "e2e-stop"
    before = paper.last_seq()
    tp = await paper.call(PLACE, order(side="SELL", type_="TAKE_PROFIT", price="99900", stopPrice="100000"))
    assert tp["algoId"] > 0 and (await open_order(paper, "algoId", tp["algoId"]))["price"] == "99900"
    ((_, params),) = posted(paper, before)
    assert params["timeInForce"] == "GTC"
    # The stop triggers when the last price falls through 90000: a market sell opens a short.
    paper.set_price(BTC, "89990", market="futures")
    assert position_amt(paper) == Decimal("-0.01")
    still_open = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [x["algoId"] for x in still_open["orders"]] == [tp["algoId"]]


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
    stop3 = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="88000"))
    c1 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": limit["orderId"]})
    assert c1 == {"orderId": limit["orderId"], "clientOrderId": limit["clientOrderId"], "executedQty": "0"}
    c2 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "origClientOrderId": stop["clientOrderId"]})
    assert (c2["algoId"], c2["clientOrderId"]) == (stop["algoId"], "stop-by-client-id") and "orderId" not in c2
    # The id the placement returned, under the name it came with; and an algoId given as orderId.
    c3 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "algoId": stop2["algoId"]})
    assert c3["algoId"] == stop2["algoId"] and "orderId" not in c3
    c4 = await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": stop3["algoId"]})
    assert c4["algoId"] == stop3["algoId"]
    assert (await paper.call("binance_futures_open_orders"))["orders"] == []
    history = (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]
    hist = {o["orderId"]: o["status"] for o in history}
    assert hist == {limit["orderId"]: "CANCELED"}
    algo = {a["algoId"]: a["algoStatus"] for a in paper.signed("/fapi/v1/allAlgoOrders", symbol=BTC)}
    assert algo == {stop["algoId"]: "CANCELED", stop2["algoId"]: "CANCELED", stop3["algoId"]: "CANCELED"}


async def test_cancel_order_failures(paper: Paper):
    tool = "binance_futures_cancel_order"
    await paper.invalid(tool, {"symbol": BTC}, "orderId, algoId or origClientOrderId")
    await paper.invalid(tool, {"symbol": BTC, "algoId": 5, "orderId": 5}, "algoId names the order on its own")
    await paper.invalid(tool, {"symbol": BTC, "algoId": 0}, "algoId")
    await paper.invalid(tool, {"symbol": BTC, "clientOrderId": "x"}, "pass it as origClientOrderId")
    await paper.invalid(tool, {"symbol": BTC, "origClientOrderId": "bad id!"}, "origClientOrderId")
    await paper.invalid(tool, {"symbol": BTC, "origClientOrderId": "a:b"}, "origClientOrderId")
    await paper.rejected(tool, {"symbol": BTC, "orderId": 777}, -2011, "unknown or no longer open")
    text = await paper.error(tool, {"symbol": BTC, "algoId": 777})  # no such conditional order: Binance says so
    assert text.startswith("EXCHANGE_REJECTED: ") and "(Binance code -2013)" in text, text


async def test_cancel_order_leaves_other_symbols_alone(paper: Paper):
    """The algo endpoints take no symbol: a conditional order of BTCUSDT must not die through ETHUSDT."""
    tool = "binance_futures_cancel_order"
    stop = await paper.call(PLACE, order(side="SELL", type_="STOP_MARKET", stopPrice="90000"))
    await paper.rejected(tool, {"symbol": ETH, "orderId": stop["algoId"]}, -2011)
    before = paper.state()["last_seq"]
    text = await paper.error(tool, {"symbol": ETH, "algoId": stop["algoId"]})
    assert text.startswith("INVALID_INPUT: ") and "another symbol" in text and "nothing was cancelled" in text, text
    assert not [e for e in paper.requests(before) if e["method"] == "DELETE"]
    opened = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [(x["algoId"], x["status"]) for x in opened["orders"]] == [(stop["algoId"], "NEW")]


async def test_cancel_all_regular_and_conditional(paper: Paper):
    a = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    b = await paper.call(PLACE, order(side="SELL", type_="TAKE_PROFIT_MARKET", stopPrice="110000"))
    eth = await paper.call(PLACE, order(symbol=ETH, type_="LIMIT", qty="0.1", price="3300"))
    res = await paper.call("binance_futures_cancel_all_orders", {"symbol": BTC})
    assert set(res) == {"cancelled"} and len(res["cancelled"]) == 2
    got = {(o.get("orderId"), o.get("algoId"), o["clientOrderId"]) for o in res["cancelled"]}
    assert got == {(a["orderId"], None, a["clientOrderId"]), (None, b["algoId"], b["clientOrderId"])}
    history = (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]
    hist = {o["orderId"]: o["status"] for o in history}
    assert hist == {a["orderId"]: "CANCELED"}
    algo = {x["algoId"]: x["algoStatus"] for x in paper.signed("/fapi/v1/allAlgoOrders", symbol=BTC)}
    assert algo == {b["algoId"]: "CANCELED"}
    left = await paper.call("binance_futures_open_orders")
    assert [o["orderId"] for o in left["orders"]] == [eth["orderId"]]
    before = paper.last_seq()
    assert await paper.call("binance_futures_cancel_all_orders", {"symbol": BTC}) == {"cancelled": []}
    assert not [e for e in paper.requests(before) if e["method"] == "DELETE"]  # nothing to cancel, nothing sent


async def test_cancel_all_failures(paper: Paper):
    await paper.invalid("binance_futures_cancel_all_orders", {"symbol": "BTC USDT"}, "symbol")
    await paper.unknown_symbol("binance_futures_cancel_all_orders", {"symbol": "XRPUSDT"})


async def test_open_orders_lists_both_kinds(paper: Paper):
    a = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    b = await paper.call(PLACE, order(side="SELL", type_="STOP", price="89900", stopPrice="90000"))
    c = await paper.call(PLACE, order(symbol=ETH, type_="LIMIT", qty="0.1", price="3300"))
    btc = await paper.call("binance_futures_open_orders", {"symbol": BTC})
    assert [(o.get("orderId"), o.get("algoId")) for o in btc["orders"]] == [(a["orderId"], None), (None, b["algoId"])]
    assert btc["orders"][1]["stopPrice"] == "90000" and btc["orders"][1]["price"] == "89900"
    assert btc["orders"][1]["type"] == "STOP" and btc["orders"][0]["type"] == "LIMIT"
    every = await paper.call("binance_futures_open_orders")
    assert every["total"] == 3 and {o["symbol"] for o in every["orders"]} == {BTC, ETH}
    assert c["orderId"] in [o.get("orderId") for o in every["orders"]]
    two = await paper.call("binance_futures_open_orders", {"limit": 2})
    assert (len(two["orders"]), two["total"], two["truncated"]) == (2, 3, True)


async def test_open_orders_failures(paper: Paper):
    await paper.invalid("binance_futures_open_orders", {"limit": 1001}, "limit")
    await paper.unknown_symbol("binance_futures_open_orders", {"symbol": "XRPUSDT"})


async def test_order_history_all_statuses(paper: Paper):
    filled = await paper.call(PLACE, order())
    cancelled = await paper.call(PLACE, order(type_="LIMIT", price="90000"))
    await paper.call("binance_futures_cancel_order", {"symbol": BTC, "orderId": cancelled["orderId"]})
    expired = await paper.call(PLACE, order(type_="LIMIT", price="90000", timeInForce="IOC"))
    assert expired["status"] == "EXPIRED"
    hist = await paper.call("binance_futures_order_history", {"symbol": BTC})
    assert [(o["orderId"], o["status"]) for o in hist["orders"]] == [
        (filled["orderId"], "FILLED"), (cancelled["orderId"], "CANCELED"), (expired["orderId"], "EXPIRED")]
    now = int(time.time() * 1000)
    part = await paper.call("binance_futures_order_history", {"symbol": BTC, "startTime": now - 6 * 86_400_000,
                                                              "endTime": now + 1000, "limit": 1})
    assert len(part["orders"]) == 1 and part["truncated"] is True and part["orders"][0]["orderId"] == filled["orderId"]


async def test_order_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_futures_order_history", {"symbol": BTC, "startTime": now - 8 * 86_400_000,
                                                          "endTime": now}, "7 days")
    await paper.invalid("binance_futures_order_history", {"symbol": BTC, "orderId": -1}, "orderId")
    await paper.unknown_symbol("binance_futures_order_history", {"symbol": "XRPUSDT"})


async def test_trade_history_reports_realised_pnl(paper: Paper):
    buy = await paper.call(PLACE, order(qty="0.02"))
    entry = D(buy["avgPrice"])
    paper.set_price(BTC, "98000", market="futures")
    bid = D(paper.public("/fapi/v1/depth", symbol=BTC, limit=5)["bids"][0][0])
    sell = await paper.call(PLACE, order(side="SELL", qty="0.02", reduceOnly=True))
    assert D(sell["avgPrice"]) == bid
    hist = {o["orderId"]: o for o in (await paper.call("binance_futures_order_history", {"symbol": BTC}))["orders"]}
    assert hist[sell["orderId"]]["reduceOnly"] is True and hist[buy["orderId"]]["reduceOnly"] is False
    trades = await paper.call("binance_futures_trade_history", {"symbol": BTC})
    assert trades["total"] == 2 and trades["truncated"] is False
    assert trades["columns"] == ["id", "orderId", "time", "maker", "side", "positionSide", "price", "qty", "quoteQty",
                                 "realizedPnl", "commission", "commissionAsset"]
    opening, closing = (dict(zip(trades["columns"], row, strict=True)) for row in trades["trades"])
    assert (opening["orderId"], opening["side"], D(opening["realizedPnl"])) == (buy["orderId"], "BUY", 0)
    assert closing["orderId"] == sell["orderId"] and closing["side"] == "SELL" and closing["maker"] is False
    assert closing["positionSide"] == "BOTH" and opening["time"] <= closing["time"]
    assert D(closing["realizedPnl"]) == (bid - entry) * Decimal("0.02") > 0
    assert D(closing["commission"]) == (bid * Decimal("0.02") * Decimal("0.0005")).quantize(Decimal("1E-8"))
    assert D(closing["quoteQty"]) == bid * Decimal("0.02") and closing["commissionAsset"] == "USDT"
    since = await paper.call("binance_futures_trade_history", {"symbol": BTC, "fromId": closing["id"]})
    assert [row[0] for row in since["trades"]] == [closing["id"]]


async def test_trade_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_futures_trade_history", {"symbol": BTC, "startTime": now, "endTime": now - 10},
                        "endTime must not be before startTime")
    await paper.invalid("binance_futures_trade_history", {"symbol": BTC, "fromId": 3, "endTime": now},
                        "fromId cannot be combined")
    await paper.unknown_symbol("binance_futures_trade_history", {"symbol": "XRPUSDT"})
