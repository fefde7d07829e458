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


async def test_place_limit_order_rests_and_locks_quote(paper: Paper):
    before = paper.last_seq()
    o = await paper.call("binance_spot_place_order", limit_buy(price="90000.5", qty=0.01,
                                                               newClientOrderId="e2e-limit-1"))
    assert o["symbol"] == BTC and o["side"] == "BUY" and o["type"] == "LIMIT" and o["status"] == "NEW"
    assert (o["price"], o["quantity"], o["executed_qty"], o["fills"]) == ("90000.5", "0.01", "0", [])
    assert o["client_order_id"] == "e2e-limit-1" and o["time_in_force"] == "GTC"
    assert o["time_iso"].endswith("Z") and abs(o["time"] - time.time() * 1000) < 5000
    # What reached the exchange: decimal strings (the float 0.01 too), GTC added for LIMIT, FULL response.
    (params,) = sent_orders(paper, before)
    assert params["quantity"] == "0.01" and params["price"] == "90000.5" and params["timeInForce"] == "GTC"
    assert params["newClientOrderId"] == "e2e-limit-1" and params["newOrderRespType"] == "FULL"
    assert "quoteOrderQty" not in params and "stopPrice" not in params
    assert paper.spot_balance("USDT") == (Decimal("9099.995"), Decimal("900.005"))
    opened = await paper.call("binance_spot_open_orders", {"symbol": BTC})
    assert [x["order_id"] for x in opened["orders"]] == [o["order_id"]]


async def test_place_market_orders_fill_against_the_book(paper: Paper):
    book = paper.public("/api/v3/depth", symbol=BTC, limit=5)
    best_ask = D(book["asks"][0][0])
    before = paper.last_seq()
    o = await paper.call("binance_spot_place_order", {"symbol": "btcusdt", "side": "BUY", "type": "MARKET",
                                                      "quantity": "0.002"})
    assert o["status"] == "FILLED" and o["executed_qty"] == "0.002"
    assert [(D(f["price"]), D(f["qty"])) for f in o["fills"]] == [(best_ask, Decimal("0.002"))]
    assert D(o["cumulative_quote_qty"]) == best_ask * Decimal("0.002") and D(o["avg_price"]) == best_ask
    assert o["fills"][0]["commission_asset"] == "BTC" and D(o["fills"][0]["commission"]) == Decimal("0.000002")
    (params,) = sent_orders(paper, before)
    assert "timeInForce" not in params and "price" not in params  # MARKET takes neither

    # quoteOrderQty: spend 100 USDT; the quantity is what 100 USDT buys, rounded down to the step size.
    q = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                      "quoteOrderQty": "100"})
    assert q["status"] == "FILLED" and D(q["cumulative_quote_qty"]) <= 100
    assert D(q["executed_qty"]) == (Decimal(100) / best_ask).quantize(Decimal("0.00001"), rounding="ROUND_DOWN")

    # Sell what was bought at the best bid: the commission is now paid in USDT.
    sell = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "SELL", "type": "MARKET",
                                                         "quantity": "0.001"})
    assert sell["status"] == "FILLED" and sell["fills"][0]["commission_asset"] == "USDT"
    assert D(sell["fills"][0]["price"]) == D(book["bids"][0][0])


