"""A deterministic, seeded price feed: a random walk per symbol, candles, 24 h statistics and an order book.

The walk takes one step every ``tick_seconds`` of wall time (0 freezes it); tests move it with the
``/_sim/`` controls instead. History (three days of 1-minute candles, then 400 days of hourly
candles before them) is generated backwards from the start price on first use, from the seed, so
klines and 24 h tickers are consistent with the live price: the newest candle closes at it.
"""

from __future__ import annotations

import calendar
import math
import random
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Decimal

from binance_mcp.simulator.symbols import SPOT_SYMBOLS, SpotSymbol

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
WEEK = 7 * DAY
HISTORY_MINUTES = 3 * 1440
HISTORY_HOURS = 400 * 24
MAX_CATCH_UP_STEPS = 600

INTERVALS_MS = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": HOUR, "2h": 2 * HOUR, "4h": 4 * HOUR, "6h": 6 * HOUR, "8h": 8 * HOUR, "12h": 12 * HOUR,
    "1d": DAY, "3d": 3 * DAY, "1w": WEEK, "1M": 0,
}


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def fmt(value: Decimal, places: int = 8) -> str:
    """Binance's decimal string: fixed places, e.g. ``"0.00000000"``."""
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}"


class Clock:
    """Server time: wall time plus a settable skew (tests use the skew for -1021)."""

    def __init__(self) -> None:
        self.skew_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms


@dataclass
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    taker_base: Decimal = Decimal(0)
    taker_quote: Decimal = Decimal(0)

    def add(self, price: Decimal, qty: Decimal, taker_buy: bool) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.quote_volume += qty * price
        self.trades += 1
        if taker_buy:
            self.taker_base += qty
            self.taker_quote += qty * price


def _bucket(open_time: int, interval: str) -> int:
    if interval == "1M":
        d = datetime.fromtimestamp(open_time / 1000, tz=timezone.utc)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    ms = INTERVALS_MS[interval]
    if interval == "1w":  # weeks start on Monday; 1970-01-05 was a Monday
        offset = 4 * DAY
        return (open_time - offset) // WEEK * WEEK + offset
    return open_time // ms * ms


def _bucket_end(start: int, interval: str) -> int:
    if interval == "1M":
        d = datetime.fromtimestamp(start / 1000, tz=timezone.utc)
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000 - 1
    return start + INTERVALS_MS[interval] - 1


