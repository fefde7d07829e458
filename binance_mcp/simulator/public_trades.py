"""The market's public trades (``/api/v3/trades``, ``/aggTrades`` and their futures twins), derived from the
feed's 1-minute candles so that they agree with the klines and the 24 h ticker: each candle's trade count is
its number of trades, its first trade is at the open, its last at the close, its high and low are traded,
and trade ids run on without gaps to the ticker's ``lastId`` (the newest trade, at the current price).

A trade's price, quantity and time are drawn from a generator seeded by the symbol and the candle, so a
candle gives the same trades on every call; only the candle still forming gains trades (and its newest trade
moves to the new close) as the price moves. Only the 1-minute history (three days) has trades; older ids
answer from the oldest trade there is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from binance_mcp.simulator.feed import MINUTE, Candle, SymbolFeed, quantize_down

TRADE_ID_BASE = 100_000_000  # as market.TRADE_ID_BASE: the ticker's firstId/lastId use the same numbering


@dataclass(frozen=True)
class PublicTrade:
    id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_maker: bool


def _candle_trades(f: SymbolFeed, c: Candle, first_id: int) -> list[PublicTrade]:
    n = c.trades
    if n <= 0:
        return []
    tick, step = f.spec.tick_size, f.spec.step_size
    rng = random.Random(f.seed * 1_000_003 + c.open_time // MINUTE)
    lo, hi = float(c.low), float(c.high)
    fixed = {0: c.open, n - 1: c.close}
    if n >= 4:
        fixed.setdefault(1, c.high)
        fixed.setdefault(2, c.low)
    mean_qty = c.volume / n if c.volume else step
    out = []
    for k in range(n):
        price = fixed.get(k)
        draw = rng.random()  # drawn for every k, so trade k does not depend on which ones are fixed
        if price is None:
            price = max(quantize_down(Decimal(repr(lo + (hi - lo) * draw)), tick), tick)
        qty = max(quantize_down(mean_qty * Decimal(repr(0.2 + 1.6 * rng.random())), step), step)
        time = c.open_time + (k + 1) * MINUTE // (n + 1)
        out.append(PublicTrade(first_id + k, price, qty, time, rng.random() < 0.5))
    return out


def newest_id(f: SymbolFeed) -> int:
    return TRADE_ID_BASE + f.trade_id


def _walk_back(f: SymbolFeed):
    """(candle, id of its first trade), newest candle first."""
    last = newest_id(f)
    for c in reversed(f.minutes()):
        if c.trades:
            yield c, last - c.trades + 1
            last -= c.trades


def recent(f: SymbolFeed, limit: int) -> list[PublicTrade]:
    """The newest ``limit`` trades, oldest first."""
    out: list[PublicTrade] = []
    for c, first in _walk_back(f):
        out[:0] = _candle_trades(f, c, first)
        if len(out) >= limit:
            break
    return out[-limit:]


def from_id(f: SymbolFeed, trade_id: int, limit: int) -> list[PublicTrade]:
    """Up to ``limit`` trades from ``trade_id`` on, oldest first."""
    chunks: list[tuple[Candle, int]] = []
    for c, first in _walk_back(f):
        chunks.append((c, first))
        if first <= trade_id:
            break
    out: list[PublicTrade] = []
    for c, first in reversed(chunks):
        out.extend(t for t in _candle_trades(f, c, first) if t.id >= trade_id)
        if len(out) >= limit:
            break
    return out[:limit]


def between(f: SymbolFeed, start: int | None, end: int | None, limit: int) -> list[PublicTrade]:
    """Up to ``limit`` trades with start <= time <= end, oldest first (from ``start`` on when it is given,
    else the newest ones before ``end``)."""
    chunks: list[tuple[Candle, int]] = []
    taken = 0
    for c, first in _walk_back(f):
        if end is not None and c.open_time > end:
            continue
        if start is not None and c.open_time + MINUTE <= start:
            break
        chunks.append((c, first))
        taken += c.trades
        if start is None and taken >= limit + chunks[0][0].trades:
            break
    out: list[PublicTrade] = []
    for c, first in reversed(chunks):  # oldest first; only the candles needed are turned into trades
        out.extend(t for t in _candle_trades(f, c, first)
                   if (start is None or t.time >= start) and (end is None or t.time <= end))
        if start is not None and len(out) >= limit:
            break
    return out[:limit] if start is not None else out[-limit:]