async def test_stop_loss_limit_waits_for_its_trigger(paper: Paper):
    paper.balances(spot={"BTC": "0.1"})
    stop = await paper.call("binance_spot_place_order", {
        "symbol": BTC, "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "0.01", "price": "95000",
        "stopPrice": "95500", "timeInForce": "GTC"})
    assert stop["status"] == "NEW" and stop["stop_price"] == "95500" and stop["price"] == "95000"
    assert paper.spot_balance("BTC") == (Decimal("0.09"), Decimal("0.01"))
    maker = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "SELL", "type": "LIMIT_MAKER",
                                                          "quantity": "0.01", "price": "99000"})
    assert maker["status"] == "NEW"
    paper.set_price(BTC, "95400")  # crosses the stop
    hist = {o["order_id"]: o for o in (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]}
    assert hist[stop["order_id"]]["status"] == "FILLED" and hist[stop["order_id"]]["executed_qty"] == "0.01"
    assert hist[maker["order_id"]]["status"] == "NEW"


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
    c1 = await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": a["order_id"]})
    assert c1["order_id"] == a["order_id"] and c1["status"] == "CANCELED"
    assert c1["client_order_id"] == a["client_order_id"] and c1["price"] == "91000"
    c2 = await paper.call("binance_spot_cancel_order", {"symbol": BTC, "origClientOrderId": "cancel-me"})
    assert c2["order_id"] == b["order_id"] and c2["status"] == "CANCELED"
    assert paper.spot_balance("USDT") == (Decimal("10000"), Decimal("0"))
    assert (await paper.call("binance_spot_open_orders"))["orders"] == []
    hist = (await paper.call("binance_spot_order_history", {"symbol": BTC}))["orders"]
    assert [(o["order_id"], o["status"]) for o in hist] == [(a["order_id"], "CANCELED"), (b["order_id"], "CANCELED")]