class SymbolFeed:
    """The walk, candles and book of one spot symbol."""

    def __init__(self, spec: SpotSymbol, seed: int, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.price = spec.start_price
        self.seed = seed ^ zlib.crc32(spec.symbol.encode())
        self.rng = random.Random(self.seed)
        self.start_ms = clock.now_ms()
        self._minutes: list[Candle] | None = None  # history + live, oldest first, one per minute
        self._hours: list[Candle] | None = None  # older history, oldest first
        self._book_cache: tuple[Decimal, int, list, list] | None = None
        self.trade_id = 1000

    # -- the walk ---------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        spec = self.spec
        if n > MAX_CATCH_UP_STEPS:  # one aggregated step keeps catch-up cheap after idle hours
            z = self.rng.gauss(0, 1) * math.sqrt(n)
            self._move(spec.volatility * z)
            return
        for _ in range(n):
            self._move(spec.volatility * self.rng.gauss(0, 1))

    def _move(self, log_return: float) -> None:
        new = Decimal(repr(float(self.price) * math.exp(log_return)))
        self.set_price(new, record=True)

    def set_price(self, price: Decimal, record: bool = True) -> None:
        tick = self.spec.tick_size
        price = max(quantize_down(price, tick), tick)
        self.price = price
        if record and self._minutes is not None:
            qty = quantize_down(Decimal(repr(1000 + self.rng.random() * 20000)) / price, self.spec.step_size)
            self._current_minute().add(price, max(qty, self.spec.step_size), self.rng.random() < 0.5)
            self.trade_id += 1

    # -- candles ----------------------------------------------------------------------------
    def _ensure_history(self) -> None:
        if self._minutes is not None:
            return
        spec = self.spec
        rng = random.Random(self.seed + 1)
        tick = spec.tick_size
        sigma_m = spec.volatility * 3
        now_minute = self.start_ms // MINUTE * MINUTE
        minutes: list[Candle] = []
        close = float(self.price)
        for i in range(1, HISTORY_MINUTES + 1):
            candle, close = self._synth(rng, now_minute - i * MINUTE, close, sigma_m, 60)
            minutes.append(candle)
        minutes.reverse()
        hours: list[Candle] = []
        first_hour = minutes[0].open_time // HOUR * HOUR
        for i in range(1, HISTORY_HOURS + 1):
            candle, close = self._synth(rng, first_hour - i * HOUR, close, sigma_m * math.sqrt(60), 3600)
            hours.append(candle)
        hours.reverse()
        # The live minute starts at the start price.
        p = quantize_down(self.price, tick)
        minutes.append(Candle(now_minute, p, p, p, p))
        self._minutes = minutes
        self._hours = hours

    def _synth(self, rng: random.Random, open_time: int, close: float, sigma: float, secs: int):
        tick = self.spec.tick_size
        open_ = close / math.exp(sigma * rng.gauss(0, 1))
        hi = max(open_, close) * (1 + abs(rng.gauss(0, 1)) * sigma / 2)
        lo = min(open_, close) * (1 - abs(rng.gauss(0, 1)) * sigma / 2)
        o, h, low, c = (max(quantize_down(Decimal(repr(x)), tick), tick) for x in (open_, hi, lo, close))
        h = max(h, o, c)
        low = min(low, o, c)
        usd = (5000 + rng.random() * 45000) * secs / 60
        vol = quantize_down(Decimal(repr(usd / float(c))), Decimal("0.00000001"))
        taker = quantize_down(vol * Decimal(repr(0.3 + rng.random() * 0.4)), Decimal("0.00000001"))
        trades = int(20 + rng.random() * 200) * secs // 60
        mid = (o + c) / 2
        return Candle(open_time, o, h, low, c, vol, vol * mid, trades, taker, taker * mid), open_

    def _current_minute(self) -> Candle:
        assert self._minutes is not None
        now_minute = self.clock.now_ms() // MINUTE * MINUTE
        last = self._minutes[-1]
        while last.open_time < now_minute:
            p = last.close
            last = Candle(last.open_time + MINUTE, p, p, p, p)
            self._minutes.append(last)
        if len(self._minutes) > HISTORY_MINUTES * 2:  # keep memory flat in long paper sessions
            del self._minutes[: HISTORY_MINUTES]
        return last

    def minutes(self) -> list[Candle]:
        self._ensure_history()
        self._current_minute()
        assert self._minutes is not None
        return self._minutes

    def klines(self, interval: str, start: int | None, end: int | None, limit: int) -> list[Candle]:
        minutes = self.minutes()
        assert self._hours is not None
        if INTERVALS_MS[interval] and INTERVALS_MS[interval] < HOUR:
            base = minutes
        else:
            base = list(self._hours)
            hour: Candle | None = None
            for m in minutes:
                key = m.open_time // HOUR * HOUR
                if hour is None or hour.open_time != key:
                    hour = Candle(key, m.open, m.high, m.low, m.close)
                    base.append(hour)
                else:
                    _merge(hour, m, copy_volume=False)
                _add_volume(hour, m)
        out: list[Candle] = []
        for c in base:
            key = _bucket(c.open_time, interval)
            if out and out[-1].open_time == key:
                _merge(out[-1], c, copy_volume=True)
            else:
                out.append(Candle(key, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades,
                                  c.taker_base, c.taker_quote))
        if start is not None:  # Binance matches startTime against the open time (both markets)
            out = [c for c in out if c.open_time >= start]
        if end is not None:
            out = [c for c in out if c.open_time <= end]
        return out[:limit] if start is not None else out[-limit:]

    def window(self, start_ms: int) -> list[Candle]:
        return [c for c in self.minutes() if c.open_time >= start_ms // MINUTE * MINUTE]

    # -- order book -------------------------------------------------------------------------
    def book(self, depth: int, price: Decimal | None = None, tick: Decimal | None = None,
             step: Decimal | None = None) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Bids (best first) and asks (best first) around ``price`` (default: the current price)."""
        price = self.price if price is None else price
        tick = self.spec.tick_size if tick is None else tick
        step = self.spec.step_size if step is None else step
        cache = self._book_cache
        if cache and cache[0] == price and cache[1] >= depth and cache[4] == tick and cache[5] == step:
            return cache[2][:depth], cache[3][:depth]
        best_bid = max(quantize_down(price, tick), tick)
        best_ask = best_bid + tick
        gap = max(tick, quantize_down(price * Decimal("0.00002"), tick))
        ticks = int(best_bid / tick)
        fprice = float(price)
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        n = max(depth, 100)
        for i in range(n):
            for side, sign, out in ((0, -1, bids), (1, 1, asks)):
                p = (best_bid if side == 0 else best_ask) + sign * gap * i
                if p <= 0:
                    continue
                h = (i * 2654435761 + ticks * 40503 + side * 97 + self.seed) & 0xFFFFFFFF
                usd = (2000 + (h / 4294967296.0) * 18000) * (1 + i / 200)
                q = quantize_down(Decimal(repr(usd / fprice)), step)
                out.append((p, max(q, step)))
        self._book_cache = (price, n, bids, asks, tick, step)  # type: ignore[assignment]
        return bids[:depth], asks[:depth]


def _merge(into: Candle, c: Candle, copy_volume: bool) -> None:
    into.high = max(into.high, c.high)
    into.low = min(into.low, c.low)
    into.close = c.close
    if copy_volume:
        _add_volume(into, c)


def _add_volume(into: Candle, c: Candle) -> None:
    into.volume += c.volume
    into.quote_volume += c.quote_volume
    into.trades += c.trades
    into.taker_base += c.taker_base
    into.taker_quote += c.taker_quote


class Feed:
    """All spot feeds, advanced together by wall time or by the test controls."""

    def __init__(self, seed: int, clock: Clock, tick_seconds: float) -> None:
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.symbols = {name: SymbolFeed(spec, seed, clock) for name, spec in SPOT_SYMBOLS.items()}
        self._last_tick = time.monotonic()

    def catch_up(self) -> bool:
        """Advance by the wall time elapsed since the last call; True when prices moved."""
        if self.tick_seconds <= 0:
            return False
        now = time.monotonic()
        steps = int((now - self._last_tick) / self.tick_seconds)
        if steps <= 0:
            return False
        self._last_tick += steps * self.tick_seconds
        self.advance(steps)
        return True

    def advance(self, steps: int) -> None:
        for f in self.symbols.values():
            f.step(steps)

    def price(self, symbol: str) -> Decimal:
        return self.symbols[symbol].price
