"""Spot trading tools over stdio: place, cancel, cancel all, open orders, order history, trade history."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC = "BTCUSDT"


def limit_buy(price: str = "90000", qty: str = "0.01", **extra) -> dict:
    return {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price, **extra}


def sent_orders(paper: Paper, since: int) -> list[dict]:
    return [e["params"] for e in paper.requests(since) if e["path"] == "/api/v3/order" and e["method"] == "POST"]


async def listed(paper: Paper, order_id: int) -> dict:
    """The order as binance_spot_order_history lists it (a placement returns only what it found out)."""
    hist = (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]
    (order,) = [o for o in hist if o["orderId"] == order_id]
    return order


async def test_place_limit_order_rests_and_locks_quote(paper: Paper):
    before = paper.last_seq()
    o = await paper.call("binance_spot_place_order", limit_buy(price="90000.5", qty=0.01,
                                                               newClientOrderId="e2e-limit-1"))
    # A placement says what it found out (the terms are the call's own arguments, not repeated).
    assert set(o) == {"orderId", "clientOrderId", "status", "executedQty", "cummulativeQuoteQty", "fills"}
    assert o["status"] == "NEW" and (o["executedQty"], o["cummulativeQuoteQty"], o["fills"]) == ("0", "0", [])
    assert o["clientOrderId"] == "e2e-limit-1"
    rest = await listed(paper, o["orderId"])
    assert rest["symbol"] == BTC and rest["side"] == "BUY" and rest["type"] == "LIMIT" and rest["status"] == "NEW"
    assert (rest["price"], rest["origQty"], rest["executedQty"]) == ("90000.5", "0.01", "0")
    assert rest["clientOrderId"] == "e2e-limit-1"
    assert rest["timeIso"].endswith("Z") and abs(rest["time"] - time.time() * 1000) < 5000
    # What reached the exchange: decimal strings (the float 0.01 too), GTC added for LIMIT, FULL response.
    (params,) = sent_orders(paper, before)
    assert params["quantity"] == "0.01" and params["price"] == "90000.5" and params["timeInForce"] == "GTC"
    assert params["newClientOrderId"] == "e2e-limit-1" and params["newOrderRespType"] == "FULL"
    assert "quoteOrderQty" not in params and "stopPrice" not in params
    assert paper.spot_balance("USDT") == (Decimal("9099.995"), Decimal("900.005"))
    opened = await paper.call("binance_spot_open_orders", {"symbol": BTC})
    assert [x["orderId"] for x in opened["orders"]] == [o["orderId"]]


async def test_place_market_orders_fill_against_the_book(paper: Paper):
    book = paper.public("/api/v3/depth", symbol=BTC, limit=5)
    best_ask = D(book["asks"][0][0])
    before = paper.last_seq()
    o = await paper.call("binance_spot_place_order", {"symbol": "btcusdt", "side": "BUY", "type": "MARKET",
                                                      "quantity": "0.002"})
    assert o["status"] == "FILLED" and o["executedQty"] == "0.002"
    assert [(D(f["price"]), D(f["qty"])) for f in o["fills"]] == [(best_ask, Decimal("0.002"))]
    assert D(o["cummulativeQuoteQty"]) == best_ask * Decimal("0.002")
    assert o["fills"][0]["commissionAsset"] == "BTC" and D(o["fills"][0]["commission"]) == Decimal("0.000002")
    assert "price" not in await listed(paper, o["orderId"])  # a MARKET order has no price: left out, not "0"
    (params,) = sent_orders(paper, before)
    assert "timeInForce" not in params and "price" not in params  # MARKET takes neither

    # quoteOrderQty: spend 100 USDT; the quantity is what 100 USDT buys, rounded down to the step size.
    q = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                      "quoteOrderQty": "100"})
    assert q["status"] == "FILLED" and D(q["cummulativeQuoteQty"]) <= 100
    assert D(q["executedQty"]) == (Decimal(100) / best_ask).quantize(Decimal("0.00001"), rounding="ROUND_DOWN")

    # Sell what was bought at the best bid: the commission is now paid in USDT.
    sell = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "SELL", "type": "MARKET",
                                                         "quantity": "0.001"})
    assert sell["status"] == "FILLED" and sell["fills"][0]["commissionAsset"] == "USDT"
    assert D(sell["fills"][0]["price"]) == D(book["bids"][0][0])


async def test_stop_loss_limit_waits_for_its_trigger(paper: Paper):
    paper.balances(spot={"BTC": "0.1"})
    stop = await paper.call("binance_spot_place_order", {
        "symbol": BTC, "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "0.01", "price": "95000",
        "stopPrice": "95500", "timeInForce": "GTC"})
    assert stop["status"] == "NEW"
    listed_stop = await listed(paper, stop["orderId"])
    assert listed_stop["stopPrice"] == "95500" and listed_stop["price"] == "95000"
    assert paper.spot_balance("BTC") == (Decimal("0.09"), Decimal("0.01"))
    maker = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "SELL", "type": "LIMIT_MAKER",
                                                          "quantity": "0.01", "price": "99000"})
    assert maker["status"] == "NEW"
    paper.set_price(BTC, "95400")  # crosses the stop
    hist = {o["orderId"]: o for o in (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]}
    assert hist[stop["orderId"]]["status"] == "FILLED" and hist[stop["orderId"]]["executedQty"] == "0.01"
    assert hist[maker["orderId"]]["status"] == "NEW"


async def test_place_order_bad_input_sends_nothing(paper: Paper):
    tool = "binance_spot_place_order"
    await paper.invalid(tool, {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.01"}, "needs price")
    await paper.invalid(tool, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01",
                               "quoteOrderQty": "10"}, "exactly one of quantity or quoteOrderQty")
    await paper.invalid(tool, limit_buy(qty="-0.01"), "quantity")
    await paper.invalid(tool, limit_buy(qty="NaN"), "quantity")
    await paper.invalid(tool, {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01",
                               "timeInForce": "GTC"}, "timeInForce")
    await paper.invalid(tool, limit_buy(stopPrice="95000"), "takes no stopPrice")
    await paper.invalid(tool, {"symbol": BTC, "side": "HOLD", "type": "MARKET", "quantity": "1"}, "side")
    await paper.invalid(tool, limit_buy(newClientOrderId="has space"), "newClientOrderId")
    await paper.invalid(tool, limit_buy(qty=None) | {"qty": "0.01"}, "qty", "unknown argument")
    await paper.invalid(tool, limit_buy() | {"symbol": "BTC-USDT"}, "symbol")


async def test_place_order_exchange_rejections(paper: Paper):
    tool = "binance_spot_place_order"
    await paper.rejected(tool, limit_buy(qty="1"), -2010, "insufficient balance", "reduce the quantity")
    await paper.rejected(tool, limit_buy(qty="0.00001"), -1013, "NOTIONAL", "binance_check_order_precision")
    await paper.rejected(tool, limit_buy(price="90000.001"), -1013, "PRICE_FILTER")
    await paper.rejected(tool, limit_buy(qty="0.000015"), -1013, "LOT_SIZE")
    await paper.unknown_symbol(tool, limit_buy() | {"symbol": "FOOUSDT"}, "Unknown symbol", "binance_exchange_info")
    await paper.rejected(tool, {"symbol": BTC, "side": "BUY", "type": "STOP_LOSS_LIMIT", "quantity": "0.001",
                                "price": "96000", "stopPrice": "96000"}, -2010, "trigger immediately", "stopPrice")
    await paper.rejected(tool, {"symbol": BTC, "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001",
                                "price": "98000"}, -2010, "LIMIT_MAKER must not cross")
    assert paper.spot_balance("USDT") == (Decimal("10000"), Decimal("0"))  # nothing was placed


async def test_cancel_order_unlocks_and_records(paper: Paper):
    a = await paper.call("binance_spot_place_order", limit_buy(price="91000"))
    b = await paper.call("binance_spot_place_order", limit_buy(price="92000", newClientOrderId="cancel-me"))
    assert paper.spot_balance("USDT") == (Decimal("8170"), Decimal("1830"))
    c1 = await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": a["orderId"]})
    assert c1 == {"orderId": a["orderId"], "clientOrderId": a["clientOrderId"], "executedQty": "0"}
    # The result's clientOrderId passes back as origClientOrderId (Binance's name for it there).
    c2 = await paper.call("binance_spot_cancel_order", {"symbol": BTC, "origClientOrderId": b["clientOrderId"]})
    assert b["clientOrderId"] == "cancel-me" and c2["orderId"] == b["orderId"]
    assert paper.spot_balance("USDT") == (Decimal("10000"), Decimal("0"))
    assert (await paper.call("binance_spot_open_orders"))["orders"] == []
    hist = (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]
    assert [(o["orderId"], o["status"], o["price"]) for o in hist] == [
        (a["orderId"], "CANCELED", "91000"), (b["orderId"], "CANCELED", "92000")]


async def test_cancel_order_failures(paper: Paper):
    await paper.invalid("binance_spot_cancel_order", {"symbol": BTC}, "orderId or origClientOrderId")
    await paper.invalid("binance_spot_cancel_order", {"symbol": BTC, "orderId": 0}, "orderId")
    await paper.invalid("binance_spot_cancel_order", {"orderId": 5}, "symbol")
    await paper.rejected("binance_spot_cancel_order", {"symbol": BTC, "orderId": 424242}, -2011,
                         "unknown or no longer open")
    o = await paper.call("binance_spot_place_order", limit_buy())
    await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["orderId"]})
    await paper.rejected("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["orderId"]}, -2011)
    await paper.rejected("binance_spot_cancel_order", {"symbol": "ETHUSDT", "orderId": o["orderId"]}, -2011)
    # A result's clientOrderId given under its own name: the error names the argument that takes it.
    text = await paper.invalid("binance_spot_cancel_order", {"symbol": BTC, "clientOrderId": o["clientOrderId"]},
                               "clientOrderId", "pass it as origClientOrderId")
    assert "remove it" not in text


async def test_cancel_all_cancels_one_symbol_only(paper: Paper):
    a = await paper.call("binance_spot_place_order", limit_buy(price="90000"))
    b = await paper.call("binance_spot_place_order", limit_buy(price="89000"))
    eth = await paper.call("binance_spot_place_order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                        "quantity": "0.1", "price": "3000"})
    before = paper.last_seq()
    res = await paper.call("binance_spot_cancel_all_orders", {"symbol": "btcusdt"})
    assert set(res) == {"cancelled"} and len(res["cancelled"]) == 2
    assert sorted(o["orderId"] for o in res["cancelled"]) == sorted([a["orderId"], b["orderId"]])
    assert {o["executedQty"] for o in res["cancelled"]} == {"0"}
    reqs = paper.requests(before)
    assert [(e["method"], e["path"]) for e in reqs] == [("DELETE", "/api/v3/openOrders")]
    assert reqs[0]["params"]["symbol"] == BTC  # the symbol was upper-cased before it was sent
    history = (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]
    hist = {o["orderId"]: o["status"] for o in history}
    assert hist == {a["orderId"]: "CANCELED", b["orderId"]: "CANCELED"}
    left = await paper.call("binance_spot_open_orders")
    assert [o["orderId"] for o in left["orders"]] == [eth["orderId"]]
    # Nothing open any more: a normal empty result, not an error.
    assert await paper.call("binance_spot_cancel_all_orders", {"symbol": BTC}) == {"cancelled": []}


async def test_cancel_all_failures(paper: Paper):
    await paper.invalid("binance_spot_cancel_all_orders", {}, "symbol")
    await paper.invalid("binance_spot_cancel_all_orders", {"symbol": "B"}, "symbol")
    await paper.unknown_symbol("binance_spot_cancel_all_orders", {"symbol": "ZZZUSDT"})


async def test_open_orders_filter_and_truncation(paper: Paper):
    ids = [(await paper.call("binance_spot_place_order", limit_buy(price=p)))["orderId"] for p in ("90000", "90001")]
    eth = await paper.call("binance_spot_place_order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                        "quantity": "0.01", "price": "3000"})
    btc = await paper.call("binance_spot_open_orders", {"symbol": BTC})
    assert [o["orderId"] for o in btc["orders"]] == ids and btc["total"] == 2 and btc["truncated"] is False
    assert all(o["status"] == "NEW" and o["symbol"] == BTC for o in btc["orders"])
    every = await paper.call("binance_spot_open_orders")
    assert sorted(o["orderId"] for o in every["orders"]) == sorted([*ids, eth["orderId"]])
    some = await paper.call("binance_spot_open_orders", {"limit": 1})
    assert len(some["orders"]) == 1 and some["total"] == 3 and some["truncated"] is True


async def test_open_orders_failures(paper: Paper):
    await paper.invalid("binance_spot_open_orders", {"limit": 0}, "limit")
    await paper.invalid("binance_spot_open_orders", {"symbol": "???"}, "symbol")
    await paper.unknown_symbol("binance_spot_open_orders", {"symbol": "ZZZUSDT"})


async def test_order_history_all_statuses_and_filters(paper: Paper):
    filled = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                           "quantity": "0.001"})
    resting = await paper.call("binance_spot_place_order", limit_buy())
    cancelled = await paper.call("binance_spot_place_order", limit_buy(price="80000"))
    await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": cancelled["orderId"]})
    hist = await paper.call("binance_spot_order_history", {"symbol": BTC})
    assert [(o["orderId"], o["status"]) for o in hist["orders"]] == [
        (filled["orderId"], "FILLED"), (resting["orderId"], "NEW"), (cancelled["orderId"], "CANCELED")]
    assert hist["total"] == 3 and hist["truncated"] is False
    assert hist["orders"][0]["executedQty"] == "0.001"
    spent = filled["cummulativeQuoteQty"]
    assert hist["orders"][0]["cummulativeQuoteQty"] == spent and D(spent) > 0
    # A result's orderId passes back under the same name.
    later = await paper.call("binance_spot_order_history", {"symbol": BTC, "orderId": resting["orderId"]})
    assert [o["orderId"] for o in later["orders"]] == [resting["orderId"], cancelled["orderId"]]
    now = int(time.time() * 1000)
    window = await paper.call("binance_spot_order_history", {"symbol": BTC, "startTime": now - 60_000,
                                                             "endTime": now + 60_000, "limit": 2})
    assert len(window["orders"]) == 2 and window["total"] == 2 and window["truncated"] is True
    empty = await paper.call("binance_spot_order_history", {"symbol": BTC, "startTime": now - 7_200_000,
                                                            "endTime": now - 3_600_000})
    assert empty["orders"] == [] and empty["total"] == 0


async def test_order_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_spot_order_history", {"symbol": BTC, "startTime": now - 25 * 3_600_000,
                                                       "endTime": now}, "24 hours")
    await paper.invalid("binance_spot_order_history", {"symbol": BTC, "startTime": now, "endTime": now - 1},
                        "endTime")
    await paper.invalid("binance_spot_order_history", {"symbol": BTC, "limit": 1001}, "limit")
    await paper.invalid("binance_spot_order_history", {}, "symbol")
    await paper.unknown_symbol("binance_spot_order_history", {"symbol": "ZZZUSDT"})


async def test_trade_history_has_each_fill(paper: Paper):
    buy = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                        "quantity": "0.003"})
    rest = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "SELL", "type": "LIMIT",
                                                         "quantity": "0.001", "price": "97500"})
    paper.set_price(BTC, "97600")  # the resting sell fills as maker
    trades = await paper.call("binance_spot_trade_history", {"symbol": BTC})
    assert trades["total"] == 2 and trades["truncated"] is False
    # Rows under one column header, Binance's names.
    assert trades["columns"] == ["id", "orderId", "time", "isBuyer", "isMaker", "price", "qty", "quoteQty",
                                 "commission", "commissionAsset"]
    t1, t2 = (dict(zip(trades["columns"], row, strict=True)) for row in trades["trades"])
    assert t1["orderId"] == buy["orderId"] and t1["isBuyer"] is True and t1["isMaker"] is False
    assert (t1["price"], t1["qty"]) == (buy["fills"][0]["price"], "0.003")
    assert D(t1["quoteQty"]) == D(t1["price"]) * Decimal("0.003") and t1["commissionAsset"] == "BTC"
    assert t2["orderId"] == rest["orderId"] and t2["isBuyer"] is False and t2["isMaker"] is True
    assert (t2["price"], t2["qty"], t2["quoteQty"]) == ("97500", "0.001", "97.5")
    assert t2["commission"] == "0.0975" and t2["commissionAsset"] == "USDT"
    assert t1["time"] <= t2["time"] and abs(t2["time"] - time.time() * 1000) < 60_000
    after_first = await paper.call("binance_spot_trade_history", {"symbol": BTC, "fromId": t2["id"]})
    assert [row[0] for row in after_first["trades"]] == [t2["id"]]
    one = await paper.call("binance_spot_trade_history", {"symbol": BTC, "limit": 1})
    assert len(one["trades"]) == 1 and one["total"] == 1 and one["truncated"] is True


async def test_trade_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_spot_trade_history", {"symbol": BTC, "fromId": 1, "startTime": now - 1000},
                        "fromId cannot be combined")
    await paper.invalid("binance_spot_trade_history", {"symbol": BTC, "startTime": -5}, "startTime")
    await paper.unknown_symbol("binance_spot_trade_history", {"symbol": "ZZZUSDT"})
