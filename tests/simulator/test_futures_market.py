"""USD-M futures public market data through python-binance: exchange info, tickers, mark price and funding,
order book, klines and mark-price klines."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from binance.exceptions import BinanceAPIException

BTC = {"symbol": "BTCUSDT"}
EIGHT_HOURS = 8 * 3_600_000


def set_futures(sim, price: str, mark: str | None = None, symbol: str = "BTCUSDT") -> None:
    sim.control("price", {"symbol": symbol, "market": "futures", "price": price, "mark": mark or price})


def filters_of(info: dict, symbol: str) -> dict[str, dict]:
    (sym,) = [s for s in info["symbols"] if s["symbol"] == symbol]
    return {f["filterType"]: f for f in sym["filters"]}


def test_exchange_info_uses_the_futures_filter_keys(client, sim):
    info = client.futures_exchange_info()
    assert info["futuresType"] == "U_MARGINED" and {"REQUEST_WEIGHT", "ORDERS"} <= \
        {r["rateLimitType"] for r in info["rateLimits"]}
    assert {s["symbol"] for s in info["symbols"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    f = filters_of(info, "BTCUSDT")
    assert f["MAX_NUM_ORDERS"]["limit"] == 200 and "maxNumOrders" not in f["MAX_NUM_ORDERS"]
    assert f["MAX_NUM_ALGO_ORDERS"]["limit"] == 10
    assert D(f["MIN_NOTIONAL"]["notional"]) == 100 and "minNotional" not in f["MIN_NOTIONAL"]
    assert D(f["PERCENT_PRICE"]["multiplierUp"]) == D("1.05") and D(f["PERCENT_PRICE"]["multiplierDown"]) == D("0.95")
    assert D(f["PRICE_FILTER"]["tickSize"]) == D("0.1") and D(f["LOT_SIZE"]["stepSize"]) == D("0.001")
    assert D(f["MARKET_LOT_SIZE"]["maxQty"]) == 120
    (btc,) = [s for s in info["symbols"] if s["symbol"] == "BTCUSDT"]
    assert btc["contractType"] == "PERPETUAL" and btc["pricePrecision"] == 2 and btc["quantityPrecision"] == 3
    assert "STOP_MARKET" in btc["orderTypes"] and "GTX" in btc["timeInForce"]


def test_exchange_info_filters_match_what_orders_enforce(client, sim):
    set_futures(sim, "95000")
    f = filters_of(client.futures_exchange_info(), "BTCUSDT")
    cap = D("95000") * D(f["PERCENT_PRICE"]["multiplierUp"])
    with pytest.raises(BinanceAPIException) as info:
        client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                    price=str(cap + D(f["PRICE_FILTER"]["tickSize"])))
    assert info.value.code == -4016
    ok = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                     price=str(cap - 5000))
    assert ok["status"] == "NEW"


@pytest.mark.parametrize("price", ["95000", "3533.4", "991790.9", "123.4"])
def test_symbol_ticker_returns_the_price_that_was_set(client, sim, price):
    set_futures(sim, price)
    out = client.futures_symbol_ticker(**BTC)
    assert out["symbol"] == "BTCUSDT" and D(out["price"]) == D(price) and isinstance(out["time"], int)
    assert sim.control("requests")[-1]["path"] == "/fapi/v2/ticker/price"
    assert D(client.futures_ticker(**BTC)["lastPrice"]) == D(price)
    assert D(client.futures_klines(**BTC, interval="1m", limit=1)[-1][4]) == D(price)


def test_symbol_ticker_for_all_symbols(client, sim):
    rows = client.futures_symbol_ticker()
    assert {r["symbol"] for r in rows} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert all(D(r["price"]) > 0 for r in rows)


def test_mark_price_index_and_funding(client, sim):
    sim.control("price", {"symbol": "BTCUSDT", "price": "96000"})  # spot
    set_futures(sim, "95990", mark="96010")
    spot = D(client.get_symbol_ticker(**BTC)["price"])
    out = client.futures_mark_price(**BTC)
    assert D(out["markPrice"]) == D("96010") and D(out["indexPrice"]) == spot == D("96000")
    premium = (D("96010") - spot) / spot
    rate = D(out["lastFundingRate"])
    assert abs(rate - premium) <= D("0.0005") and rate == D("0.0001")  # premium within the clamp: 0.01 %
    now = out["time"]
    assert out["nextFundingTime"] % EIGHT_HOURS == 0 and now < out["nextFundingTime"] <= now + EIGHT_HOURS
    assert {r["symbol"] for r in client.futures_mark_price()} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


def test_funding_rate_follows_the_premium(client, sim):
    sim.control("price", {"symbol": "BTCUSDT", "price": "96000"})
    # premium + clamp(0.01 % - premium, -0.05 %, +0.05 %): beyond the clamp the rate trails the premium by 0.05 %
    set_futures(sim, "96000", mark="96480")  # +0.5 % premium
    assert D(client.futures_mark_price(**BTC)["lastFundingRate"]) == D("0.0045")
    set_futures(sim, "96000", mark="95520")  # -0.5 %
    assert D(client.futures_mark_price(**BTC)["lastFundingRate"]) == D("-0.0045")


def test_24hr_ticker(client, sim):
    set_futures(sim, "95000")
    t = client.futures_ticker(**BTC)
    assert D(t["lastPrice"]) == D("95000")
    assert D(t["lowPrice"]) <= D(t["lastPrice"]) <= D(t["highPrice"])
    assert D(t["priceChange"]) == D(t["lastPrice"]) - D(t["openPrice"])
    assert t["closeTime"] - t["openTime"] == 86_400_000 and D(t["volume"]) > 0
    assert len(client.futures_ticker()) == 3


def test_order_book_around_the_last_price(client, sim):
    set_futures(sim, "95000")
    book = client.futures_order_book(**BTC, limit=10)
    bids = [(D(p), D(q)) for p, q in book["bids"]]
    asks = [(D(p), D(q)) for p, q in book["asks"]]
    assert len(bids) == len(asks) == 10
    assert bids[0][0] <= D("95000") < asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert all(q > 0 and (q / D("0.001")) % 1 == 0 for _, q in bids + asks)
    assert all((p / D("0.1")) % 1 == 0 for p, _ in bids + asks)
    assert isinstance(book["E"], int) and isinstance(book["T"], int)
    with pytest.raises(BinanceAPIException):
        client.futures_order_book(**BTC, limit=7)


def test_klines_and_mark_price_klines(client, sim):
    set_futures(sim, "95000", mark="95040")
    klines = client.futures_klines(**BTC, interval="1m", limit=5)
    marks = client.futures_mark_price_klines(**BTC, interval="1m", limit=5)
    assert len(klines) == len(marks) == 5
    assert D(klines[-1][4]) == D("95000") and D(marks[-1][4]) == D("95040")
    assert [k[0] for k in klines] == [m[0] for m in marks]
    for k in klines + marks:
        o, h, low, c = (D(x) for x in k[1:5])
        assert low <= min(o, c) and h >= max(o, c) and k[6] == k[0] + 59_999
    assert all(D(m[5]) == 0 for m in marks)  # mark klines carry no volume
    hourly = client.futures_klines(**BTC, interval="1h", limit=3)
    assert hourly[1][0] - hourly[0][0] == 3_600_000
    with pytest.raises(BinanceAPIException) as info:
        client.futures_klines(**BTC, interval="7m")
    assert info.value.code == -1120


def test_unknown_symbol(client, sim):
    with pytest.raises(BinanceAPIException) as info:
        client.futures_symbol_ticker(symbol="DOGEUSDT")
    assert info.value.code == -1121


async def test_async_market_data(async_client, sim):
    set_futures(sim, "95000", mark="95010")
    assert D((await async_client.futures_symbol_ticker(**BTC))["price"]) == D("95000")
    assert D((await async_client.futures_mark_price(**BTC))["markPrice"]) == D("95010")
    info = await async_client.futures_exchange_info()
    assert filters_of(info, "SOLUSDT")["MIN_NOTIONAL"]["notional"] == "5"
    book = await async_client.futures_order_book(**BTC, limit=5)
    assert D(book["bids"][0][0]) < D(book["asks"][0][0])
    marks = await async_client.futures_mark_price_klines(**BTC, interval="1m", limit=2)
    assert D(marks[-1][4]) == D("95010")
    assert D((await async_client.futures_ticker(**BTC))["lastPrice"]) == D("95000")