async def test_cancel_order_failures(paper: Paper):
    await paper.invalid("binance_spot_cancel_order", {"symbol": BTC}, "orderId or origClientOrderId")
    await paper.invalid("binance_spot_cancel_order", {"symbol": BTC, "orderId": 0}, "orderId")
    await paper.invalid("binance_spot_cancel_order", {"orderId": 5}, "symbol")
    await paper.rejected("binance_spot_cancel_order", {"symbol": BTC, "orderId": 424242}, -2011,
                         "unknown or no longer open")
    o = await paper.call("binance_spot_place_order", limit_buy())
    await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["order_id"]})
    await paper.rejected("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["order_id"]}, -2011)
    await paper.rejected("binance_spot_cancel_order", {"symbol": "ETHUSDT", "orderId": o["order_id"]}, -2011)


async def test_cancel_all_cancels_one_symbol_only(paper: Paper):
    a = await paper.call("binance_spot_place_order", limit_buy(price="90000"))
    b = await paper.call("binance_spot_place_order", limit_buy(price="89000"))
    eth = await paper.call("binance_spot_place_order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                        "quantity": "0.1", "price": "3000"})
    before = paper.last_seq()
    res = await paper.call("binance_spot_cancel_all_orders", {"symbol": "btcusdt"})
    assert res["symbol"] == BTC and res["count"] == 2
    assert sorted(o["order_id"] for o in res["cancelled"]) == sorted([a["order_id"], b["order_id"]])
    assert {o["status"] for o in res["cancelled"]} == {"CANCELED"}
    assert [(e["method"], e["path"]) for e in paper.requests(before)] == [("DELETE", "/api/v3/openOrders")]
    left = await paper.call("binance_spot_open_orders")
    assert [o["order_id"] for o in left["orders"]] == [eth["order_id"]]
    # Nothing open any more: a normal empty result, not an error.
    assert await paper.call("binance_spot_cancel_all_orders", {"symbol": BTC}) == {
        "symbol": BTC, "cancelled": [], "count": 0}


async def test_cancel_all_failures(paper: Paper):
    await paper.invalid("binance_spot_cancel_all_orders", {}, "symbol")
    await paper.invalid("binance_spot_cancel_all_orders", {"symbol": "B"}, "symbol")
    await paper.unknown_symbol("binance_spot_cancel_all_orders", {"symbol": "ZZZUSDT"})


async def test_open_orders_filter_and_truncation(paper: Paper):
    ids = [(await paper.call("binance_spot_place_order", limit_buy(price=p)))["order_id"] for p in ("90000", "90001")]
    eth = await paper.call("binance_spot_place_order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                        "quantity": "0.01", "price": "3000"})
    btc = await paper.call("binance_spot_open_orders", {"symbol": BTC})
    assert [o["order_id"] for o in btc["orders"]] == ids and btc["total"] == 2 and btc["truncated"] is False
    assert all(o["status"] == "NEW" and o["symbol"] == BTC for o in btc["orders"])
    every = await paper.call("binance_spot_open_orders")
    assert sorted(o["order_id"] for o in every["orders"]) == sorted([*ids, eth["order_id"]])
    some = await paper.call("binance_spot_open_orders", {"limit": 1})
    assert some["count"] == 1 and some["total"] == 3 and some["truncated"] is True


async def test_open_orders_failures(paper: Paper):
    await paper.invalid("binance_spot_open_orders", {"limit": 0}, "limit")
    await paper.invalid("binance_spot_open_orders", {"symbol": "???"}, "symbol")
    await paper.unknown_symbol("binance_spot_open_orders", {"symbol": "ZZZUSDT"})


async def test_order_history_all_statuses_and_filters(paper: Paper):
    filled = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                           "quantity": "0.001"})
    resting = await paper.call("binance_spot_place_order", limit_buy())
    cancelled = await paper.call("binance_spot_place_order", limit_buy(price="80000"))
    await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": cancelled["order_id"]})
    hist = await paper.call("binance_spot_order_history", {"symbol": BTC})
    assert [(o["order_id"], o["status"]) for o in hist["orders"]] == [
        (filled["order_id"], "FILLED"), (resting["order_id"], "NEW"), (cancelled["order_id"], "CANCELED")]
    assert hist["total"] == 3 and hist["truncated"] is False
    assert hist["orders"][0]["executed_qty"] == "0.001" and D(hist["orders"][0]["avg_price"]) > 0
    later = await paper.call("binance_spot_order_history", {"symbol": BTC, "orderId": resting["order_id"]})
    assert [o["order_id"] for o in later["orders"]] == [resting["order_id"], cancelled["order_id"]]
    now = int(time.time() * 1000)
    window = await paper.call("binance_spot_order_history", {"symbol": BTC, "startTime": now - 60_000,
                                                             "endTime": now + 60_000, "limit": 2})
    assert window["count"] == 2 and window["truncated"] is True
    empty = await paper.call("binance_spot_order_history", {"symbol": BTC, "startTime": now - 7_200_000,
                                                            "endTime": now - 3_600_000})
    assert empty["orders"] == [] and empty["count"] == 0


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
    assert trades["symbol"] == BTC and trades["count"] == 2 and trades["truncated"] is False
    t1, t2 = trades["trades"]
    assert t1["order_id"] == buy["order_id"] and t1["is_buyer"] is True and t1["is_maker"] is False
    assert (t1["price"], t1["qty"]) == (buy["fills"][0]["price"], "0.003")
    assert D(t1["quote_qty"]) == D(t1["price"]) * Decimal("0.003") and t1["commission_asset"] == "BTC"
    assert t2["order_id"] == rest["order_id"] and t2["is_buyer"] is False and t2["is_maker"] is True
    assert (t2["price"], t2["qty"], t2["quote_qty"]) == ("97500", "0.001", "97.5")
    assert t2["commission"] == "0.0975" and t2["commission_asset"] == "USDT" and t2["time_iso"].endswith("Z")
    after_first = await paper.call("binance_spot_trade_history", {"symbol": BTC, "fromId": t2["id"]})
    assert [t["id"] for t in after_first["trades"]] == [t2["id"]]
    one = await paper.call("binance_spot_trade_history", {"symbol": BTC, "limit": 1})
    assert one["count"] == 1 and one["truncated"] is True


async def test_trade_history_failures(paper: Paper):
    now = int(time.time() * 1000)
    await paper.invalid("binance_spot_trade_history", {"symbol": BTC, "fromId": 1, "startTime": now - 1000},
                        "fromId cannot be combined")
    await paper.invalid("binance_spot_trade_history", {"symbol": BTC, "startTime": -5}, "startTime")
    await paper.unknown_symbol("binance_spot_trade_history", {"symbol": "ZZZUSDT"})
