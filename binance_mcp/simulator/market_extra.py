"""Public market endpoints beyond the basics of market.py: public trades, aggregate trades, book tickers, the
spot average price and rolling-window ticker, and the futures funding history, funding info, open interest,
index-price and premium-index klines. All computed from the same feed as market.py."""

from __future__ import annotations

import bisect
import re
from decimal import Decimal

from binance_mcp.simulator import public_trades as pt
from binance_mcp.simulator.errors import BinanceError, bad_symbol
from binance_mcp.simulator.feed import DAY, HOUR, MINUTE, Candle, fmt, quantize_down
from binance_mcp.simulator.market import FUNDING_INTERVAL, MarketData, kline_row, to_tick
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS, SPOT_SYMBOLS, decimals_of

ZERO = Decimal(0)
WINDOW_RE = re.compile(r"^([1-9][0-9]?)([mhd])$")
WINDOW_MAX = {"m": 59, "h": 23, "d": 7}
WINDOW_UNIT = {"m": MINUTE, "h": HOUR, "d": DAY}
MINI_FIELDS = ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume", "openTime",
               "closeTime", "firstId", "lastId", "count")
AGG_WINDOW_MS = HOUR  # futures: startTime..endTime under one hour


class MarketExtras:
    """The endpoints of this module, on a ``MarketData``."""

    def __init__(self, market: MarketData) -> None:
        self.m = market

    # -- shared -----------------------------------------------------------------------------
    @staticmethod
    def _symbol(p: Params, futures: bool) -> str:
        symbol = p.require("symbol")
        if symbol not in (FUTURES_SYMBOLS if futures else SPOT_SYMBOLS):
            raise bad_symbol()
        return symbol

    def _scale(self, symbol: str, futures: bool):
        """(price of a spot-feed price in this market, price places, quantity step, quantity places)."""
        if not futures:
            spec = SPOT_SYMBOLS[symbol]
            return (lambda px: px), 8, spec.step_size, 8
        fs = FUTURES_SYMBOLS[symbol]
        scale = 1 + self.m.basis[symbol]
        return ((lambda px: max(to_tick(px * scale, fs.tick_size), fs.tick_size)), fs.price_precision,
                max(fs.step_size, SPOT_SYMBOLS[symbol].step_size), fs.quantity_precision)

    def _trade_rows(self, symbol: str, trades: list[pt.PublicTrade], futures: bool, agg: bool) -> list[dict]:
        price_of, pp, step, qp = self._scale(symbol, futures)
        rows = []
        for t in trades:
            px, qty = price_of(t.price), max(quantize_down(t.qty, step), step)
            if agg:
                row = {"a": t.id, "p": fmt(px, pp), "q": fmt(qty, qp), "f": t.id, "l": t.id, "T": t.time,
                       "m": t.buyer_maker}
                if not futures:
                    row["M"] = True
            else:
                row = {"id": t.id, "price": fmt(px, pp), "qty": fmt(qty, qp), "quoteQty": fmt(px * qty, 8),
                       "time": t.time, "isBuyerMaker": t.buyer_maker}
                if not futures:
                    row["isBestMatch"] = True
            rows.append(row)
        return rows

    # -- trades -----------------------------------------------------------------------------
    def trades(self, p: Params, futures: bool = False) -> list[dict]:
        symbol = self._symbol(p, futures)
        limit = p.limit(500, 1000)
        return self._trade_rows(symbol, pt.recent(self.m.feed.symbols[symbol], limit), futures, agg=False)

    def agg_trades(self, p: Params, futures: bool = False) -> list[dict]:
        symbol = self._symbol(p, futures)
        from_id, start, end = p.integer("fromId"), p.integer("startTime"), p.integer("endTime")
        limit = p.limit(500, 1000)
        if start is not None and end is not None:
            if end < start:
                raise BinanceError(-1128, "Combination of optional parameters invalid.")
            if futures and end - start >= AGG_WINDOW_MS:
                raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
        f = self.m.feed.symbols[symbol]
        if from_id is not None:
            if start is not None or end is not None:
                raise BinanceError(-1128, "Combination of optional parameters invalid.")
            trades = pt.from_id(f, from_id, limit)
        elif start is not None or end is not None:
            trades = pt.between(f, start, end, limit)
        else:
            trades = pt.recent(f, limit)
        return self._trade_rows(symbol, trades, futures, agg=True)

    # -- book tickers -----------------------------------------------------------------------
    def _best(self, symbol: str, futures: bool) -> tuple[str, str, str, str]:
        f = self.m.feed.symbols[symbol]
        if futures:
            fs = FUTURES_SYMBOLS[symbol]
            bids, asks = f.book(1, price=self.m.futures_last(symbol), tick=fs.tick_size, step=fs.step_size)
            pp, qp = decimals_of(fs.tick_size), decimals_of(fs.step_size)
        else:
            bids, asks = f.book(1)
            pp = qp = 8
        return fmt(bids[0][0], pp), fmt(bids[0][1], qp), fmt(asks[0][0], pp), fmt(asks[0][1], qp)

    def book_ticker(self, p: Params) -> dict | list:
        names = self.m._spot_symbols(p)
        rows = []
        for n in names:
            bid, bid_qty, ask, ask_qty = self._best(n, False)
            rows.append({"symbol": n, "bidPrice": bid, "bidQty": bid_qty, "askPrice": ask, "askQty": ask_qty})
        return rows[0] if p.raw("symbol") else rows

    def futures_book_ticker(self, p: Params, now: int) -> dict | list:
        names, single = self.m._futures_symbols(p)
        rows = []
        for n in names:
            bid, bid_qty, ask, ask_qty = self._best(n, True)
            rows.append({"symbol": n, "bidPrice": bid, "bidQty": bid_qty, "askPrice": ask, "askQty": ask_qty,
                         "time": now, "lastUpdateId": self.m.feed.symbols[n].trade_id})
        return rows[0] if single else rows

    # -- spot averages and rolling windows --------------------------------------------------
    def avg_price(self, p: Params, now: int) -> dict:
        symbol = self._symbol(p, False)
        f = self.m.feed.symbols[symbol]
        window = [c for c in f.minutes() if c.open_time >= now // MINUTE * MINUTE - 4 * MINUTE]
        volume = sum((c.volume for c in window), ZERO)
        quote = sum((c.quote_volume for c in window), ZERO)
        price = quote / volume if volume else f.price
        (newest,) = pt.recent(f, 1) or [None]
        return {"mins": 5, "price": fmt(price), "closeTime": newest.time if newest else now}  # the last trade's time

    @staticmethod
    def window_ms(p: Params) -> int:
        raw = p.raw("windowSize") or "1d"
        match = WINDOW_RE.match(raw)
        if not match or int(match.group(1)) > WINDOW_MAX[match.group(2)]:
            raise BinanceError(-1100, "Illegal characters found in parameter 'windowSize'; legal range is "
                                      "'1m'..'59m', '1h'..'23h', '1d'..'7d'.")
        return int(match.group(1)) * WINDOW_UNIT[match.group(2)]

    @staticmethod
    def ticker_type(p: Params) -> str:
        return p.enum("type", ("FULL", "MINI"), -1100,
                      "Illegal characters found in parameter 'type'; legal range is 'FULL|MINI'.") or "FULL"

    def rolling_ticker(self, p: Params, now: int) -> dict | list:
        if p.raw("symbol") is None and p.raw("symbols") is None:
            raise BinanceError(-1102, "Param 'symbol' or 'symbols' must be sent, but both were empty/null!")
        names = self.m._spot_symbols(p)
        window, kind = self.window_ms(p), self.ticker_type(p)
        rows = [self.window_stats(n, now, window, kind) for n in names]
        return rows[0] if p.raw("symbol") else rows

    def window_stats(self, symbol: str, now: int, window: int, kind: str = "FULL") -> dict:
        f = self.m.feed.symbols[symbol]
        minutes = f.minutes()
        start = (now - window) // MINUTE * MINUTE  # Binance: openTime starts on a minute (up to 1 min wider)
        candles: list[Candle] = [c for c in (f._hours or []) if c.open_time >= start
                                 and c.open_time < minutes[0].open_time] if start < minutes[0].open_time else []
        candles += [c for c in minutes if c.open_time >= start]
        last = f.price
        open_ = candles[0].open if candles else last
        high = max([c.high for c in candles] + [last])
        low = min([c.low for c in candles] + [last])
        volume = sum((c.volume for c in candles), ZERO)
        quote = sum((c.quote_volume for c in candles), ZERO)
        count = sum(c.trades for c in candles)
        newest = pt.newest_id(f)
        row = {"symbol": symbol, "priceChange": fmt(last - open_),
               "priceChangePercent": fmt((last - open_) / open_ * 100 if open_ else ZERO, 3),
               "weightedAvgPrice": fmt(quote / volume if volume else last), "openPrice": fmt(open_),
               "highPrice": fmt(high), "lowPrice": fmt(low), "lastPrice": fmt(last), "volume": fmt(volume),
               "quoteVolume": fmt(quote), "openTime": start, "closeTime": now,
               "firstId": newest - count + 1 if count else -1, "lastId": newest if count else -1, "count": count}
        return mini(row) if kind == "MINI" else row

    # -- futures funding, open interest -----------------------------------------------------
    def funding_rate_history(self, p: Params, now: int) -> list[dict]:
        symbol = p.raw("symbol")
        if symbol is not None and symbol not in FUTURES_SYMBOLS:
            raise bad_symbol()
        start, end = p.integer("startTime"), p.integer("endTime")
        limit = p.limit(100, 1000)
        if start is not None and end is not None and end < start:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        last_funding = now // FUNDING_INTERVAL * FUNDING_INTERVAL
        newest = min(last_funding, end // FUNDING_INTERVAL * FUNDING_INTERVAL) if end is not None else last_funding
        if start is not None:
            first = -(-start // FUNDING_INTERVAL) * FUNDING_INTERVAL
            times = list(range(first, newest + 1, FUNDING_INTERVAL))[:limit]
        else:
            times = [newest - i * FUNDING_INTERVAL for i in range(limit)][::-1]
        names = [symbol] if symbol else list(FUTURES_SYMBOLS)
        rows = [self.funding_at(n, t) for t in times for n in names]
        return rows[:limit] if start is not None else rows[-limit:]

    def funding_at(self, symbol: str, time: int) -> dict:
        """The funding settled at ``time``: the rate by the formula of market.py from the mark basis, the mark
        price from the spot candle of that hour."""
        f = self.m.feed.symbols[symbol]
        spot = _close_before(f, time)
        mark = (spot * (1 + self.m.mark_basis[symbol])).quantize(Decimal("0.00000001"))
        premium = self.m.mark_basis[symbol]
        interest = Decimal("0.0001")
        rate = premium + min(max(interest - premium, Decimal("-0.0005")), Decimal("0.0005"))
        return {"symbol": symbol, "fundingTime": time, "fundingRate": fmt(rate.quantize(Decimal("0.00000001"))),
                "markPrice": fmt(mark)}

    @staticmethod
    def funding_info() -> list[dict]:
        return [{"symbol": n, "adjustedFundingRateCap": "0.03000000", "adjustedFundingRateFloor": "-0.03000000",
                 "fundingIntervalHours": FUNDING_INTERVAL // HOUR, "disclaimer": False} for n in FUTURES_SYMBOLS]

    def open_interest(self, p: Params, now: int, own: Decimal) -> dict:
        """The market's open interest: a synthetic share of the 24 h volume plus the account's own positions."""
        symbol = self._symbol(p, True)
        fs = FUTURES_SYMBOLS[symbol]
        day = sum((c.volume for c in self.m.feed.symbols[symbol].minutes() if c.open_time >= now - DAY), ZERO)
        oi = quantize_down(day * Decimal("0.4"), fs.step_size) + own
        return {"symbol": symbol, "openInterest": fmt(oi, fs.quantity_precision), "time": now}

    # -- index and premium klines -----------------------------------------------------------
    def index_klines(self, p: Params) -> list[list]:
        pair = p.require("pair")
        if pair not in FUTURES_SYMBOLS:
            raise bad_symbol()
        interval, start, end, limit = self.m._kline_args(p, maximum=1500)
        return [kline_row(c, interval, places=8, volumes=False)
                for c in self.m.feed.symbols[pair].klines(interval, start, end, limit)]

    def premium_klines(self, p: Params) -> list[list]:
        symbol = self._symbol(p, True)
        interval, start, end, limit = self.m._kline_args(p, maximum=1500)
        premium = fmt(self.m.mark_basis[symbol])
        rows = []
        for c in self.m.feed.symbols[symbol].klines(interval, start, end, limit):
            row = kline_row(c, interval, places=8, volumes=False)
            row[1:5] = [premium] * 4
            rows.append(row)
        return rows


def _close_before(f, time: int) -> Decimal:
    """The spot price at ``time``: the close of the last candle that opened before it (minute history first)."""
    minutes = f.minutes()
    for candles in (minutes, f._hours or []):
        i = bisect.bisect_left([c.open_time for c in candles], time)
        if i and (candles is not minutes or time > minutes[0].open_time):
            return candles[i - 1].close
    return f.price


def mini(row: dict) -> dict:
    """The MINI shape of a 24 h or rolling ticker row."""
    return {k: row[k] for k in MINI_FIELDS}
