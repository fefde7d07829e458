"""Market data tools (read, public): prices, mark price and funding, order book, candles, 24 h stats, rules, time."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from binance_mcp.exchange.filters import SymbolRules
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, D, Dec, Result, Symbol, TimeMs, ToolDef, header, iso

Market = Literal["spot", "futures"]
Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]


class PriceArgs(Args):
    symbol: Symbol | None = None
    limit: int = Field(100, ge=1, le=5000)


class Price(BaseModel):
    symbol: str
    price: Dec


class PriceList(Result):
    prices: list[Price]
    total: int
    truncated: bool


async def spot_price(args: PriceArgs, deps: Deps) -> PriceList:
    if args.symbol:
        row = await deps.exchange.call("get_symbol_ticker", f"Reading the {args.symbol} price", signed=False,
                                       symbol=args.symbol)
        rows = [row]
    else:
        rows = await deps.exchange.call("get_all_tickers", "Reading all spot prices", signed=False)
    prices = [Price(symbol=r["symbol"], price=D(r["price"])) for r in rows]
    shown = prices[: args.limit]
    return PriceList(prices=shown, total=len(prices), truncated=len(prices) > len(shown))


class FuturesPrice(BaseModel):
    symbol: str
    lastPrice: Dec
    markPrice: Dec
    indexPrice: Dec
    fundingRate: Dec
    nextFundingTime: int
    nextFundingTimeIso: str | None


class FuturesPriceList(Result):
    prices: list[FuturesPrice]
    total: int
    truncated: bool


async def futures_price(args: PriceArgs, deps: Deps) -> FuturesPriceList:
    what = "Reading futures prices"
    last = await deps.exchange.call("futures_symbol_ticker", what, signed=False, symbol=args.symbol)
    marks = await deps.exchange.call("futures_mark_price", what, signed=False, symbol=args.symbol)
    last_rows = last if isinstance(last, list) else [last]
    mark_by = {m["symbol"]: m for m in (marks if isinstance(marks, list) else [marks])}
    rows = []
    for r in last_rows:
        m = mark_by.get(r["symbol"])
        if m is None:
            continue
        rows.append(FuturesPrice(symbol=r["symbol"], lastPrice=D(r["price"]), markPrice=D(m["markPrice"]),
                                 indexPrice=D(m["indexPrice"]), fundingRate=D(m["lastFundingRate"]),
                                 nextFundingTime=int(m["nextFundingTime"]),
                                 nextFundingTimeIso=iso(int(m["nextFundingTime"]))))
    shown = rows[: args.limit]
    return FuturesPriceList(prices=shown, total=len(rows), truncated=len(rows) > len(shown))


class BookArgs(Args):
    symbol: Symbol
    limit: Literal[5, 10, 20, 50, 100, 500, 1000, 5000] = 100


Level = tuple[Dec, Dec]


class BookResult(Result):
    """[price, qty] pairs, best first (bids highest, asks lowest)."""

    bids: list[Level]
    asks: list[Level]


async def spot_orderbook(args: BookArgs, deps: Deps) -> BookResult:
    book = await deps.exchange.call("get_order_book", f"Reading the {args.symbol} order book", signed=False,
                                    symbol=args.symbol, limit=args.limit)
    return BookResult(bids=[(D(p), D(q)) for p, q in book["bids"]], asks=[(D(p), D(q)) for p, q in book["asks"]])


class KlinesArgs(Args):
    symbol: Symbol
    interval: Interval
    limit: int = Field(100, ge=1, le=1000)
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None


class FuturesKlinesArgs(KlinesArgs):
    priceType: Literal["last", "mark"] = "last"


# Binance's kline array, in its order, without closeTime (openTime + interval - 1 ms), the number of trades,
# takerBuyQuoteVolume (about takerBuyBaseVolume x quoteVolume / volume) and the unused last field: 100 candles
# stay under 12 KB, and after openTime every cell is a decimal string (the row's schema says "string" once).
KLINE_COLUMNS = ("openTime", "open", "high", "low", "close", "volume", "quoteVolume", "takerBuyBaseVolume")
Candle = tuple[int, Dec, Dec, Dec, Dec, Dec, Dec, Dec]


class KlinesResult(Result):
    """Candles as Binance's kline arrays, oldest first. Left out: closeTime (openTime + interval - 1 ms), the
    number of trades, takerBuyQuoteVolume and the unused last field. truncated: limit candles came back, more
    exist."""

    columns: header(*KLINE_COLUMNS)
    candles: list[Candle]
    total: int
    truncated: bool


class FuturesKlinesResult(KlinesResult):
    priceType: str


def candles_from(rows: list) -> list[Candle]:
    return [(int(k[0]), D(k[1]), D(k[2]), D(k[3]), D(k[4]), D(k[5]), D(k[7]), D(k[9])) for k in rows]


async def spot_klines(args: KlinesArgs, deps: Deps) -> KlinesResult:
    rows = await deps.exchange.call("get_klines", f"Reading {args.symbol} candles", signed=False, symbol=args.symbol,
                                    interval=args.interval, limit=args.limit, startTime=args.startTime,
                                    endTime=args.endTime)
    candles = candles_from(rows)
    return KlinesResult(columns=KLINE_COLUMNS, candles=candles, total=len(candles),
                        truncated=len(candles) >= args.limit)


async def futures_klines(args: FuturesKlinesArgs, deps: Deps) -> FuturesKlinesResult:
    method = "futures_mark_price_klines" if args.priceType == "mark" else "futures_klines"
    rows = await deps.exchange.call(method, f"Reading {args.symbol} futures candles", signed=False,
                                    symbol=args.symbol, interval=args.interval, limit=args.limit,
                                    startTime=args.startTime, endTime=args.endTime)
    candles = candles_from(rows)
    return FuturesKlinesResult(columns=KLINE_COLUMNS, candles=candles, total=len(candles),
                               truncated=len(candles) >= args.limit, priceType=args.priceType)


class TickerArgs(Args):
    symbol: Symbol | None = None
    limit: int = Field(100, ge=1, le=5000)


class Ticker(BaseModel):
    """The last 24 h up to now. Left out of Binance's ticker: priceChange and openPrice (lastPrice and
    priceChangePercent give them), weightedAvgPrice (quoteVolume / volume), the trade count and the window's
    times."""

    symbol: str
    lastPrice: Dec
    priceChangePercent: Dec
    highPrice: Dec
    lowPrice: Dec
    volume: Dec
    quoteVolume: Dec


class TickerList(Result):
    tickers: list[Ticker]
    total: int
    truncated: bool


def _tickers(raw: dict | list, limit: int) -> TickerList:
    rows = raw if isinstance(raw, list) else [raw]
    tickers = [Ticker(symbol=t["symbol"], lastPrice=D(t["lastPrice"]), priceChangePercent=D(t["priceChangePercent"]),
                      highPrice=D(t["highPrice"]), lowPrice=D(t["lowPrice"]), volume=D(t["volume"]),
                      quoteVolume=D(t["quoteVolume"])) for t in rows]
    shown = tickers[:limit]
    return TickerList(tickers=shown, total=len(tickers), truncated=len(tickers) > len(shown))


async def spot_24hr(args: TickerArgs, deps: Deps) -> TickerList:
    raw = await deps.exchange.call("get_ticker", "Reading spot 24h statistics", signed=False, symbol=args.symbol)
    return _tickers(raw, args.limit)


async def futures_24hr(args: TickerArgs, deps: Deps) -> TickerList:
    raw = await deps.exchange.call("futures_ticker", "Reading futures 24h statistics", signed=False,
                                   symbol=args.symbol)
    return _tickers(raw, args.limit)


class InfoArgs(Args):
    market: Market = "spot"
    symbol: Symbol | None = None
    limit: int = Field(100, ge=1, le=5000)


class SymbolInfo(BaseModel):
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    tickSize: Dec
    stepSize: Dec
    minQty: Dec
    maxQty: Dec
    minNotional: Dec
    orderTypes: list[str]


class InfoResult(Result):
    symbols: list[SymbolInfo]
    total: int
    truncated: bool


async def exchange_info(args: InfoArgs, deps: Deps) -> InfoResult:
    info = await deps.exchange.exchange_info(args.market)
    rows = info.get("symbols", [])
    if args.symbol:
        rows = [await deps.exchange.symbol_info(args.market, args.symbol)]
    out = []
    for row in rows:
        r = SymbolRules.from_info(row, args.market)
        out.append(SymbolInfo(symbol=r.symbol, status=r.status, baseAsset=r.base, quoteAsset=r.quote,
                              tickSize=r.tick_size, stepSize=r.step_size, minQty=r.min_qty, maxQty=r.max_qty,
                              minNotional=r.min_notional,
                              orderTypes=list(r.order_types)))
    shown = out[: args.limit]
    return InfoResult(symbols=shown, total=len(out), truncated=len(out) > len(shown))


class TimeArgs(Args):
    market: Market = "spot"


class TimeResult(Result):
    serverTime: int
    serverTimeIso: str | None
    offsetMs: int


async def server_time(args: TimeArgs, deps: Deps) -> TimeResult:
    method = "futures_time" if args.market == "futures" else "get_server_time"
    before = time.time()
    r = await deps.exchange.call(method, "Reading the server time", signed=False)
    local = int((before + time.time()) / 2 * 1000)
    st = int(r["serverTime"])
    return TimeResult(serverTime=st, serverTimeIso=iso(st), offsetMs=st - local)


TOOLS = [
    ToolDef("binance_spot_price", "Latest spot price of one symbol or all.", PriceArgs, PriceList, spot_price),
    ToolDef("binance_futures_price", "USD-M perpetual last price AND mark price, index price, funding rate and "
            "next funding time; one symbol or all.", PriceArgs, FuturesPriceList, futures_price),
    ToolDef("binance_spot_orderbook", "Spot order book: bids and asks as [price, qty], best first.", BookArgs,
            BookResult, spot_orderbook),
    ToolDef("binance_spot_klines", "Spot candles, interval 1m..1M, oldest first: rows of open time, OHLCV, "
            "quote volume, taker buy volume.", KlinesArgs, KlinesResult, spot_klines),
    ToolDef("binance_futures_klines", "Futures candles, as spot's; priceType last (trades, default) or mark.",
            FuturesKlinesArgs, FuturesKlinesResult, futures_klines),
    ToolDef("binance_spot_24hr_ticker", "Rolling 24 h spot statistics: last price, change %, high, low, volume; one "
            "symbol or all.", TickerArgs, TickerList, spot_24hr),
    ToolDef("binance_futures_24hr_ticker", "Rolling 24 h futures statistics, as spot's.", TickerArgs, TickerList,
            futures_24hr),
    ToolDef("binance_exchange_info", "Spot or futures trading rules, one symbol or all: status, assets, tick and "
            "step size, min/max quantity, min notional, order types.", InfoArgs, InfoResult,
            exchange_info),
    ToolDef("binance_server_time", "Exchange server time and its offset from this machine's clock (server - local).",
            TimeArgs, TimeResult, server_time),
]
