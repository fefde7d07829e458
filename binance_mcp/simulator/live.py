"""The live paper feed: the paper exchange's symbols, books and prices from an upstream's public market data.

``LiveFeed`` (spot, and a second one for USD-M futures) stands where the synthetic ``Feed`` stands: per symbol a
``LiveBook`` with the last traded price and the upstream's order book, refreshed from the upstream before an
order is matched (``LiveData.refresh_*``) and by the paper exchange's poller while orders rest. ``LiveMarket``
answers the futures prices the accounts need (last, mark, index, funding rate, next funding time) from the
upstream's ticker and premium index. Public market-data requests are not computed at all: the paper exchange
passes them to the upstream (cached, budgeted: upstream.py).

The symbol tables (symbols.py ``SPOT_SYMBOLS``/``FUTURES_SYMBOLS``) are replaced, in place, by the upstream's
exchangeInfo: a process holds one paper exchange, so its tables are that exchange's (a live paper server is
always its own process; tests run it as a subprocess).
"""

from __future__ import annotations

import time
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError, bad_symbol
from binance_mcp.simulator.market import MarketData
from binance_mcp.simulator.symbols import (
    _BTC_BRACKETS,
    _ETH_BRACKETS,
    _SOL_BRACKETS,
    FUTURES_SYMBOLS,
    SPOT_SYMBOLS,
    FuturesSymbol,
    SpotSymbol,
)
from binance_mcp.simulator.upstream import Upstream, UpstreamUnreachable

D = Decimal
ZERO = D(0)
SPOT_DEPTH = 100  # levels a spot order walks (weight 5); futures the same (weight 5)
FUTURES_DEPTH = 100
SPECS_TTL = 3600.0
# Leverage brackets are a signed endpoint on Binance: the live feed uses the bracket table of the built-in symbol
# closest in kind (BTC, ETH, else the SOL table: 75x, the usual ceiling of other perpetuals), capped by nothing else.
BRACKETS = {"BTCUSDT": _BTC_BRACKETS, "ETHUSDT": _ETH_BRACKETS}


def _filters(row: dict) -> dict[str, dict]:
    return {f.get("filterType"): f for f in row.get("filters", []) if isinstance(f, dict)}


def _d(value: object, default: str = "0") -> Decimal:
    try:
        out = D(str(value)) if value not in (None, "") else D(default)
    except ArithmeticError:
        return D(default)
    return out if out.is_finite() else D(default)


