"""Spot endpoints that real clients (ccxt, Binance's connectors) use beyond the basics, through python-binance:
public and aggregate trades consistent with the klines and the 24 h ticker, the book ticker, the average price,
the rolling-window and MINI tickers, cancel-replace, the commission rates, and exchangeInfo advertising only
what the simulator does (each advertised feature works, each unadvertised one is refused and changes nothing)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from binance_mcp.simulator.market_extra import MINI_FIELDS
from tests.simulator.helpers import api_error

SYMBOL = "BTCUSDT"
BTC = {"symbol": SYMBOL}
MINUTE = 60_000


@pytest.fixture
def moved(sim):
    """History generated, then trades in the live minute, ending at 95000."""
    sim.control("price", {"symbol": SYMBOL, "price": "96000"})
    sim.control("advance", {"steps": 3})
    sim.control("price", {"symbol": SYMBOL, "price": "95000"})
    return sim


def open_orders(client) -> list[dict]:
    return client.get_open_orders(**BTC)


def balances(client) -> dict[str, tuple[D, D]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in client.get_account()["balances"]}


# -- public trades --------------------------------------------------------------------------------------------


def test_recent_trades_end_at_the_last_price_and_the_tickers_last_id(client, moved):
    trades = client.get_recent_trades(**BTC, limit=1000)
    ticker = client.get_ticker(**BTC)
    assert len(trades) == 1000
    assert [t["id"] for t in trades] == list(range(trades[0]["id"], trades[0]["id"] + 1000))
    assert trades[-1]["id"] == ticker["lastId"] and D(trades[-1]["price"]) == D(ticker["lastPrice"]) == D("95000")
    assert [t["time"] for t in trades] == sorted(t["time"] for t in trades)
    assert all(D(t["quoteQty"]) == D(t["price"]) * D(t["qty"]) and D(t["qty"]) > 0 for t in trades)
    assert set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert len(client.get_recent_trades(**BTC)) == 500  # the default limit
    assert api_error(client.get_recent_trades, symbol="NOPE").code == -1121
    assert api_error(client.get_recent_trades, **BTC, limit=1001).code == -1130


def test_each_candles_trades_make_the_candle(client, moved):
    """A full 1-minute candle's trades: as many as its trade count, first at its open, last at its close, high and
    low traded, every one inside the candle's time."""
    candle = client.get_klines(**BTC, interval="1m", limit=3)[0]
    open_time, close_time = candle[0], candle[6]
    trades = client.get_aggregate_trades(**BTC, startTime=open_time, endTime=close_time, limit=1000)
    assert len(trades) == candle[8] > 0
    prices = [D(t["p"]) for t in trades]
    assert prices[0] == D(candle[1]) and prices[-1] == D(candle[4])
    assert max(prices) == D(candle[2]) and min(prices) == D(candle[3])
    assert all(open_time <= t["T"] <= close_time and t["a"] == t["f"] == t["l"] for t in trades)
    again = client.get_aggregate_trades(**BTC, fromId=trades[1]["a"], limit=2)
    assert again == trades[1:3]  # the same trades on every call, by id
    assert set(trades[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    assert api_error(client.get_aggregate_trades, **BTC, fromId=1, startTime=open_time).code == -1128


# -- tickers --------------------------------------------------------------------------------------------------


def test_book_ticker_is_the_top_of_the_book(client, moved):
    book = client.get_order_book(**BTC, limit=5)
    top = client.get_orderbook_ticker(**BTC)
    assert top == {"symbol": SYMBOL, "bidPrice": book["bids"][0][0], "bidQty": book["bids"][0][1],
                   "askPrice": book["asks"][0][0], "askQty": book["asks"][0][1]}
    rows = client.get_orderbook_tickers(symbols=json.dumps([SYMBOL, "ETHUSDT"]))
    assert [r["symbol"] for r in rows] == [SYMBOL, "ETHUSDT"] and rows[0] == top
    assert len(client.get_orderbook_tickers()) == 6


def test_avg_price_is_the_last_five_minutes_volume_weighted(client, moved):
    avg = client.get_avg_price(**BTC)
    minutes = client.get_klines(**BTC, interval="1m", limit=5)
    want = sum(D(k[7]) for k in minutes) / sum(D(k[5]) for k in minutes)
    assert avg["mins"] == 5 and abs(D(avg["price"]) - want) < D("0.01")
    assert avg["closeTime"] == client.get_recent_trades(**BTC, limit=1)[0]["time"]  # the last trade's time


def test_rolling_window_ticker_matches_the_klines_of_its_window(client, moved):
    row = client._get("ticker", data={**BTC, "windowSize": "1h"})
    # Binance: openTime starts on a minute, so the window is up to a minute wider than asked
    assert row["openTime"] % MINUTE == 0 and 3_600_000 <= row["closeTime"] - row["openTime"] < 3_600_000 + MINUTE
    minutes = client.get_klines(**BTC, interval="1m", startTime=row["openTime"], endTime=row["closeTime"], limit=100)
    assert row["count"] == sum(k[8] for k in minutes) and row["lastId"] - row["firstId"] + 1 == row["count"]
    assert D(row["openPrice"]) == D(minutes[0][1]) and D(row["lastPrice"]) == D("95000")
    assert D(row["highPrice"]) == max(D(k[2]) for k in minutes) and D(row["volume"]) == sum(D(k[5]) for k in minutes)
    day = client._get("ticker", data={**BTC})  # default window 1d: the 24 h ticker's numbers
    full = client.get_ticker(**BTC)
    assert (day["openTime"] // MINUTE, day["lastId"]) == (full["openTime"] // MINUTE, full["lastId"])
    week = client._get("ticker", data={**BTC, "windowSize": "7d"})
    assert week["count"] > day["count"] and D(week["highPrice"]) >= D(day["highPrice"])
    many = client._get("ticker", data={"symbols": json.dumps([SYMBOL, "ETHBTC"]), "windowSize": "30m"})
    assert [r["symbol"] for r in many] == [SYMBOL, "ETHBTC"]
    for bad in ("0m", "60m", "24h", "8d", "1w"):
        assert api_error(lambda b=bad: client._get("ticker", data={**BTC, "windowSize": b})).code == -1100
    assert api_error(lambda: client._get("ticker", data={})).code == -1102


def test_mini_tickers_have_the_mini_shape(client, moved):
    full = client.get_ticker(**BTC)
    mini = client.get_ticker(**BTC, type="MINI")
    assert tuple(mini) == MINI_FIELDS and all(mini[k] == full[k] for k in MINI_FIELDS if "Time" not in k)
    assert all(tuple(r) == MINI_FIELDS for r in client.get_ticker(type="MINI"))
    rolling = client._get("ticker", data={**BTC, "type": "MINI", "windowSize": "2h"})
    assert tuple(rolling) == MINI_FIELDS
    assert api_error(client.get_ticker, **BTC, type="SMALL").code == -1100


# -- commission -----------------------------------------------------------------------------------------------


def test_commission_rates_are_what_a_fill_pays(client, sim):
    rates = client._get("account/commission", True, data=dict(BTC))
    assert rates["symbol"] == SYMBOL and set(rates) >= {"standardCommission", "taxCommission", "discount"}
    order = client.create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    (fill,) = order["fills"]
    assert D(fill["commission"]) == D(fill["qty"]) * D(rates["standardCommission"]["taker"])
    assert D(client.get_account()["commissionRates"]["taker"]) == D(rates["standardCommission"]["taker"])


# -- cancel-replace -------------------------------------------------------------------------------------------


def cancel_replace(client, **params):
    base = {**BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.02", "price": "91000",
            "cancelReplaceMode": "STOP_ON_FAILURE"}
    return client._post("order/cancelReplace", True, data={**base, **params})


def test_cancel_replace_cancels_and_places_in_one_call(client, sim):
    old = client.create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000")
    reply = cancel_replace(client, cancelOrderId=old["orderId"], newClientOrderId="replaced-1")
    assert reply["cancelResult"] == reply["newOrderResult"] == "SUCCESS"
    assert reply["cancelResponse"]["status"] == "CANCELED" and reply["cancelResponse"]["orderId"] == old["orderId"]
    assert client.get_order(**BTC, orderId=old["orderId"])["status"] == "CANCELED"
    (now_open,) = open_orders(client)
    assert now_open["clientOrderId"] == "replaced-1" and D(now_open["price"]) == D("91000")
    assert balances(client)["USDT"][1] == D("0.02") * D("91000")  # only the new order's funds are locked
    by_client_id = cancel_replace(client, cancelOrigClientOrderId="replaced-1", price="92000")
    assert by_client_id["cancelResponse"]["origClientOrderId"] == "replaced-1"


def test_cancel_replace_failures_answer_both_halves(client, sim):
    old = client.create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000")
    # the cancel fails: STOP_ON_FAILURE places nothing (-2022, HTTP 400)
    exc = api_error(cancel_replace, client=client, cancelOrderId=1)
    assert (exc.code, exc.status_code) == (-2022, 400)
    data = json.loads(exc.response.text)["data"]
    assert data["cancelResult"] == "FAILURE" and data["newOrderResult"] == "NOT_ATTEMPTED"
    assert data["cancelResponse"]["code"] == -2011 and data["newOrderResponse"] is None
    assert [o["orderId"] for o in open_orders(client)] == [old["orderId"]]
    # the new order fails after the cancel succeeded: -2021, HTTP 409, the cancel stands
    exc = api_error(cancel_replace, client=client, cancelOrderId=old["orderId"], quantity="1")
    assert (exc.code, exc.status_code) == (-2021, 409)
    data = json.loads(exc.response.text)["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"]["code"] == -2010 and open_orders(client) == []
    # ALLOW_FAILURE: the new order goes in even though the cancel failed
    exc = api_error(cancel_replace, client=client, cancelOrderId=1, cancelReplaceMode="ALLOW_FAILURE")
    data = json.loads(exc.response.text)["data"]
    assert (exc.code, data["cancelResult"], data["newOrderResult"]) == (-2021, "FAILURE", "SUCCESS")
    assert [o["orderId"] for o in open_orders(client)] == [data["newOrderResponse"]["orderId"]]
    # a malformed request changes nothing
    before = open_orders(client)
    assert api_error(cancel_replace, client=client, cancelOrderId=before[0]["orderId"], side="HOLD").code == -1117
    assert api_error(cancel_replace, client=client, cancelOrderId=before[0]["orderId"], type="OCO").code == -1116
    assert api_error(cancel_replace, client=client, cancelOrderId=before[0]["orderId"], icebergQty="0.001").code \
        == -2010
    assert api_error(cancel_replace, client=client).code == -1102
    assert open_orders(client) == before


# -- exchangeInfo: what is advertised works, what is not is refused ------------------------------------------


def test_exchange_info_flags_say_what_the_simulator_does(client, sim):
    info = client.get_symbol_info(SYMBOL)
    assert {k: info[k] for k in ("icebergAllowed", "ocoAllowed", "otoAllowed", "allowTrailingStop",
                                 "cancelReplaceAllowed", "amendAllowed", "quoteOrderQtyMarketAllowed")} == {
        "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False, "allowTrailingStop": False,
        "cancelReplaceAllowed": True, "amendAllowed": False, "quoteOrderQtyMarketAllowed": True}


def test_every_advertised_order_type_is_accepted(client, sim):
    sim.control("price", {"symbol": SYMBOL, "price": "95000"})
    sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    params = {"LIMIT": dict(timeInForce="GTC", price="90000"), "LIMIT_MAKER": dict(price="90000"), "MARKET": {},
              "STOP_LOSS": dict(stopPrice="90000"), "STOP_LOSS_LIMIT": dict(timeInForce="GTC", price="89000",
                                                                              stopPrice="90000"),
              "TAKE_PROFIT": dict(stopPrice="99000"), "TAKE_PROFIT_LIMIT": dict(timeInForce="GTC", price="99500",
                                                                                  stopPrice="99000")}
    types = client.get_symbol_info(SYMBOL)["orderTypes"]
    assert sorted(types) == sorted(params)
    for otype in types:
        side = "BUY" if otype in ("LIMIT", "LIMIT_MAKER", "MARKET") else "SELL"
        order = client.create_order(**BTC, side=side, type=otype, quantity="0.01", **params[otype])
        assert client.get_order(**BTC, orderId=order["orderId"])["type"] == otype
    quote = client.create_order(**BTC, side="BUY", type="MARKET", quoteOrderQty="100")
    assert quote["status"] == "FILLED" and D(quote["cummulativeQuoteQty"]) <= D("100")


@pytest.mark.parametrize("call", [
    lambda c: c.create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000",
                             icebergQty="0.002"),
    lambda c: c.create_order(**BTC, side="SELL", type="STOP_LOSS", quantity="0.01", trailingDelta="100"),
    lambda c: c._post("orderList/oco", True, data={**BTC, "side": "SELL", "quantity": "0.01", "aboveType": "LIMIT_MAKER",
                                                   "abovePrice": "99000", "belowType": "STOP_LOSS",
                                                   "belowStopPrice": "90000"}),
    lambda c: c._post("orderList/oto", True, data={**BTC, "workingType": "LIMIT", "workingSide": "BUY",
                                                   "workingPrice": "90000", "workingQuantity": "0.01",
                                                   "workingTimeInForce": "GTC", "pendingType": "MARKET",
                                                   "pendingSide": "SELL", "pendingQuantity": "0.01"}),
    lambda c: c._put("order/amend/keepPriority", True, data={**BTC, "orderId": 1, "newQty": "0.005"}),
], ids=["iceberg", "trailing", "oco", "oto", "amend"])
def test_unadvertised_features_are_refused_and_change_nothing(client, sim, call):
    sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    before = (balances(client), client.get_all_orders(**BTC))
    exc = api_error(call, c=client)
    assert exc.code == -2010 and "not supported" in exc.message
    assert (balances(client), client.get_all_orders(**BTC)) == before
