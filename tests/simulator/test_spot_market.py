"""Spot market data through the real python-binance clients: ping, time, exchange info, price tickers, the 24 h
ticker (consistent with the klines), the order book and klines of every interval."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from binance_mcp.simulator.symbols import SPOT_SYMBOLS
from tests.simulator.helpers import by_name, rejects

SYMBOL = "BTCUSDT"
PRICE = D("95000")
INTERVALS = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]
MINUTE = 60_000
DAY = 86_400_000


@pytest.fixture(params=["sync", "async"])
def api(request, sim):
    """Call a python-binance method by name on the sync or the async client: ``await api("ping")``."""
    return by_name(request.getfixturevalue("client" if request.param == "sync" else "async_client"))


@pytest.fixture
def moved(sim):
    """BTCUSDT history is generated, then the price is moved: the live candle must follow the move."""
    sim.control("price", {"symbol": SYMBOL, "price": "96000"})
    sim.control("advance", {"steps": 3})
    sim.control("price", {"symbol": SYMBOL, "price": str(PRICE)})


async def test_ping_and_server_time(api, sim):
    assert await api("ping") == {}
    before = sim.control("state")["server_time"]
    server_time = (await api("get_server_time"))["serverTime"]
    assert isinstance(server_time, int) and before <= server_time <= sim.control("state")["server_time"]


async def test_server_time_follows_the_clock_skew(api, sim):
    sim.control("clock", {"skew_ms": 3_600_000})
    state = sim.control("state")
    assert state["server_time"] - 3_600_000 > 0
    assert (await api("get_server_time"))["serverTime"] >= state["server_time"]


async def test_exchange_info_lists_every_symbol(api):
    info = await api("get_exchange_info")
    assert info["timezone"] == "UTC" and isinstance(info["serverTime"], int)
    assert [s["symbol"] for s in info["symbols"]] == list(SPOT_SYMBOLS)
    assert {r["rateLimitType"] for r in info["rateLimits"]} >= {"REQUEST_WEIGHT", "ORDERS"}
    btc = next(s for s in info["symbols"] if s["symbol"] == SYMBOL)
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    assert set(btc["orderTypes"]) == {"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                                      "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
    assert {f["filterType"] for f in btc["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL",
                                                         "PERCENT_PRICE_BY_SIDE", "MAX_NUM_ORDERS"}
    assert await api("get_symbol_info", SYMBOL) == btc


async def test_exchange_info_for_one_symbol_and_unknown_symbol(api):
    one = await api("_get", "exchangeInfo", data={"symbol": "ETHBTC"})
    assert [s["symbol"] for s in one["symbols"]] == ["ETHBTC"]
    many = await api("_get", "exchangeInfo", data={"symbols": '["ETHBTC","BTCUSDT"]'})
    assert [s["symbol"] for s in many["symbols"]] == ["ETHBTC", "BTCUSDT"]
    err = await rejects(api, "_get", "exchangeInfo", data={"symbol": "DOGEUSDT"})
    assert (err.status_code, err.code, err.message) == (400, -1121, "Invalid symbol.")


async def test_price_tickers_follow_the_price_control(api, sim):
    sim.control("price", {"symbol": SYMBOL, "price": "95123.45"})
    sim.control("price", {"symbol": "ETHBTC", "price": "0.03456"})
    assert await api("get_symbol_ticker", symbol=SYMBOL) == {"symbol": SYMBOL, "price": "95123.45000000"}
    everything = await api("get_all_tickers")
    assert [t["symbol"] for t in everything] == list(SPOT_SYMBOLS)
    prices = {t["symbol"]: D(t["price"]) for t in everything}
    assert prices[SYMBOL] == D("95123.45") and prices["ETHBTC"] == D("0.03456")
    assert await api("get_symbol_ticker") == everything
    err = await rejects(api, "get_symbol_ticker", symbol="DOGEUSDT")
    assert (err.code, err.message) == (-1121, "Invalid symbol.")


async def test_24hr_ticker_is_consistent_with_price_and_klines(api, moved):
    ticker = await api("get_ticker", symbol=SYMBOL)
    last = D(ticker["lastPrice"])
    assert last == PRICE == D((await api("get_symbol_ticker", symbol=SYMBOL))["price"])
    assert D(ticker["highPrice"]) >= last >= D(ticker["lowPrice"]) > 0
    assert ticker["closeTime"] - ticker["openTime"] == DAY
    start = ticker["openTime"]
    minutes = await api("get_klines", symbol=SYMBOL, interval="1m", startTime=start, endTime=ticker["closeTime"],
                        limit=1000)
    minutes += await api("get_klines", symbol=SYMBOL, interval="1m", startTime=minutes[-1][0] + 1,
                         endTime=ticker["closeTime"], limit=1000)
    assert start <= minutes[0][0] < start + MINUTE and minutes[-1][0] <= ticker["closeTime"]
    assert [k[0] for k in minutes] == list(range(minutes[0][0], minutes[-1][0] + MINUTE, MINUTE))
    assert D(ticker["openPrice"]) == D(minutes[0][1])
    assert D(ticker["volume"]) == sum(D(k[5]) for k in minutes)
    # each kline's quote volume is rounded to 8 places, the ticker rounds the sum once
    assert abs(D(ticker["quoteVolume"]) - sum(D(k[7]) for k in minutes)) <= len(minutes) * D("0.00000001")
    assert ticker["count"] == sum(k[8] for k in minutes)
    assert D(ticker["highPrice"]) == max(D(k[2]) for k in minutes)
    assert D(ticker["lowPrice"]) == min(D(k[3]) for k in minutes)
    assert D(ticker["priceChange"]) == last - D(ticker["openPrice"])
    change_pct = (last - D(ticker["openPrice"])) / D(ticker["openPrice"]) * 100
    assert abs(D(ticker["priceChangePercent"]) - change_pct) <= D("0.0005")
    assert D(ticker["lowPrice"]) <= D(ticker["weightedAvgPrice"]) <= D(ticker["highPrice"])


async def test_24hr_ticker_trade_ids_and_book(api, moved):
    ticker = await api("get_ticker", symbol=SYMBOL)
    assert 0 <= ticker["firstId"] <= ticker["lastId"]
    assert ticker["lastId"] - ticker["firstId"] + 1 == ticker["count"] > 0
    book = await api("get_order_book", symbol=SYMBOL, limit=5)
    assert (ticker["bidPrice"], ticker["bidQty"]) == tuple(book["bids"][0])
    assert (ticker["askPrice"], ticker["askQty"]) == tuple(book["asks"][0])


async def test_24hr_ticker_for_all_symbols(api, sim):
    rows = await api("get_ticker")
    assert [r["symbol"] for r in rows] == list(SPOT_SYMBOLS)
    for row in rows:
        assert D(row["highPrice"]) >= D(row["lastPrice"]) >= D(row["lowPrice"])
        assert D(row["lastPrice"]) == SPOT_SYMBOLS[row["symbol"]].start_price
    err = await rejects(api, "get_ticker", symbol="DOGEUSDT")
    assert err.code == -1121


@pytest.mark.parametrize("limit", [1, 5, 10, 20, 50, 100, 500, 1000, 5000])
async def test_order_book_limits_and_ordering(api, sim, limit):
    sim.control("price", {"symbol": SYMBOL, "price": str(PRICE)})
    book = await api("get_order_book", symbol=SYMBOL, limit=limit)
    bids = [(D(p), D(q)) for p, q in book["bids"]]
    asks = [(D(p), D(q)) for p, q in book["asks"]]
    assert len(bids) == len(asks) == limit and isinstance(book["lastUpdateId"], int)
    assert bids[0][0] < asks[0][0] and bids[0][0] <= PRICE <= asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True) and len(set(bids)) == limit
    assert [p for p, _ in asks] == sorted(p for p, _ in asks) and len(set(asks)) == limit
    assert all(q > 0 and p > 0 and p % D("0.01") == 0 for p, q in bids + asks)


async def test_order_book_default_and_errors(api):
    book = await api("get_order_book", symbol=SYMBOL)
    assert len(book["bids"]) == len(book["asks"]) == 100
    assert (await rejects(api, "get_order_book", symbol="DOGEUSDT")).code == -1121
    assert (await rejects(api, "get_order_book", symbol=SYMBOL, limit=0)).code in (-1100, -1130)
    assert (await rejects(api, "get_order_book", symbol=SYMBOL, limit=5001)).code in (-1100, -1130)
    assert (await rejects(api, "get_order_book")).code == -1102


@pytest.mark.parametrize("interval", INTERVALS)
async def test_klines_of_every_interval_end_at_the_current_price(api, moved, interval):
    klines = await api("get_klines", symbol=SYMBOL, interval=interval, limit=10)
    assert len(klines) == 10
    assert D(klines[-1][4]) == PRICE
    opens = [k[0] for k in klines]
    assert opens == sorted(set(opens))
    for k in klines:
        assert len(k) == 12 and isinstance(k[0], int) and isinstance(k[6], int) and isinstance(k[8], int)
        o, h, low, c = (D(x) for x in k[1:5])
        assert h >= max(o, c) and low <= min(o, c) and low > 0
        assert k[6] > k[0] and D(k[5]) >= 0 and D(k[9]) <= D(k[5])
    for a, b in zip(klines, klines[1:], strict=False):
        assert a[6] + 1 == b[0]  # contiguous: each close time is the next open time - 1


async def test_klines_honour_start_end_and_limit(api, moved):
    latest = await api("get_klines", symbol=SYMBOL, interval="1h", limit=1000)
    assert len(latest) == 1000
    assert len(await api("get_klines", symbol=SYMBOL, interval="1h")) == 500  # the default limit
    start, end = latest[100][0], latest[109][0]
    window = await api("get_klines", symbol=SYMBOL, interval="1h", startTime=start, endTime=end)
    assert [k[0] for k in window] == [k[0] for k in latest[100:110]]
    assert window == latest[100:110]
    first3 = await api("get_klines", symbol=SYMBOL, interval="1h", startTime=start, limit=3)
    assert [k[0] for k in first3] == [k[0] for k in latest[100:103]]
    last3 = await api("get_klines", symbol=SYMBOL, interval="1h", endTime=end, limit=3)
    assert [k[0] for k in last3] == [k[0] for k in latest[107:110]]
    # Binance matches startTime against the open time: the candle that opened before it is left out.
    inside = await api("get_klines", symbol=SYMBOL, interval="1h", startTime=start + 1, limit=2)
    assert [k[0] for k in inside] == [k[0] for k in latest[101:103]]
    assert (await api("get_klines", symbol=SYMBOL, interval="1h", endTime=end + 1, limit=1))[0][0] == end


async def test_daily_kline_aggregates_its_hours(api, moved):
    days = await api("get_klines", symbol=SYMBOL, interval="1d", limit=3)
    day = days[0]
    hours = await api("get_klines", symbol=SYMBOL, interval="1h", startTime=day[0], endTime=day[6], limit=1000)
    assert len(hours) == 24 and hours[0][0] == day[0]
    assert D(day[1]) == D(hours[0][1]) and D(day[4]) == D(hours[-1][4])
    assert D(day[2]) == max(D(h[2]) for h in hours) and D(day[3]) == min(D(h[3]) for h in hours)
    assert D(day[5]) == sum(D(h[5]) for h in hours)


async def test_klines_errors(api):
    assert (await rejects(api, "get_klines", symbol=SYMBOL, interval="2m")).code == -1120
    assert (await rejects(api, "get_klines", symbol="DOGEUSDT", interval="1m")).code == -1121
    assert (await rejects(api, "get_klines", symbol=SYMBOL, interval="1m", limit=1001)).code in (-1100, -1130)
    err = await rejects(api, "get_klines", symbol=SYMBOL, interval="1m", startTime=2000, endTime=1000)
    assert err.code == -1128