def spot_spec(row: dict) -> SpotSymbol:
    f = _filters(row)
    price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
    market_lot = f.get("MARKET_LOT_SIZE", {})
    notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
    pct = f.get("PERCENT_PRICE_BY_SIDE") or {}
    max_qty = _d(lot.get("maxQty"), "9000000")
    return SpotSymbol(
        row["symbol"], row.get("baseAsset", ""), row.get("quoteAsset", ""), ZERO,
        _d(price.get("tickSize"), "0.00000001"), _d(lot.get("stepSize"), "0.00000001"),
        _d(lot.get("minQty"), "0.00000001"), max_qty, _d(market_lot.get("maxQty"), str(max_qty)) or max_qty,
        _d(notional.get("minNotional"), "0"), max_notional=_d(notional.get("maxNotional"), "9000000000"),
        multiplier_up=_d(pct.get("bidMultiplierUp"), "5"), multiplier_down=_d(pct.get("askMultiplierDown"), "0.2"),
        max_num_orders=int(f.get("MAX_NUM_ORDERS", {}).get("maxNumOrders", 200)),
        max_num_algo_orders=int(f.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders", 5)),
        base_precision=int(row.get("baseAssetPrecision", 8)), quote_precision=int(row.get("quoteAssetPrecision", 8)),
    )


def futures_spec(row: dict) -> FuturesSymbol:
    f = _filters(row)
    price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
    market_lot = f.get("MARKET_LOT_SIZE", {})
    pct = f.get("PERCENT_PRICE", {})
    symbol = row["symbol"]
    return FuturesSymbol(
        symbol, row.get("baseAsset", ""), row.get("quoteAsset", ""), _d(price.get("tickSize"), "0.01"),
        _d(lot.get("stepSize"), "0.001"), _d(lot.get("minQty"), "0.001"), _d(lot.get("maxQty"), "1000000"),
        _d(market_lot.get("maxQty"), str(lot.get("maxQty", "1000000"))),
        _d(f.get("MIN_NOTIONAL", {}).get("notional"), "5"), int(row.get("pricePrecision", 2)),
        int(row.get("quantityPrecision", 3)), BRACKETS.get(symbol, _SOL_BRACKETS),
        multiplier_up=_d(pct.get("multiplierUp"), "1.05"), multiplier_down=_d(pct.get("multiplierDown"), "0.95"),
        max_num_orders=int(f.get("MAX_NUM_ORDERS", {}).get("limit", 200)),
        max_num_algo_orders=int(f.get("MAX_NUM_ALGO_ORDERS", {}).get("limit", 10)), basis=ZERO,
    )


def spot_spec_row(spec: SpotSymbol) -> dict:
    """A symbol's filters as the stored account keeps them (the symbols it traded, for reads while offline)."""
    from binance_mcp.simulator.store import encode

    return encode(spec)


def futures_spec_row(spec: FuturesSymbol) -> dict:
    from binance_mcp.simulator.store import encode

    row = encode(spec)
    row.pop("brackets", None)  # rebuilt from BRACKETS
    return row


class LiveBook:
    """One symbol of one market as the upstream last showed it: last price, bids and asks (best first)."""

    def __init__(self, symbol: str, what: str) -> None:
        self.symbol = symbol
        self.what = what
        self.last: Decimal | None = None
        self.bids: list[tuple[Decimal, Decimal]] = []
        self.asks: list[tuple[Decimal, Decimal]] = []
        self.trade_id = 0
        self.at = 0.0

    @property
    def price(self) -> Decimal:
        if self.last is None:
            raise UpstreamUnreachable(self.what, "no price of this symbol has been read yet")
        return self.last

    def book(self, depth: int, price: Decimal | None = None, tick: Decimal | None = None,
             step: Decimal | None = None) -> tuple[list, list]:
        if not self.bids and not self.asks:
            if self.last is None:
                raise UpstreamUnreachable(self.what, "no order book of this symbol has been read yet")
        return self.bids[:depth], self.asks[:depth]

    def set_price(self, price: Decimal, record: bool = True) -> None:
        raise KeyError(self.symbol)  # a live price is the market's: the /_sim/price control does not apply


class LiveFeed:
    """The ``Feed`` of a live paper exchange: one ``LiveBook`` per listed symbol, moved only by the upstream."""

    def __init__(self, market: str, table: dict) -> None:
        self.market = market
        self.table = table
        self.symbols = _Books(self)
        self.tick_seconds = 0.0

    def catch_up(self) -> bool:
        return False

    def advance(self, steps: int) -> None:
        """Steps of a synthetic walk: a live feed has none."""

    def price(self, symbol: str) -> Decimal:
        return self.symbols[symbol].price


class _Books(dict):
    """Books created on first use, for listed symbols only (``items()`` shows those that have one)."""

    def __init__(self, feed: LiveFeed) -> None:
        super().__init__()
        self.feed = feed

    def __missing__(self, symbol: str) -> LiveBook:
        if symbol not in self.feed.table:
            raise KeyError(symbol)
        book = self[symbol] = LiveBook(symbol, f"{self.feed.market} {symbol}")
        return book

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.feed.table


class LiveMarket(MarketData):
    """Futures prices from the upstream (``self.feed`` is the futures feed); the public endpoints are proxied."""

    def __init__(self, feed: LiveFeed, cfg, spot: LiveFeed) -> None:
        self.feed = feed
        self.spot_feed = spot
        self.cfg = cfg
        self.basis: dict = {}
        self.mark_basis: dict = {}
        self.premium: dict[str, dict] = {}

    def spot_price(self, symbol: str) -> Decimal:
        return self.spot_feed.price(symbol)

    def futures_last(self, symbol: str) -> Decimal:
        return self.feed.price(symbol)

    def _premium(self, symbol: str) -> dict:
        row = self.premium.get(symbol)
        if row is None:
            raise UpstreamUnreachable(f"futures {symbol}", "no mark price of this symbol has been read yet")
        return row

    def mark_price(self, symbol: str) -> Decimal:
        return _d(self._premium(symbol).get("markPrice"))

    def index_price(self, symbol: str) -> Decimal:
        return _d(self._premium(symbol).get("indexPrice"))

    def funding_rate(self, symbol: str) -> Decimal:
        return _d(self._premium(symbol).get("lastFundingRate"))

    def next_funding(self, symbol: str, now: int) -> int:
        value = self._premium(symbol).get("nextFundingTime")
        return int(value) if value else self.next_funding_time(now)

    def set_futures_prices(self, symbol: str, last: Decimal | None = None, mark: Decimal | None = None) -> None:
        raise KeyError(symbol)


class LiveData:
    """What the accounts need from the upstream, fetched before they act (the accounts' code is synchronous)."""

    def __init__(self, upstream: Upstream, spot: LiveFeed, futures: LiveFeed, market: LiveMarket,
                 clock=time.monotonic) -> None:
        self.upstream = upstream
        self.spot = spot
        self.futures = futures
        self.market = market
        self.clock = clock
        self.specs_at = {"spot": 0.0, "futures": 0.0}

    async def specs(self, market: str) -> None:
        """Load (hourly) the upstream's symbols and filters into the process's symbol tables."""
        if self.specs_at[market] and self.clock() - self.specs_at[market] < SPECS_TTL:
            return
        path = "/v3/exchangeInfo" if market == "spot" else "/v1/exchangeInfo"
        info = await self.upstream.get(market, path, None, weight=20 if market == "spot" else 1, ttl=SPECS_TTL)
        rows = info.get("symbols", []) if isinstance(info, dict) else []
        parse, table = (spot_spec, SPOT_SYMBOLS) if market == "spot" else (futures_spec, FUTURES_SYMBOLS)
        parsed = {}
        for row in rows:
            try:
                parsed[row["symbol"]] = parse(row)
            except (KeyError, TypeError, ValueError):
                continue  # a row we cannot read is a symbol the paper exchange does not list
        table.clear()
        table.update(parsed)
        self.specs_at[market] = self.clock()

    def known(self, market: str, symbol: str | None) -> bool:
        return bool(symbol) and symbol in (SPOT_SYMBOLS if market == "spot" else FUTURES_SYMBOLS)

    async def refresh_spot(self, symbol: str, depth: bool = True) -> None:
        await self.specs("spot")
        if symbol not in SPOT_SYMBOLS:
            raise bad_symbol()
        price = await self.upstream.get("spot", "/v3/ticker/price", {"symbol": symbol}, weight=2)
        book = self.spot.symbols[symbol]
        book.last = _d(price.get("price")) if isinstance(price, dict) else book.last
        if depth:
            _set_book(book, await self.upstream.get("spot", "/v3/depth", {"symbol": symbol, "limit": SPOT_DEPTH},
                                                    weight=5))

    async def refresh_futures(self, symbol: str, depth: bool = True) -> None:
        await self.specs("futures")
        if symbol not in FUTURES_SYMBOLS:
            raise bad_symbol()
        price = await self.upstream.get("futures", "/v1/ticker/price", {"symbol": symbol}, weight=1)
        book = self.futures.symbols[symbol]
        book.last = _d(price.get("price")) if isinstance(price, dict) else book.last
        premium = await self.upstream.get("futures", "/v1/premiumIndex", {"symbol": symbol}, weight=1)
        if isinstance(premium, dict):
            self.market.premium[symbol] = premium
        if depth:
            _set_book(book, await self.upstream.get("futures", "/v1/depth",
                                                    {"symbol": symbol, "limit": FUTURES_DEPTH}, weight=5))


def _set_book(book: LiveBook, depth: object) -> None:
    if not isinstance(depth, dict):
        raise BinanceError(-1001, "The upstream's order book is not readable.", status=500)
    book.bids = [(_d(p), _d(q)) for p, q, *_ in depth.get("bids", [])]
    book.asks = [(_d(p), _d(q)) for p, q, *_ in depth.get("asks", [])]
    book.trade_id = int(depth.get("lastUpdateId") or 0)
    book.at = time.monotonic()
