"""USD-M futures endpoints that real clients use beyond the basics, through python-binance: public trades and
book ticker, funding history and info, open interest, index and premium klines, the commission rate, order
modify, batch orders, isolated position margin, ticker quantities in the symbol's precision, and exchangeInfo
advertising only the order types and time-in-force values the simulator honours."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from binance_mcp.simulator.symbols import FUTURES_SYMBOLS
from tests.helpers import PaperSimulator
from tests.simulator.helpers import api_error
from tests.simulator.test_futures_account import rows_by_side, set_futures

SYMBOL = "BTCUSDT"
BTC = {"symbol": SYMBOL}
EIGHT_HOURS = 8 * 3_600_000


@pytest.fixture
def btc(sim):
    set_futures(sim, "95000")  # best bid 95000.0, best ask 95000.1
    return sim


def places(value: str) -> int:
    return len(value.split(".")[1]) if "." in value else 0


def limit(side: str = "BUY", qty: str = "0.010", price: str = "90000", timeInForce: str = "GTC", **extra) -> dict:
    return dict(**BTC, side=side, type="LIMIT", timeInForce=timeInForce, quantity=qty, price=price, **extra)


# -- market data ----------------------------------------------------------------------------------------------


def test_trades_and_book_ticker_agree_with_the_last_price_and_book(client, btc):
    trades = client.futures_recent_trades(**BTC, limit=50)
    ticker = client.futures_ticker(**BTC)
    assert trades[-1]["id"] == ticker["lastId"] and D(trades[-1]["price"]) == D(ticker["lastPrice"]) == D("95000")
    assert client.futures_symbol_ticker(**BTC)["price"] == ticker["lastPrice"]
    spec = FUTURES_SYMBOLS[SYMBOL]
    assert all(places(t["qty"]) == spec.quantity_precision and places(t["price"]) == spec.price_precision
               for t in trades)
    assert set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker"}
    agg = client.futures_aggregate_trades(**BTC, fromId=trades[0]["id"], limit=50)
    assert [(a["a"], a["p"], a["q"], a["T"]) for a in agg] == [(t["id"], t["price"], t["qty"], t["time"]) for t in trades]
    start = trades[0]["time"]
    assert api_error(client.futures_aggregate_trades, **BTC, startTime=start, endTime=start + 3_600_000).code == -1127
    book = client.futures_order_book(**BTC, limit=5)
    top = client.futures_orderbook_ticker(**BTC)
    assert (top["bidPrice"], top["bidQty"], top["askPrice"], top["askQty"]) == (*book["bids"][0], *book["asks"][0])
    assert len(client.futures_orderbook_ticker()) == len(FUTURES_SYMBOLS)


def test_ticker_quantities_use_the_symbols_quantity_precision(client, btc):
    for row in client.futures_ticker():
        qp = FUTURES_SYMBOLS[row["symbol"]].quantity_precision
        assert places(row["volume"]) == qp and places(row["lastQty"]) == qp, row


def test_funding_history_info_and_premium(client, btc):
    now = client.futures_time()["serverTime"]
    rows = client.futures_funding_rate(**BTC, limit=5)
    times = [r["fundingTime"] for r in rows]
    assert times == list(range(times[0], times[-1] + 1, EIGHT_HOURS)) and len(rows) == 5
    assert times[-1] <= now < times[-1] + EIGHT_HOURS and times[-1] % EIGHT_HOURS == 0
    premium = client.futures_mark_price(**BTC)
    assert premium["nextFundingTime"] == times[-1] + EIGHT_HOURS
    assert all(r["fundingRate"] == premium["lastFundingRate"] for r in rows)  # the basis is steady
    # the mark price settled is the mark candle's close of the hour before
    mark = client.futures_mark_price_klines(**BTC, interval="1h", startTime=times[-1] - 3_600_000, limit=1)
    assert D(rows[-1]["markPrice"]) == D(mark[0][4])
    window = client.futures_funding_rate(**BTC, startTime=times[1], endTime=times[3])
    assert [r["fundingTime"] for r in window] == times[1:4]
    assert len(client.futures_funding_rate(limit=6)) == 6  # every symbol
    info = client._request_futures_api("get", "fundingInfo", False, data={})
    assert {r["symbol"] for r in info} == set(FUTURES_SYMBOLS) and {r["fundingIntervalHours"] for r in info} == {8}
    index = client.futures_index_price_klines(pair=SYMBOL, interval="1m", limit=2)
    assert D(index[-1][4]) == D(premium["indexPrice"])
    prem = client._request_futures_api("get", "premiumIndexKlines", False,
                                       data={**BTC, "interval": "1h", "limit": 2})
    want = D(premium["markPrice"]) / D(premium["indexPrice"]) - 1
    assert len(prem) == 2 and abs(D(prem[-1][4]) - want) < D("0.00000002")


def test_open_interest_counts_the_accounts_position(client, btc):
    before = D(client.futures_open_interest(**BTC)["openInterest"])
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.100")
    after = client.futures_open_interest(**BTC)
    assert D(after["openInterest"]) == before + D("0.100") and places(after["openInterest"]) == 3


def test_commission_rate_is_what_a_fill_pays(client, btc):
    rate = client.futures_commission_rate(**BTC)
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.010")
    (trade,) = client.futures_account_trades(**BTC)
    assert D(trade["commission"]) == D(trade["price"]) * D(trade["qty"]) * D(rate["takerCommissionRate"])
    assert D(rate["makerCommissionRate"]) < D(rate["takerCommissionRate"])


# -- modify ---------------------------------------------------------------------------------------------------


def test_modify_changes_price_and_quantity_and_keeps_the_order_id(client, btc):
    order = client.futures_create_order(**limit())
    changed = client.futures_modify_order(**BTC, orderId=order["orderId"], side="BUY", quantity="0.020", price="91000")
    assert (changed["orderId"], D(changed["price"]), changed["origQty"], changed["status"]) == (
        order["orderId"], D("91000"), "0.020", "NEW")
    (still,) = client.futures_get_open_orders(**BTC)
    assert (still["orderId"], D(still["price"]), still["origQty"]) == (order["orderId"], D("91000"), "0.020")
    assert D(client.futures_account()["totalOpenOrderInitialMargin"]) == D("0.020") * 91000 / 20
    assert api_error(client.futures_modify_order, **BTC, orderId=order["orderId"], side="BUY", quantity="0.020",
                     price="91000").code == -5027
    assert api_error(client.futures_modify_order, **BTC, orderId=order["orderId"], side="SELL", quantity="0.020",
                     price="91000").code == -1117
    # a new price through the book trades at once
    crossed = client.futures_modify_order(**BTC, origClientOrderId=order["clientOrderId"], side="BUY",
                                          quantity="0.020", price="95100")
    assert crossed["status"] == "FILLED" and rows_by_side(client)["BOTH"]["positionAmt"] == "0.020"
    assert api_error(client.futures_modify_order, **BTC, orderId=order["orderId"], side="BUY", quantity="0.030",
                     price="95100").code == -2013


# -- batch orders ---------------------------------------------------------------------------------------------


def test_batch_orders_place_and_cancel_slot_by_slot(client, btc):
    placed = client.futures_place_batch_order(batchOrders=[
        limit(price="90000"), limit(price="89000", newClientOrderId="batch-2"),
        limit(price="89000", timeInForce="GTD"), dict(**BTC, side="BUY", type="TRAILING_STOP_MARKET", quantity="0.010",
                                                      callbackRate="1")])
    assert [r.get("status") for r in placed[:2]] == ["NEW", "NEW"]
    assert [r["code"] for r in placed[2:]] == [-1115, -4120]
    assert sorted(o["orderId"] for o in client.futures_get_open_orders(**BTC)) == [r["orderId"] for r in placed[:2]]
    # python-binance's way: the lists under lower-case names (as ccxt sends them too), which Binance reads
    cancelled = client.futures_cancel_orders(**BTC, orderidlist=[placed[0]["orderId"], 1])
    assert cancelled[0]["status"] == "CANCELED" and cancelled[1]["code"] == -2011
    (second,) = client.futures_cancel_orders(**BTC, origclientorderidlist=["batch-2"])
    assert second["orderId"] == placed[1]["orderId"] and second["status"] == "CANCELED"
    assert client.futures_get_open_orders(**BTC) == []
    # Binance's documented spelling, over plain signed HTTP (python-binance cannot sign a camel-case list)
    again = client.futures_place_batch_order(batchOrders=[limit(price="87000")])
    exchange = PaperSimulator(btc.base_url.removeprefix("http://"))
    (third,) = exchange.signed("/fapi/v1/batchOrders", "DELETE", **BTC, orderIdList=json.dumps([again[0]["orderId"]]))
    assert third["status"] == "CANCELED"
    assert exchange.signed("/fapi/v1/batchOrders", "DELETE", **BTC)["code"] == -1102
    too_many = [limit(price=str(80000 + i)) for i in range(6)]
    assert api_error(client.futures_place_batch_order, batchOrders=too_many).code == -1130
    assert client.futures_get_open_orders(**BTC) == []


# -- isolated position margin ---------------------------------------------------------------------------------


def test_position_margin_moves_isolated_margin_and_the_liquidation_price(client, btc):
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.100")
    assert api_error(client.futures_change_position_margin, **BTC, amount="10", type=1).code == -4049  # cross
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.100")
    client.futures_change_margin_type(**BTC, marginType="ISOLATED")
    assert api_error(client.futures_change_position_margin, **BTC, amount="10", type=1).code == -4049  # no position
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.100")
    before = rows_by_side(client)["BOTH"]
    available = D(client.futures_account()["availableBalance"])
    reply = client.futures_change_position_margin(**BTC, amount="100", type=1)
    assert reply == {"amount": 100.0, "code": 200, "msg": "Successfully modify position margin.", "type": 1}
    after = rows_by_side(client)["BOTH"]
    assert D(after["isolatedWallet"]) == D(before["isolatedWallet"]) + 100
    assert D(client.futures_account()["availableBalance"]) == available - 100
    assert D(after["liquidationPrice"]) < D(before["liquidationPrice"])
    client.futures_change_position_margin(**BTC, amount="40", type=2)
    assert D(rows_by_side(client)["BOTH"]["isolatedWallet"]) == D(before["isolatedWallet"]) + 60
    assert api_error(client.futures_change_position_margin, **BTC, amount="100000", type=1).code == -2019
    assert api_error(client.futures_change_position_margin, **BTC, amount="5000", type=2).code == -4051
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.100")  # closing releases it
    acct = client.futures_account()
    assert D(acct["availableBalance"]) == D(acct["totalWalletBalance"])


# -- exchangeInfo: advertised types and time in force work, the rest is refused --------------------------------


def test_every_advertised_order_type_and_time_in_force_works(client, btc):
    info = next(s for s in client.futures_exchange_info()["symbols"] if s["symbol"] == SYMBOL)
    assert info["orderTypes"] == ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"]
    assert info["timeInForce"] == ["GTC", "IOC", "FOK", "GTX"]
    made = {
        "LIMIT": client.futures_create_order(**limit()),
        "MARKET": client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.010"),
        "STOP": client.futures_create_order(**BTC, side="BUY", type="STOP", stopPrice="96000", price="96100",
                                            quantity="0.010", timeInForce="GTC"),
        "STOP_MARKET": client.futures_create_order(**BTC, side="SELL", type="STOP_MARKET", stopPrice="90000",
                                                   quantity="0.010"),
        "TAKE_PROFIT": client.futures_create_order(**BTC, side="SELL", type="TAKE_PROFIT", stopPrice="97000",
                                                   price="97000", quantity="0.010", timeInForce="GTC"),
        "TAKE_PROFIT_MARKET": client.futures_create_order(**BTC, side="SELL", type="TAKE_PROFIT_MARKET",
                                                          stopPrice="98000", closePosition="true"),
    }
    assert client.futures_get_order(**BTC, orderId=made["MARKET"]["orderId"])["status"] == "FILLED"
    assert client.futures_get_order(**BTC, orderId=made["LIMIT"]["orderId"])["status"] == "NEW"
    algo = {a["orderType"] for a in client.futures_get_open_orders(**BTC, conditional=True)}
    assert algo == set(info["orderTypes"]) - {"LIMIT", "MARKET"}
    for tif, price in (("GTC", "90000"), ("IOC", "95100"), ("FOK", "95100"), ("GTX", "90000")):
        order = client.futures_create_order(**limit(price=price, timeInForce=tif))
        assert order["timeInForce"] == tif and order["status"] in ("NEW", "FILLED"), order


def test_unadvertised_type_and_time_in_force_are_refused(client, btc):
    assert api_error(client.futures_create_order, **limit(timeInForce="GTD", goodTillDate=str(
        client.futures_time()["serverTime"] + 3_600_000))).code == -1115
    exc = api_error(client.futures_create_order, **BTC, side="SELL", type="TRAILING_STOP_MARKET", quantity="0.010",
                    callbackRate="1")
    assert exc.code == -1116
    assert client.futures_get_open_orders(**BTC) == [] and client.futures_get_open_orders(**BTC, conditional=True) == []
