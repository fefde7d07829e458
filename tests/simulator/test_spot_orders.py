"""Spot orders through the real python-binance clients: the seven order types, time in force, triggers,
cancels and the order / trade queries. Every test runs with the sync ``Client`` and the ``AsyncClient``."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.simulator.helpers import rejects

SYMBOL = "BTCUSDT"
ACK_KEYS = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}




async def balances(api) -> dict[str, tuple[D, D]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in (await api("get_account"))["balances"]}


async def book_side(api, side: str) -> list[tuple[D, D]]:
    book = await api("get_order_book", symbol=SYMBOL, limit=100)
    return [(D(p), D(q)) for p, q in book["asks" if side == "BUY" else "bids"]]


def limit_order(side: str, qty: str, price: str, tif: str = "GTC", **extra) -> dict:
    return dict(symbol=SYMBOL, side=side, type="LIMIT", timeInForce=tif, quantity=qty, price=price, **extra)


def fills_total(order: dict) -> tuple[D, D]:
    return (sum((D(f["qty"]) for f in order["fills"]), D(0)),
            sum((D(f["qty"]) * D(f["price"]) for f in order["fills"]), D(0)))


# -- LIMIT ------------------------------------------------------------------------------------------------


async def test_limit_rests_then_fills_as_maker_when_the_price_crosses(api, sim):
    order = await api("create_order", **limit_order("BUY", "0.01", "94000"))
    assert order["status"] == "NEW" and order["fills"] == [] and D(order["executedQty"]) == 0
    assert [o["orderId"] for o in await api("get_open_orders", symbol=SYMBOL)] == [order["orderId"]]
    sim.control("price", {"symbol": SYMBOL, "price": "94500"})
    assert (await api("get_order", symbol=SYMBOL, orderId=order["orderId"]))["status"] == "NEW"
    sim.control("price", {"symbol": SYMBOL, "price": "93900"})
    done = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert done["status"] == "FILLED"
    assert D(done["executedQty"]) == D("0.01") and D(done["cummulativeQuoteQty"]) == D("940")
    assert await api("get_open_orders", symbol=SYMBOL) == []
    (trade,) = await api("get_my_trades", symbol=SYMBOL)
    assert trade["orderId"] == order["orderId"] and trade["isMaker"] is True and trade["isBuyer"] is True
    assert D(trade["price"]) == D("94000") and D(trade["qty"]) == D("0.01")


async def test_limit_crossing_the_book_fills_at_the_book_prices_as_taker(api):
    asks = await book_side(api, "BUY")
    order = await api("create_order", **limit_order("BUY", "0.01", "95100"))
    assert order["status"] == "FILLED"
    qty, quote = fills_total(order)
    assert qty == D("0.01") == D(order["executedQty"]) and quote == D(order["cummulativeQuoteQty"])
    assert D(order["fills"][0]["price"]) == asks[0][0]  # price improvement: the best ask, not the limit
    assert all(D(f["price"]) <= D("95100") for f in order["fills"])
    trades = await api("get_my_trades", symbol=SYMBOL, orderId=order["orderId"])
    assert [t["id"] for t in trades] == [f["tradeId"] for f in order["fills"]]
    assert all(t["isMaker"] is False and t["isBuyer"] is True for t in trades)


async def test_limit_sell_rests_above_the_market_and_fills_when_the_price_rises(api, sim):
    sim.control("balances", {"spot": {"BTC": "1"}})
    order = await api("create_order", **limit_order("SELL", "0.02", "96000"))
    assert order["status"] == "NEW"
    sim.control("price", {"symbol": SYMBOL, "price": "96000"})
    done = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert done["status"] == "FILLED" and D(done["cummulativeQuoteQty"]) == D("1920")
    (trade,) = await api("get_my_trades", symbol=SYMBOL)
    assert trade["isBuyer"] is False and trade["isMaker"] is True and trade["commissionAsset"] == "USDT"


# -- time in force ----------------------------------------------------------------------------------------


async def test_ioc_fills_what_crosses_and_expires_the_rest(api, sim):
    sim.control("balances", {"spot": {"USDT": "1000000"}})
    limit = D("95003")
    available = sum((q for p, q in await book_side(api, "BUY") if p <= limit), D(0))
    assert 0 < available < 1
    order = await api("create_order", **limit_order("BUY", "1", str(limit), "IOC"))
    assert order["status"] == "EXPIRED" and D(order["executedQty"]) == available
    assert all(D(f["price"]) <= limit for f in order["fills"])
    assert await api("get_open_orders", symbol=SYMBOL) == []
    assert (await balances(api))["USDT"] == (D("1000000") - D(order["cummulativeQuoteQty"]), D(0))


async def test_ioc_that_crosses_nothing_expires_empty(api):
    order = await api("create_order", **limit_order("BUY", "0.01", "94000", "IOC"))
    assert order["status"] == "EXPIRED" and D(order["executedQty"]) == 0 and order["fills"] == []
    assert (await balances(api))["USDT"] == (D("10000"), D(0))


async def test_fok_without_enough_liquidity_expires_with_nothing_filled(api, sim):
    sim.control("balances", {"spot": {"USDT": "1000000"}})
    order = await api("create_order", **limit_order("BUY", "1", "95003", "FOK"))
    assert order["status"] == "EXPIRED" and D(order["executedQty"]) == 0 and order["fills"] == []
    assert await api("get_my_trades", symbol=SYMBOL) == []
    assert (await balances(api))["USDT"] == (D("1000000"), D(0))


async def test_fok_with_enough_liquidity_fills_completely(api):
    order = await api("create_order", **limit_order("BUY", "0.05", "95100", "FOK"))
    assert order["status"] == "FILLED" and D(order["executedQty"]) == D("0.05")


# -- MARKET -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["BUY", "SELL"])
async def test_market_by_quantity_walks_the_book(api, sim, side):
    sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    levels = await book_side(api, side)
    order = await api("create_order", symbol=SYMBOL, side=side, type="MARKET", quantity="0.3")
    assert order["status"] == "FILLED" and order["type"] == "MARKET"
    qty, quote = fills_total(order)
    assert qty == D("0.3") == D(order["executedQty"]) and quote == D(order["cummulativeQuoteQty"])
    assert [D(f["price"]) for f in order["fills"]] == [p for p, _ in levels[: len(order["fills"])]]
    assert len(order["fills"]) > 1  # 0.3 BTC is more than the best level holds


@pytest.mark.parametrize("side", ["BUY", "SELL"])
async def test_market_by_quote_order_qty_spends_at_most_the_quote(api, sim, side):
    sim.control("balances", {"spot": {"BTC": "1"}})
    order = await api("create_order", symbol=SYMBOL, side=side, type="MARKET", quoteOrderQty="1000")
    assert order["status"] == "FILLED" and D(order["origQuoteOrderQty"]) == D("1000")
    executed, quote = D(order["executedQty"]), D(order["cummulativeQuoteQty"])
    assert executed == D(order["origQty"]) and executed % D("0.00001") == 0  # LOT_SIZE still holds
    assert D("1000") - D("0.00001") * D("95010") < quote <= D("1000")  # within one step of the quote
    assert fills_total(order) == (executed, quote)


# -- stop / take-profit -----------------------------------------------------------------------------------

TRIGGERS = [  # type, side, stopPrice, price, a move that must not trigger, the move that triggers
    ("STOP_LOSS", "SELL", "94000", None, "94500", "94000"),
    ("STOP_LOSS_LIMIT", "BUY", "96000", "96100", "95500", "96000"),
    ("TAKE_PROFIT", "SELL", "96000", None, "95500", "96000"),
    ("TAKE_PROFIT_LIMIT", "BUY", "94000", "94100", "94500", "94000"),
]


@pytest.mark.parametrize("otype,side,stop,price,near,hit", TRIGGERS)
async def test_conditional_order_triggers_when_the_price_reaches_the_stop(api, sim, otype, side, stop, price,
                                                                           near, hit):
    sim.control("balances", {"spot": {"BTC": "1"}})
    params = dict(symbol=SYMBOL, side=side, type=otype, quantity="0.01", stopPrice=stop)
    if price:
        params.update(price=price, timeInForce="GTC")
    order = await api("create_order", **params)
    assert set(order) == ACK_KEYS  # conditional types answer ACK by default
    waiting = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert waiting["status"] == "NEW" and waiting["isWorking"] is False and D(waiting["stopPrice"]) == D(stop)
    sim.control("price", {"symbol": SYMBOL, "price": near})
    assert (await api("get_order", symbol=SYMBOL, orderId=order["orderId"]))["isWorking"] is False
    sim.control("price", {"symbol": SYMBOL, "price": hit})
    done = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert done["status"] == "FILLED" and done["isWorking"] is True and D(done["executedQty"]) == D("0.01")
    trades = await api("get_my_trades", symbol=SYMBOL, orderId=order["orderId"])
    assert sum(D(t["qty"]) for t in trades) == D("0.01")
    if price:
        assert all(D(t["price"]) <= D(price) for t in trades)


async def test_triggered_stop_limit_that_does_not_cross_rests_as_a_working_limit(api, sim):
    order = await api("create_order", symbol=SYMBOL, side="BUY", type="STOP_LOSS_LIMIT", quantity="0.01",
                      stopPrice="96000", price="96000", timeInForce="GTC")
    sim.control("price", {"symbol": SYMBOL, "price": "96000"})  # best ask 96000.01 > limit 96000
    working = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert working["status"] == "NEW" and working["isWorking"] is True
    assert (await balances(api))["USDT"] == (D("10000") - D("960"), D("960"))


@pytest.mark.parametrize("otype,side,stop", [("STOP_LOSS", "SELL", "96000"), ("STOP_LOSS", "BUY", "94000"),
                                             ("TAKE_PROFIT", "SELL", "94000"), ("TAKE_PROFIT", "BUY", "96000")])
async def test_conditional_order_on_the_wrong_side_would_trigger_immediately(api, sim, otype, side, stop):
    sim.control("balances", {"spot": {"BTC": "1"}})
    err = await rejects(api, "create_order", symbol=SYMBOL, side=side, type=otype, quantity="0.01", stopPrice=stop)
    assert (err.status_code, err.code, err.message) == (400, -2010, "Order would trigger immediately.")


# -- LIMIT_MAKER ------------------------------------------------------------------------------------------


async def test_limit_maker_that_would_not_take_rests(api):
    order = await api("create_order", symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.01",
                      price="95000")
    assert set(order) == ACK_KEYS
    rested = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert rested["status"] == "NEW" and rested["type"] == "LIMIT_MAKER"


@pytest.mark.parametrize("side,price", [("BUY", "95000.01"), ("SELL", "95000")])
async def test_limit_maker_that_would_take_is_rejected(api, sim, side, price):
    sim.control("balances", {"spot": {"BTC": "1"}})
    err = await rejects(api, "create_order", symbol=SYMBOL, side=side, type="LIMIT_MAKER", quantity="0.01",
                        price=price)
    assert (err.status_code, err.code, err.message) == (400, -2010, "Order would immediately match and take.")
    assert await api("get_all_orders", symbol=SYMBOL) == []


# -- order/test -------------------------------------------------------------------------------------------


async def test_test_order_validates_but_changes_nothing(api):
    assert await api("create_test_order", **limit_order("BUY", "0.01", "95100")) == {}
    assert await api("get_all_orders", symbol=SYMBOL) == []
    assert (await balances(api))["USDT"] == (D("10000"), D(0))
    err = await rejects(api, "create_test_order", **limit_order("BUY", "0.00001", "95000"))
    assert (err.code, err.message) == (-1013, "Filter failure: NOTIONAL")
    err = await rejects(api, "create_test_order", **limit_order("BUY", "1", "95000"))
    assert err.code == -2010
    rates = await api("create_test_order", computeCommissionRates="true", **limit_order("BUY", "0.01", "95100"))
    assert D(rates["standardCommissionForOrder"]["taker"]) == D("0.001")
    assert D(rates["standardCommissionForOrder"]["maker"]) == D("0.001")
    assert D(rates["taxCommissionForOrder"]["taker"]) == 0 and rates["discount"]["discountAsset"] == "BNB"
    assert await api("get_all_orders", symbol=SYMBOL) == []


# -- cancels ----------------------------------------------------------------------------------------------


async def test_cancel_by_order_id_and_by_client_order_id(api):
    a = await api("create_order", **limit_order("BUY", "0.01", "90000"))
    b = await api("create_order", **limit_order("BUY", "0.01", "90001", newClientOrderId="mine-1"))
    ca = await api("cancel_order", symbol=SYMBOL, orderId=a["orderId"], newClientOrderId="cancel-a")
    assert ca["status"] == "CANCELED" and ca["orderId"] == a["orderId"]
    assert ca["origClientOrderId"] == a["clientOrderId"] and ca["clientOrderId"] == "cancel-a"
    cb = await api("cancel_order", symbol=SYMBOL, origClientOrderId="mine-1")
    assert cb["status"] == "CANCELED" and cb["orderId"] == b["orderId"] and cb["origClientOrderId"] == "mine-1"
    assert await api("get_open_orders", symbol=SYMBOL) == []
    statuses = {o["orderId"]: o["status"] for o in await api("get_all_orders", symbol=SYMBOL)}
    assert statuses == {a["orderId"]: "CANCELED", b["orderId"]: "CANCELED"}


async def test_cancel_errors(api):
    filled = await api("create_order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.001")
    for params in ({"orderId": 42}, {"origClientOrderId": "nobody"}, {"orderId": filled["orderId"]}):
        err = await rejects(api, "cancel_order", symbol=SYMBOL, **params)
        assert (err.status_code, err.code, err.message) == (400, -2011, "Unknown order sent.")
    err = await rejects(api, "cancel_order", symbol=SYMBOL)
    assert err.code == -1102 and "orderId" in err.message


async def test_cancel_all_reports_each_order_then_unknown_when_none_are_open(api, sim):
    ids = {(await api("create_order", **limit_order("BUY", "0.01", p)))["orderId"] for p in ("90000", "90001")}
    sim.control("balances", {"spot": {"ETH": "1"}})
    other = await api("create_order", symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                      quantity="0.1", price="4000")
    reports = await api("cancel_all_open_orders", symbol=SYMBOL)
    assert {r["orderId"] for r in reports} == ids and all(r["status"] == "CANCELED" for r in reports)
    assert [o["orderId"] for o in await api("get_open_orders")] == [other["orderId"]]
    assert (await balances(api))["USDT"] == (D("10000"), D(0))
    err = await rejects(api, "cancel_all_open_orders", symbol=SYMBOL)
    assert (err.status_code, err.code, err.message) == (400, -2011, "Unknown order sent.")


# -- queries ----------------------------------------------------------------------------------------------


async def test_open_orders_with_and_without_symbol(api, sim):
    sim.control("balances", {"spot": {"ETH": "1"}})
    btc = await api("create_order", **limit_order("BUY", "0.01", "90000"))
    eth = await api("create_order", symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                    quantity="0.1", price="4000")
    assert [o["orderId"] for o in await api("get_open_orders", symbol=SYMBOL)] == [btc["orderId"]]
    assert [o["orderId"] for o in await api("get_open_orders", symbol="ETHUSDT")] == [eth["orderId"]]
    assert {o["orderId"] for o in await api("get_open_orders")} == {btc["orderId"], eth["orderId"]}
    assert await api("get_open_orders", symbol="BNBUSDT") == []


async def test_get_order_by_either_id_and_unknown_order(api):
    order = await api("create_order", **limit_order("BUY", "0.01", "90000", newClientOrderId="q-1"))
    by_id = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert by_id == await api("get_order", symbol=SYMBOL, origClientOrderId="q-1")
    assert by_id["clientOrderId"] == "q-1" and D(by_id["price"]) == D("90000") and by_id["time"] > 0
    for params in ({"orderId": 7}, {"origClientOrderId": "nope"}, {"orderId": order["orderId"],
                                                                   "origClientOrderId": "other"}):
        err = await rejects(api, "get_order", symbol=SYMBOL, **params)
        assert (err.status_code, err.code, err.message) == (400, -2013, "Order does not exist.")


async def test_all_orders_limit_order_id_and_window(api):
    ids = [(await api("create_order", **limit_order("BUY", "0.01", str(90000 + i))))["orderId"] for i in range(4)]
    assert [o["orderId"] for o in await api("get_all_orders", symbol=SYMBOL)] == ids
    assert [o["orderId"] for o in await api("get_all_orders", symbol=SYMBOL, limit=2)] == ids[-2:]
    assert [o["orderId"] for o in await api("get_all_orders", symbol=SYMBOL, orderId=ids[1])] == ids[1:]
    assert [o["orderId"] for o in await api("get_all_orders", symbol=SYMBOL, orderId=ids[1], limit=2)] == ids[1:3]
    now = (await api("get_server_time"))["serverTime"]
    assert len(await api("get_all_orders", symbol=SYMBOL, startTime=now - 3_600_000, endTime=now + 1000)) == 4
    err = await rejects(api, "get_all_orders", symbol=SYMBOL, startTime=now - 25 * 3_600_000, endTime=now)
    assert (err.code, err.message) == (-1127, "More than 24 hours between startTime and endTime.")


async def test_my_trades_report_fills_with_commission(api, sim):
    sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    buy = await api("create_order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.2")
    sell = await api("create_order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.1")
    trades = await api("get_my_trades", symbol=SYMBOL)
    assert [t["id"] for t in trades] == [f["tradeId"] for f in buy["fills"] + sell["fills"]]
    for t in trades:
        buyer = t["orderId"] == buy["orderId"]
        assert t["isBuyer"] is buyer and t["isMaker"] is False and t["symbol"] == SYMBOL
        assert D(t["quoteQty"]) == D(t["price"]) * D(t["qty"])
        received = D(t["qty"]) if buyer else D(t["quoteQty"])
        assert D(t["commission"]) == (received * D("0.001")).quantize(D("0.00000001"))
        assert t["commissionAsset"] == ("BTC" if buyer else "USDT")
    assert [t["orderId"] for t in await api("get_my_trades", symbol=SYMBOL, orderId=sell["orderId"])] == \
        [sell["orderId"]] * len(sell["fills"])
    assert len(await api("get_my_trades", symbol=SYMBOL, limit=1)) == 1
    now = (await api("get_server_time"))["serverTime"]
    assert len(await api("get_my_trades", symbol=SYMBOL, startTime=now - 60_000, endTime=now + 1000)) == len(trades)
    err = await rejects(api, "get_my_trades", symbol=SYMBOL, startTime=now - 25 * 3_600_000, endTime=now)
    assert err.code == -1127
    from_id = trades[1]["id"]
    assert [t["id"] for t in await api("get_my_trades", symbol=SYMBOL, fromId=from_id)] == \
        [t["id"] for t in trades[1:]]
