"""Market data tools (read, public): prices, mark price and funding, order book, candles, 24 h stats, rules, time."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from binance_mcp.exchange.filters import SymbolRules
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, D, Dec, Result, Symbol, TimeMs, ToolDef, iso

Market = Literal["spot", "futures"]
Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]


class PriceArgs(Args):
    symbol: Symbol | None = Field(None, description="omit for all symbols")
    limit: int = Field(100, ge=1, le=5000, description="max rows when symbol is omitted")


class Price(BaseModel):
    symbol: str
    price: Dec


class PriceList(Result):
    prices: list[Price]
    count: int
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
    return PriceList(prices=shown, count=len(shown), total=len(prices), truncated=len(prices) > len(shown))


class FuturesPrice(BaseModel):
    symbol: str
    last_price: Dec
    mark_price: Dec
    index_price: Dec
    funding_rate: Dec = Field(description="last funding rate, e.g. 0.0001 = 0.01 % per 8 h")
    next_funding_time: int
    next_funding_time_iso: str | None


class FuturesPriceList(Result):
    prices: list[FuturesPrice]
    count: int
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
        rows.append(FuturesPrice(symbol=r["symbol"], last_price=D(r["price"]), mark_price=D(m["markPrice"]),
                                 index_price=D(m["indexPrice"]), funding_rate=D(m["lastFundingRate"]),
                                 next_funding_time=int(m["nextFundingTime"]),
                                 next_funding_time_iso=iso(int(m["nextFundingTime"]))))
    shown = rows[: args.limit]
    return FuturesPriceList(prices=shown, count=len(shown), total=len(rows), truncated=len(rows) > len(shown))


class BookArgs(Args):
    symbol: Symbol
    limit: Literal[5, 10, 20, 50, 100, 500, 1000, 5000] = 100


class Level(BaseModel):
    price: Dec
    qty: Dec


class BookResult(Result):
    symbol: str
    last_update_id: int
    bids: list[Level] = Field(description="best (highest) first")
    asks: list[Level] = Field(description="best (lowest) first")


async def spot_orderbook(args: BookArgs, deps: Deps) -> BookResult:
    book = await deps.exchange.call("get_order_book", f"Reading the {args.symbol} order book", signed=False,
                                    symbol=args.symbol, limit=args.limit)
    return BookResult(symbol=args.symbol, last_update_id=int(book.get("lastUpdateId", 0)),
                      bids=[Level(price=D(p), qty=D(q)) for p, q in book["bids"]],
                      asks=[Level(price=D(p), qty=D(q)) for p, q in book["asks"]])


class KlinesArgs(Args):
    symbol: Symbol
    interval: Interval
    limit: int = Field(500, ge=1, le=1000)
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None


class FuturesKlinesArgs(KlinesArgs):
    priceType: Literal["last", "mark"] = "last"


class Candle(BaseModel):
    open_time: int
    open_time_iso: str | None
    open: Dec
    high: Dec
    low: Dec
    close: Dec
    volume: Dec
    close_time: int
    quote_volume: Dec
    trades: int
    taker_buy_base: Dec
    taker_buy_quote: Dec


class KlinesResult(Result):
    symbol: str
    interval: str
    price_type: str = Field(description="last (trades) or mark")
    candles: list[Candle]
    count: int


def candles_from(rows: list) -> list[Candle]:
    return [Candle(open_time=int(k[0]), open_time_iso=iso(int(k[0])), open=D(k[1]), high=D(k[2]), low=D(k[3]),
                   close=D(k[4]), volume=D(k[5]), close_time=int(k[6]), quote_volume=D(k[7]), trades=int(k[8]),
                   taker_buy_base=D(k[9]), taker_buy_quote=D(k[10])) for k in rows]


async def spot_klines(args: KlinesArgs, deps: Deps) -> KlinesResult:
    rows = await deps.exchange.call("get_klines", f"Reading {args.symbol} candles", signed=False, symbol=args.symbol,
                                    interval=args.interval, limit=args.limit, startTime=args.startTime,
                                    endTime=args.endTime)
    candles = candles_from(rows)
    return KlinesResult(symbol=args.symbol, interval=args.interval, price_type="last", candles=candles,
                        count=len(candles))


async def futures_klines(args: FuturesKlinesArgs, deps: Deps) -> KlinesResult:
    method = "futures_mark_price_klines" if args.priceType == "mark" else "futures_klines"
    rows = await deps.exchange.call(method, f"Reading {args.symbol} futures candles", signed=False,
                                    symbol=args.symbol, interval=args.interval, limit=args.limit,
                                    startTime=args.startTime, endTime=args.endTime)
    candles = candles_from(rows)
    return KlinesResult(symbol=args.symbol, interval=args.interval, price_type=args.priceType, candles=candles,
                        count=len(candles))


class TickerArgs(Args):
    symbol: Symbol | None = Field(None, description="omit for all symbols")
    limit: int = Field(100, ge=1, le=5000, description="max rows when symbol is omitted")


class Ticker(BaseModel):
    symbol: str
    last_price: Dec
    price_change: Dec
    price_change_pct: Dec
    open: Dec
    high: Dec
    low: Dec
    volume: Dec
    quote_volume: Dec
    weighted_avg_price: Dec
    trades: int
    open_time: int
    close_time: int


class TickerList(Result):
    tickers: list[Ticker]
    count: int
    total: int
    truncated: bool


def _tickers(raw: dict | list, limit: int) -> TickerList:
    rows = raw if isinstance(raw, list) else [raw]
    tickers = [Ticker(symbol=t["symbol"], last_price=D(t["lastPrice"]), price_change=D(t["priceChange"]),
                      price_change_pct=D(t["priceChangePercent"]), open=D(t["openPrice"]), high=D(t["highPrice"]),
                      low=D(t["lowPrice"]), volume=D(t["volume"]), quote_volume=D(t["quoteVolume"]),
                      weighted_avg_price=D(t.get("weightedAvgPrice")), trades=int(t.get("count", 0)),
                      open_time=int(t["openTime"]), close_time=int(t["closeTime"])) for t in rows]
    shown = tickers[:limit]
    return TickerList(tickers=shown, count=len(shown), total=len(tickers), truncated=len(tickers) > len(shown))


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
    limit: int = Field(100, ge=1, le=5000, description="max symbols when symbol is omitted")


class SymbolInfo(BaseModel):
    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Dec
    min_price: Dec
    step_size: Dec
    min_qty: Dec
    max_qty: Dec
    market_max_qty: Dec
    min_notional: Dec
    order_types: list[str]


class InfoResult(Result):
    market: str
    symbols: list[SymbolInfo]
    count: int
    total: int
    truncated: bool
    rate_limits: list[dict]


async def exchange_info(args: InfoArgs, deps: Deps) -> InfoResult:
    info = await deps.exchange.exchange_info(args.market)
    rows = info.get("symbols", [])
    if args.symbol:
        rows = [await deps.exchange.symbol_info(args.market, args.symbol)]
    out = []
    for row in rows:
        r = SymbolRules.from_info(row, args.market)
        out.append(SymbolInfo(symbol=r.symbol, status=r.status, base_asset=r.base, quote_asset=r.quote,
                              tick_size=r.tick_size, min_price=r.min_price, step_size=r.step_size, min_qty=r.min_qty,
                              max_qty=r.max_qty, market_max_qty=r.market_max_qty, min_notional=r.min_notional,
                              order_types=list(r.order_types)))
    shown = out[: args.limit]
    return InfoResult(market=args.market, symbols=shown, count=len(shown), total=len(out),
                      truncated=len(out) > len(shown), rate_limits=list(info.get("rateLimits", [])))


class TimeArgs(Args):
    market: Market = "spot"


class TimeResult(Result):
    market: str
    server_time: int
    server_time_iso: str | None
    local_time: int
    local_time_iso: str | None
    offset_ms: int = Field(description="server minus local")


async def server_time(args: TimeArgs, deps: Deps) -> TimeResult:
    method = "futures_time" if args.market == "futures" else "get_server_time"
    before = time.time()
    r = await deps.exchange.call(method, "Reading the server time", signed=False)
    local = int((before + time.time()) / 2 * 1000)
    st = int(r["serverTime"])
    return TimeResult(market=args.market, server_time=st, server_time_iso=iso(st), local_time=local,
                      local_time_iso=iso(local), offset_ms=st - local)


TOOLS = [
    ToolDef("binance_spot_price", "Latest spot price of a symbol, or of all symbols (limit, total, truncated).",
            PriceArgs, PriceList, spot_price),
    ToolDef("binance_futures_price", "USD-M perpetual last price AND mark price, index price, funding rate and "
            "next funding time; one symbol or all.", PriceArgs, FuturesPriceList, futures_price),
    ToolDef("binance_spot_orderbook", "Spot order book: bids and asks as price/qty, best first.", BookArgs,
            BookResult, spot_orderbook),
    ToolDef("binance_spot_klines", "Spot candles (OHLCV, trades, taker volumes) for an interval 1m..1M.",
            KlinesArgs, KlinesResult, spot_klines),
    ToolDef("binance_futures_klines", "Futures candles; priceType last (trades, default) or mark.",
            FuturesKlinesArgs, KlinesResult, futures_klines),
    ToolDef("binance_spot_24hr_ticker", "Rolling 24 h spot statistics: change, high, low, volume; one symbol or all.",
            TickerArgs, TickerList, spot_24hr),
    ToolDef("binance_futures_24hr_ticker", "Rolling 24 h futures statistics; one symbol or all.", TickerArgs,
            TickerList, futures_24hr),
    ToolDef("binance_exchange_info", "Trading rules of the spot or futures market: status, assets, tick size, "
            "step size, min quantity and notional, order types.", InfoArgs, InfoResult, exchange_info),
    ToolDef("binance_server_time", "Exchange server time, local time and the offset between them.", TimeArgs,
            TimeResult, server_time),
]
