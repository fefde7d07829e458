"""USD-M futures orders through the real python-binance clients: regular orders on /fapi/v1/order, conditional
orders that python-binance routes to /fapi/v1/algoOrder, cancels, queries and trades."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from binance.exceptions import BinanceAPIException

from binance_mcp.simulator.errors import BinanceError
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS
from tests.simulator.helpers import api_error

BTC = {"symbol": "BTCUSDT"}
MAKER, TAKER = D("0.0002"), D("0.0005")


def set_futures(sim, price: str, mark: str | None = None, symbol: str = "BTCUSDT") -> None:
    sim.control("price", {"symbol": symbol, "market": "futures", "price": price, "mark": mark or price})


@pytest.fixture
def btc(sim):
    """BTCUSDT futures last and mark at 95000: best bid 95000.0, best ask 95000.1."""
    set_futures(sim, "95000")
    return sim


def position(client, symbol: str = "BTCUSDT", side: str = "BOTH") -> D:
    rows = [r for r in client.futures_position_information(symbol=symbol) if r["positionSide"] == side]
    return D(rows[0]["positionAmt"]) if rows else D(0)


def last_request(sim) -> dict:
    return sim.control("requests")[-1]


# -- MARKET and LIMIT --------------------------------------------------------------------------------------


def test_market_result_fills_at_best_ask(client, btc):
    best_ask = D(client.futures_order_book(**BTC, limit=5)["asks"][0][0])
    order = client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.010",
                                        newOrderRespType="RESULT")
    assert order["status"] == "FILLED" and order["clientOrderId"].startswith("x-Cb7ytekJ")
    assert D(order["executedQty"]) == D("0.01") and D(order["avgPrice"]) == best_ask == D("95000.1")
    assert D(order["cumQuote"]) == best_ask * D("0.01")
    assert position(client) == D("0.01")


def test_market_ack_is_new_then_query_shows_filled(client, btc):
    ack = client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.02")
    assert ack["status"] == "NEW" and D(ack["executedQty"]) == 0
    assert client.futures_get_order(**BTC, orderId=ack["orderId"])["status"] == "FILLED"
    assert position(client) == D("-0.02")


def test_limit_rests_then_fills_as_maker_when_price_moves(client, btc):
    order = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                        price="94000")
    assert order["status"] == "NEW"
    assert [o["orderId"] for o in client.futures_get_open_orders(**BTC)] == [order["orderId"]]
    set_futures(btc, "93990")
    filled = client.futures_get_order(**BTC, orderId=order["orderId"])
    assert filled["status"] == "FILLED" and D(filled["avgPrice"]) == D("94000")
    (trade,) = client.futures_account_trades(**BTC)
    assert trade["maker"] is True and D(trade["commission"]) == D("94000") * D("0.01") * MAKER
    assert client.futures_get_open_orders(**BTC) == []


def test_crossing_limit_takes_the_book_at_better_prices(client, btc):
    order = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                        price="95100", newOrderRespType="RESULT")
    assert order["status"] == "FILLED" and D(order["avgPrice"]) == D("95000.1")
    (trade,) = client.futures_account_trades(**BTC)
    assert trade["maker"] is False and D(trade["commission"]) == D("95000.1") * D("0.01") * TAKER


def test_post_only_that_would_take_is_rejected_and_not_recorded(client, btc):
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="LIMIT", timeInForce="GTX",
                    quantity="0.01", price="95000.1")
    assert err.code == -5022 and err.status_code == 400
    assert client.futures_get_all_orders(**BTC) == []
    ok = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.01",
                                     price="95000")
    assert ok["status"] == "NEW" and ok["timeInForce"] == "GTX"


def test_fok_rejected_unless_fully_fillable(client, btc):
    best_ask, best_qty = (D(x) for x in client.futures_order_book(**BTC, limit=5)["asks"][0])
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="LIMIT", timeInForce="FOK",
                    quantity=str(best_qty + D("0.001")), price=str(best_ask))
    assert err.code == -5021 and client.futures_get_all_orders(**BTC) == []
    ok = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="FOK", quantity=str(best_qty),
                                     price=str(best_ask), newOrderRespType="RESULT")
    assert ok["status"] == "FILLED" and D(ok["executedQty"]) == best_qty


def test_ioc_fills_what_it_can_and_expires_the_rest(client, btc):
    best_ask, best_qty = (D(x) for x in client.futures_order_book(**BTC, limit=5)["asks"][0])
    order = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="IOC", quantity="1",
                                        price=str(best_ask), newOrderRespType="RESULT")
    assert order["status"] == "EXPIRED" and D(order["executedQty"]) == best_qty
    assert client.futures_get_open_orders(**BTC) == [] and position(client) == best_qty


def test_reduce_only_needs_a_position_and_is_capped_at_its_size(client, btc):
    err = api_error(client.futures_create_order, **BTC, side="SELL", type="MARKET", quantity="0.01",
                    reduceOnly="true")
    assert err.code == -2022 and position(client) == 0
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="MARKET", quantity="0.01",
                    reduceOnly="true")
    assert err.code == -2022
    order = client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.05", reduceOnly="true",
                                        newOrderRespType="RESULT")
    assert order["status"] == "FILLED" and D(order["executedQty"]) == D("0.01")
    assert position(client) == 0, "a reduce-only order must never flip the position"


def test_margin_check_depends_on_leverage(client, btc):
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="MARKET", quantity="3")
    assert err.code == -2019 and position(client) == 0  # 3 BTC at 20x needs ~14250 USDT of 10000
    client.futures_change_leverage(**BTC, leverage=50)
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="3")
    assert position(client) == D("3")


@pytest.mark.parametrize("kwargs, code", [
    ({"type": "LIMIT", "price": "0.05", "quantity": "0.01"}, -4013),
    ({"type": "LIMIT", "price": "94000.05", "quantity": "0.01"}, -4014),
    ({"type": "LIMIT", "price": "4529764.1", "quantity": "0.01"}, -4002),
    ({"type": "LIMIT", "price": "94000", "quantity": "1001"}, -4005),
    ({"type": "MARKET", "quantity": "121"}, -4005),  # MARKET_LOT_SIZE maxQty 120
    ({"type": "LIMIT", "price": "94000", "quantity": "0.000"}, -4003),
    ({"type": "LIMIT", "price": "94000", "quantity": "0.001"}, -4164),  # 94 USDT < MIN_NOTIONAL 100
    ({"type": "LIMIT", "price": "99800", "quantity": "0.01"}, -4016),  # above mark x 1.05
    ({"type": "LIMIT", "price": "94000", "quantity": "0.0105"}, -1111),
    ({"type": "LIMIT", "price": "94000.001", "quantity": "0.01"}, -1111),
    ({"type": "STOP_LOSS", "quantity": "0.01"}, -1116),
])
def test_buy_filter_failures(client, btc, kwargs, code):
    if kwargs["type"] == "LIMIT":
        kwargs = {**kwargs, "timeInForce": "GTC"}
    err = api_error(client.futures_create_order, **BTC, side="BUY", **kwargs)
    assert err.code == code and err.status_code == 400
    assert client.futures_get_all_orders(**BTC) == []


def test_sell_below_percent_price_floor(client, btc):
    err = api_error(client.futures_create_order, **BTC, side="SELL", type="LIMIT", timeInForce="GTC",
                    quantity="0.01", price="90200")
    assert err.code == -4024


def test_reduce_only_is_exempt_from_min_notional(client, btc):
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    order = client.futures_create_order(**BTC, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.001",
                                        price="96000", reduceOnly="true")
    assert order["status"] == "NEW" and order["reduceOnly"] is True


def test_lot_size_minimum_and_step_on_a_symbol_where_they_are_reachable(sim):
    """Every listed symbol has minQty == stepSize == 10^-quantityPrecision, so over HTTP -1111 always wins;
    the LOT_SIZE checks themselves are exercised here on a coarser copy of BTCUSDT."""
    coarse = dataclasses.replace(FUTURES_SYMBOLS["BTCUSDT"], min_qty=D("0.010"), step_size=D("0.005"))
    for qty, code in ((D("0.005"), -4004), (D("0.012"), -4023)):
        with pytest.raises(BinanceError) as info:
            sim.sim.futures._check_qty_price(coarse, qty, D("95000"), market=False)
        assert info.value.code == code
    sim.sim.futures._check_qty_price(coarse, D("0.015"), D("95000"), market=False)


# -- conditional (algo) orders -------------------------------------------------------------------------------


def test_conditional_types_go_to_the_algo_endpoint(client, btc):
    algo = client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01")
    req = last_request(btc)
    assert (req["method"], req["path"]) == ("POST", "/fapi/v1/algoOrder")
    assert req["params"]["algoType"] == "CONDITIONAL" and req["params"]["triggerPrice"] == "96000"
    assert algo["algoStatus"] == "NEW" and algo["orderType"] == "STOP_MARKET" and D(algo["triggerPrice"]) == 96000
    assert client.futures_get_open_orders(**BTC) == [], "algo orders are not regular open orders"
    assert [a["algoId"] for a in client.futures_get_open_orders(**BTC, conditional=True)] == [algo["algoId"]]


def test_close_position_rejects_quantity_and_immediate_triggers_are_rejected(client, btc):
    err = api_error(client.futures_create_order, **BTC, side="SELL", type="STOP_MARKET", stopPrice="94000",
                    closePosition="true", quantity="0.01")
    assert err.code == -4137
    err = api_error(client.futures_create_order, **BTC, side="SELL", type="STOP_MARKET", stopPrice="95500",
                    quantity="0.01")
    assert err.code == -2021  # a sell stop above the last price would fire at once
    err = api_error(client.futures_create_order, **BTC, side="SELL", type="TAKE_PROFIT_MARKET",
                    stopPrice="94500", quantity="0.01")
    assert err.code == -2021
    assert client.futures_get_open_orders(**BTC, conditional=True) == []


def test_stop_market_triggers_on_price_move_and_opens_a_position(client, btc):
    algo = client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01")
    set_futures(btc, "95900")
    assert position(client) == 0
    set_futures(btc, "96000")
    done = client.futures_get_order(**BTC, algoId=algo["algoId"])
    assert done["algoStatus"] == "FINISHED" and done["actualOrderId"]
    order = client.futures_get_order(**BTC, orderId=int(done["actualOrderId"]))
    assert order["status"] == "FILLED" and order["origType"] == "STOP_MARKET"
    assert position(client) == D("0.01")
    assert client.futures_get_open_orders(**BTC, conditional=True) == []


@pytest.mark.parametrize("otype, trigger, move_to, profit", [
    ("STOP_MARKET", "94000", "93900", False),
    ("TAKE_PROFIT_MARKET", "97000", "97100", True),
])
def test_close_position_order_closes_the_long(client, btc, otype, trigger, move_to, profit):
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.02")
    algo = client.futures_create_order(**BTC, side="SELL", type=otype, stopPrice=trigger, closePosition="true")
    assert algo["closePosition"] is True
    set_futures(btc, move_to)
    assert position(client) == 0
    closing = client.futures_account_trades(**BTC)[-1]
    assert closing["side"] == "SELL" and D(closing["qty"]) == D("0.02")
    assert (D(closing["realizedPnl"]) > 0) is profit


def test_stop_limit_becomes_a_limit_order_on_trigger(client, btc):
    algo = client.futures_create_order(**BTC, side="SELL", type="STOP", stopPrice="94000", price="93000",
                                       quantity="0.01", timeInForce="GTC")
    assert D(algo["price"]) == 93000
    set_futures(btc, "94000")
    order = client.futures_get_order(**BTC, orderId=int(client.futures_get_order(**BTC, algoId=algo["algoId"])
                                                        ["actualOrderId"]))
    assert order["type"] == "LIMIT" and order["status"] == "FILLED" and position(client) == D("-0.01")


def test_cancel_conditional_by_algo_id_and_with_conditional_flag(client, btc):
    a1 = client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01")
    a2 = client.futures_create_order(**BTC, side="BUY", type="TAKE_PROFIT", stopPrice="94000", price="94000",
                                     quantity="0.01", timeInForce="GTC")
    out = client.futures_cancel_order(algoId=a1["algoId"])
    assert out["algoId"] == a1["algoId"] and str(out["code"]) == "200"
    assert last_request(btc)["path"] == "/fapi/v1/algoOrder"
    client.futures_cancel_order(conditional=True, clientAlgoId=a2["clientAlgoId"])
    assert client.futures_get_open_orders(**BTC, conditional=True) == []
    assert client.futures_get_order(algoId=a2["algoId"])["algoStatus"] == "CANCELED"
    err = api_error(client.futures_cancel_order, algoId=a1["algoId"])
    assert err.code == -2011
    set_futures(btc, "96500")  # cancelled stops never fire
    assert position(client) == 0


def test_cancel_regular_order_and_cancel_all(client, btc):
    orders = [client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                          price=p) for p in ("93000", "93500", "94000")]
    algo = client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01")
    cancelled = client.futures_cancel_order(**BTC, orderId=orders[0]["orderId"])
    assert cancelled["status"] == "CANCELED" and cancelled["orderId"] == orders[0]["orderId"]
    assert api_error(client.futures_cancel_order, **BTC, orderId=orders[0]["orderId"]).code == -2011
    assert client.futures_cancel_order(**BTC, origClientOrderId=orders[1]["clientOrderId"])["status"] == "CANCELED"
    out = client.futures_cancel_all_open_orders(**BTC, conditional=True)
    assert out["code"] == 200 and client.futures_get_open_orders(**BTC, conditional=True) == []
    assert [o["orderId"] for o in client.futures_get_open_orders(**BTC)] == [orders[2]["orderId"]]
    assert client.futures_cancel_all_open_orders(**BTC)["code"] == 200
    assert client.futures_get_open_orders(**BTC) == []
    assert client.futures_get_order(algoId=algo["algoId"])["algoStatus"] == "CANCELED"
    assert api_error(client.futures_get_order, **BTC, orderId=1).code == -2013


def test_all_orders_window_is_at_most_seven_days(client, btc):
    client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="94000")
    now = client.futures_time()["serverTime"]
    err = api_error(client.futures_get_all_orders, **BTC, startTime=now - 8 * 86_400_000, endTime=now)
    assert err.code == -1127
    rows = client.futures_get_all_orders(**BTC, startTime=now - 6 * 86_400_000, endTime=now + 1000)
    assert len(rows) == 1 and rows[0]["status"] == "NEW"


def test_account_trades_carry_realised_pnl_and_commission(client, btc):
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    set_futures(btc, "96000")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01", reduceOnly="true")
    opening, closing = client.futures_account_trades(**BTC)
    assert D(opening["realizedPnl"]) == 0 and D(opening["price"]) == D("95000.1")
    assert D(closing["price"]) == D("96000.0")
    assert D(closing["realizedPnl"]) == (D("96000.0") - D("95000.1")) * D("0.01")
    for t in (opening, closing):
        assert D(t["commission"]) == D(t["price"]) * D(t["qty"]) * TAKER and t["commissionAsset"] == "USDT"
    assert opening["buyer"] is True and closing["buyer"] is False
    assert client.futures_account_trades(**BTC, orderId=opening["orderId"]) == [opening]


# -- AsyncClient ---------------------------------------------------------------------------------------------


async def test_async_open_then_stop_closes_the_short(async_client, btc):
    order = await async_client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01",
                                                    newOrderRespType="RESULT")
    assert order["status"] == "FILLED" and D(order["avgPrice"]) == D("95000.0")
    algo = await async_client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000",
                                                   closePosition="true")
    assert [a["algoId"] for a in await async_client.futures_get_open_orders(**BTC, conditional=True)] == \
        [algo["algoId"]]
    with pytest.raises(BinanceAPIException) as info:
        await async_client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="5")
    assert info.value.code == -2019
    set_futures(btc, "96000")
    assert await async_client.futures_position_information(**BTC) == []
    closing = (await async_client.futures_account_trades(**BTC))[-1]
    assert closing["side"] == "BUY" and D(closing["realizedPnl"]) == (D("95000.0") - D("96000.1")) * D("0.01")


async def test_async_limit_cancel(async_client, btc):
    order = await async_client.futures_create_order(**BTC, side="SELL", type="LIMIT", timeInForce="GTC",
                                                    quantity="0.01", price="96000")
    assert (await async_client.futures_get_open_orders(**BTC))[0]["orderId"] == order["orderId"]
    cancelled = await async_client.futures_cancel_order(**BTC, orderId=order["orderId"])
    assert cancelled["status"] == "CANCELED" and await async_client.futures_get_open_orders(**BTC) == []
