"""Market data tools over stdio, each checked against the simulator's own REST answer: spot and futures price,
order book, spot and futures klines, 24 h tickers, exchange info, server time."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC = "BTCUSDT"
HOUR = 3_600_000


KLINE_COLUMNS = ["openTime", "open", "high", "low", "close", "volume", "quoteVolume", "takerBuyBaseVolume"]


def candle_tuple(row: list) -> tuple:
    return (row[0], *(D(x) for x in row[1:]))


def raw_tuple(k: list) -> tuple:
    """Binance's kline array, without closeTime (k[6]), the trade count (k[8]), the taker buy quote volume (k[10])
    and the unused last field."""
    return (k[0], D(k[1]), D(k[2]), D(k[3]), D(k[4]), D(k[5]), D(k[7]), D(k[9]))


def ticker_tuple(t: dict) -> tuple:
    return (t["symbol"], D(t["lastPrice"]), D(t["priceChangePercent"]), D(t["highPrice"]), D(t["lowPrice"]),
            D(t["volume"]), D(t["quoteVolume"]))


def raw_ticker_tuple(t: dict) -> tuple:
    return (t["symbol"], D(t["lastPrice"]), D(t["priceChangePercent"]), D(t["highPrice"]), D(t["lowPrice"]),
            D(t["volume"]), D(t["quoteVolume"]))


async def test_spot_price_follows_the_exchange(paper: Paper):
    r = await paper.call("binance_spot_price", {"symbol": "btcusdt"})
    assert r == {"prices": [{"symbol": BTC, "price": "97000"}], "total": 1, "truncated": False}
    paper.set_price(BTC, "101234.56")
    assert (await paper.call("binance_spot_price", {"symbol": BTC}))["prices"][0]["price"] == "101234.56"
    raw = {row["symbol"]: D(row["price"]) for row in paper.public("/api/v3/ticker/price")}
    every = await paper.call("binance_spot_price")
    assert {p["symbol"]: D(p["price"]) for p in every["prices"]} == raw
    assert every["total"] == len(raw) == len(every["prices"]) and every["truncated"] is False
    two = await paper.call("binance_spot_price", {"limit": 2})
    assert (len(two["prices"]), two["total"], two["truncated"]) == (2, len(raw), True)


async def test_spot_price_failures(paper: Paper):
    await paper.invalid("binance_spot_price", {"symbol": "b"}, "symbol")
    await paper.invalid("binance_spot_price", {"limit": 0}, "limit")
    await paper.unknown_symbol("binance_spot_price", {"symbol": "NOPEUSDT"}, "Unknown symbol")


async def test_futures_price_has_last_mark_index_and_funding(paper: Paper):
    paper.set_price(BTC, "96000.5", market="futures", mark="95990.25")
    r = await paper.call("binance_futures_price", {"symbol": BTC})
    (p,) = r["prices"]
    last = paper.public("/fapi/v2/ticker/price", symbol=BTC)
    prem = paper.public("/fapi/v1/premiumIndex", symbol=BTC)
    assert D(p["lastPrice"]) == D(last["price"]) == Decimal("96000.5")
    assert D(p["markPrice"]) == D(prem["markPrice"]) == Decimal("95990.25")  # mark, not last
    assert D(p["indexPrice"]) == D(prem["indexPrice"]) == Decimal("97000")
    assert D(p["fundingRate"]) == D(prem["lastFundingRate"]) and p["nextFundingTime"] == prem["nextFundingTime"]
    assert p["nextFundingTime"] % (8 * HOUR) == 0 and p["nextFundingTimeIso"].endswith(":00:00.000Z")
    every = await paper.call("binance_futures_price")
    assert [x["symbol"] for x in every["prices"]] == [x["symbol"] for x in paper.public("/fapi/v1/premiumIndex")]
    assert every["total"] == 3


async def test_futures_price_failures(paper: Paper):
    await paper.invalid("binance_futures_price", {"limit": 5001}, "limit")
    await paper.unknown_symbol("binance_futures_price", {"symbol": "XRPUSDT"})  # spot only


async def test_orderbook_matches_the_depth_endpoint(paper: Paper):
    r = await paper.call("binance_spot_orderbook", {"symbol": BTC, "limit": 10})
    raw = paper.public("/api/v3/depth", symbol=BTC, limit=10)
    assert set(r) == {"bids", "asks"}  # [price, qty] pairs, as Binance sends them
    assert [(D(p), D(q)) for p, q in r["bids"]] == [(D(p), D(q)) for p, q in raw["bids"]]
    assert [(D(p), D(q)) for p, q in r["asks"]] == [(D(p), D(q)) for p, q in raw["asks"]]
    bids, asks = [D(p) for p, _ in r["bids"]], [D(p) for p, _ in r["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]  # best first
    assert len((await paper.call("binance_spot_orderbook", {"symbol": BTC}))["bids"]) == 100  # default limit


async def test_orderbook_failures(paper: Paper):
    await paper.invalid("binance_spot_orderbook", {"symbol": BTC, "limit": 7}, "limit")
    await paper.invalid("binance_spot_orderbook", {}, "symbol")
    await paper.unknown_symbol("binance_spot_orderbook", {"symbol": "NOPEUSDT"})


async def test_spot_klines_match_the_exchange(paper: Paper):
    end = int(time.time() * 1000) // HOUR * HOUR - 3 * HOUR  # closed candles only: they never change
    args = {"symbol": BTC, "interval": "1h", "startTime": end - 5 * HOUR, "endTime": end}
    r = await paper.call("binance_spot_klines", args)
    raw = paper.public("/api/v3/klines", symbol=BTC, interval="1h", startTime=end - 5 * HOUR, endTime=end)
    # Rows under one column header; nothing the call already said (symbol, interval) comes back.
    assert set(r) == {"columns", "candles", "total", "truncated"} and r["columns"] == KLINE_COLUMNS
    assert (r["total"], r["truncated"]) == (len(raw), False)
    assert [candle_tuple(c) for c in r["candles"]] == [raw_tuple(k) for k in raw] and len(raw) == 6
    assert r["candles"][0][0] == end - 5 * HOUR
    last = await paper.call("binance_spot_klines", {"symbol": BTC, "interval": "1m", "limit": 3})
    assert (last["total"], last["truncated"]) == (3, True)
    assert D(last["candles"][-1][KLINE_COLUMNS.index("close")]) == Decimal("97000")  # the live candle
    default = await paper.call("binance_spot_klines", {"symbol": BTC, "interval": "1h"})
    assert len(default["candles"]) == 100 and default["truncated"] is True  # the default limit


async def test_spot_klines_failures(paper: Paper):
    await paper.invalid("binance_spot_klines", {"symbol": BTC, "interval": "2m"}, "interval")
    await paper.invalid("binance_spot_klines", {"symbol": BTC, "interval": "1h", "limit": 1001}, "limit")
    await paper.unknown_symbol("binance_spot_klines", {"symbol": "NOPEUSDT", "interval": "1h"})


async def test_futures_klines_last_and_mark(paper: Paper):
    end = int(time.time() * 1000) // HOUR * HOUR - 2 * HOUR
    window = {"startTime": end - 3 * HOUR, "endTime": end}
    last = await paper.call("binance_futures_klines", {"symbol": BTC, "interval": "1h", **window})
    mark = await paper.call("binance_futures_klines", {"symbol": BTC, "interval": "1h", "priceType": "mark",
                                                       **window})
    raw_last = paper.public("/fapi/v1/klines", symbol=BTC, interval="1h", **window)
    raw_mark = paper.public("/fapi/v1/markPriceKlines", symbol=BTC, interval="1h", **window)
    assert last["priceType"] == "last" and mark["priceType"] == "mark"
    assert last["columns"] == mark["columns"] == KLINE_COLUMNS
    assert [candle_tuple(c) for c in last["candles"]] == [raw_tuple(k) for k in raw_last] and len(raw_last) == 4
    assert [candle_tuple(c) for c in mark["candles"]] == [raw_tuple(k) for k in raw_mark]
    close = KLINE_COLUMNS.index("close")
    assert last["candles"][0][close] != mark["candles"][0][close]  # two different series


async def test_futures_klines_failures(paper: Paper):
    await paper.invalid("binance_futures_klines", {"symbol": BTC, "interval": "1h", "priceType": "index"},
                        "priceType")
    await paper.invalid("binance_futures_klines", {"symbol": BTC, "interval": "1h", "startTime": "yesterday"},
                        "startTime")
    await paper.unknown_symbol("binance_futures_klines", {"symbol": "XRPUSDT", "interval": "1h"})


async def test_spot_24hr_ticker_matches_the_exchange(paper: Paper):
    before = paper.public("/api/v3/ticker/24hr", symbol=BTC)
    r = await paper.call("binance_spot_24hr_ticker", {"symbol": BTC})
    after = paper.public("/api/v3/ticker/24hr", symbol=BTC)
    (t,) = r["tickers"]
    assert ticker_tuple(t) in (raw_ticker_tuple(before), raw_ticker_tuple(after))  # a minute may roll over
    assert D(t["lastPrice"]) == Decimal("97000") and D(t["lowPrice"]) <= D(t["lastPrice"]) <= D(t["highPrice"])
    assert set(t) == {"symbol", "lastPrice", "priceChangePercent", "highPrice", "lowPrice", "volume", "quoteVolume"}
    every = await paper.call("binance_spot_24hr_ticker", {"limit": 4})
    assert (len(every["tickers"]), every["total"], every["truncated"]) == (4, 6, True)


async def test_spot_24hr_ticker_failures(paper: Paper):
    await paper.invalid("binance_spot_24hr_ticker", {"symbol": "BTC USDT"}, "symbol")
    await paper.unknown_symbol("binance_spot_24hr_ticker", {"symbol": "NOPEUSDT"})


async def test_futures_24hr_ticker_matches_the_exchange(paper: Paper):
    before = paper.public("/fapi/v1/ticker/24hr", symbol=BTC)
    r = await paper.call("binance_futures_24hr_ticker", {"symbol": BTC})
    after = paper.public("/fapi/v1/ticker/24hr", symbol=BTC)
    (t,) = r["tickers"]
    assert ticker_tuple(t) in (raw_ticker_tuple(before), raw_ticker_tuple(after))
    assert D(t["lastPrice"]) == D(paper.public("/fapi/v2/ticker/price", symbol=BTC)["price"])
    every = await paper.call("binance_futures_24hr_ticker")
    assert [x["symbol"] for x in every["tickers"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


async def test_futures_24hr_ticker_failures(paper: Paper):
    await paper.invalid("binance_futures_24hr_ticker", {"limit": -1}, "limit")
    await paper.unknown_symbol("binance_futures_24hr_ticker", {"symbol": "XRPUSDT"})


def raw_filters(row: dict) -> dict:
    return {f["filterType"]: f for f in row["filters"]}


async def test_exchange_info_honours_the_market(paper: Paper):
    spot = await paper.call("binance_exchange_info", {"symbol": BTC})
    fut = await paper.call("binance_exchange_info", {"market": "futures", "symbol": BTC})
    raw_spot = raw_filters(paper.public("/api/v3/exchangeInfo", symbol=BTC)["symbols"][0])
    raw_fut = raw_filters([s for s in paper.public("/fapi/v1/exchangeInfo")["symbols"] if s["symbol"] == BTC][0])
    (s,), (f,) = spot["symbols"], fut["symbols"]
    assert D(s["tickSize"]) == D(raw_spot["PRICE_FILTER"]["tickSize"]) == Decimal("0.01")
    assert D(f["tickSize"]) == D(raw_fut["PRICE_FILTER"]["tickSize"]) == Decimal("0.1")  # not the spot rules
    lot = raw_spot["LOT_SIZE"]
    assert D(s["stepSize"]) == D(lot["stepSize"]) and D(s["minQty"]) == D(lot["minQty"])
    assert D(s["maxQty"]) == D(lot["maxQty"]) and D(f["maxQty"]) == D(raw_fut["LOT_SIZE"]["maxQty"])
    assert D(s["minNotional"]) == D(raw_spot["NOTIONAL"]["minNotional"]) == Decimal("5")
    assert D(f["minNotional"]) == D(raw_fut["MIN_NOTIONAL"]["notional"]) == Decimal("100")
    assert (s["baseAsset"], s["quoteAsset"], s["status"]) == ("BTC", "USDT", "TRADING")
    assert "LIMIT_MAKER" in s["orderTypes"] and "STOP_MARKET" in f["orderTypes"]
    assert set(spot) == {"symbols", "total", "truncated"}  # no rateLimits: the server keeps to them itself
    all_fut = await paper.call("binance_exchange_info", {"market": "futures"})
    assert [x["symbol"] for x in all_fut["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    some = await paper.call("binance_exchange_info", {"limit": 2})
    assert (len(some["symbols"]), some["total"], some["truncated"]) == (2, 6, True)


async def test_exchange_info_failures(paper: Paper):
    await paper.invalid("binance_exchange_info", {"market": "margin"}, "market")
    await paper.call("binance_exchange_info", {"market": "futures"})  # cached from here on
    text = await paper.error("binance_exchange_info", {"market": "futures", "symbol": "XRPUSDT"})
    assert text.startswith("UNKNOWN_SYMBOL: XRPUSDT is not a futures symbol") and "binance_exchange_info" in text


async def test_server_time_spot_and_futures(paper: Paper):
    for market, path in (("spot", "/api/v3/time"), ("futures", "/fapi/v1/time")):
        before = paper.last_seq()
        local = time.time() * 1000
        r = await paper.call("binance_server_time", {"market": market})
        assert set(r) == {"serverTime", "serverTimeIso", "offsetMs"}
        assert abs(r["serverTime"] - time.time() * 1000) < 2000 and r["serverTimeIso"].endswith("Z")
        assert abs(r["offsetMs"]) < 1000 and abs(r["serverTime"] - r["offsetMs"] - local) < 2000
        assert [e["path"] for e in paper.requests(before)] == [path]
    paper.sim("clock", {"skew_ms": -30000})
    try:
        r = await paper.call("binance_server_time", {"market": "futures"})
        assert -31000 < r["offsetMs"] < -29000 and r["serverTimeIso"].endswith("Z")
    finally:
        paper.sim("clock", {"skew_ms": 0})


async def test_server_time_failures(paper: Paper):
    await paper.invalid("binance_server_time", {"market": "options"}, "market")
    paper.sim("faults", {"kind": "non_json", "path": "/api/v3/time", "count": 3, "status": 200})
    text = await paper.error("binance_server_time", {})
    assert text.startswith("EXCHANGE_UNAVAILABLE: Reading the server time"), text
    assert "not JSON" in text and "connection failed" not in text
    paper.sim("faults", {"kind": "error_5xx", "path": "/fapi/v1/time", "count": 3, "status": 503})
    await paper.rejected("binance_server_time", {"market": "futures"}, -1008, fault="error_5xx")
