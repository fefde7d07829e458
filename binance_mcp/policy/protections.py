"""Account-level protections (POLICY.md "Protections"): equity, drawdown, losing closes, gross exposure, cooldowns.

The figures come from the exchange's own account and trade history. The pure functions here turn Binance's answers
into them (tested on their own); ``AccountFacts`` reads those answers through the exchange adapter with short
reuse, so a burst of orders costs one account read; ``Protector`` fills a decision's facts and keeps the day's
equity samples and trips in the state store (so a restart keeps the day's start, peak and trips).

- Equity in USD = spot balances (free + locked) at current prices + futures wallet balance + unrealised PnL, per
  asset, with the same conversion as notional (USD stablecoins 1:1, other assets through <ASSET>USDT). An asset
  with no conversion path is left out and listed (``unpriced``); it never makes the guard fail.
- Gross exposure = |position| x mark of every futures position + spot holdings of every asset that is not a USD
  stablecoin at its price + the notional of every open order that adds exposure (spot BUY, spot SELL into a quote
  that is not a USD stablecoin, futures orders that are not reduce-only), priced as POLICY.md prices orders: the
  higher of the order's own price and the current one. Orders in flight are added by facts.with_pending.
- A close: a futures order whose fills realised PnL (``realizedPnl`` of its trades), or a spot SELL order; a spot
  close loses when its average price is below the average price of the BUY fills before it in the history read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binance_mcp.catalog import ORDER_TOOLS
from binance_mcp.policy.engine import Call, Facts, drawdown_pct
from binance_mcp.policy.facts import STABLE, FactError, _true, quote_suffix
from binance_mcp.policy.model import Protections
from binance_mcp.policy.state import StateError

log = logging.getLogger("binance_mcp.policy")

EQUITY_REUSE_S = 5.0  # an equity sample (and the gross exposure read with it) this young is reused
CLOSES_REUSE_S = 5.0  # a symbol's trade history this young is reused (an answered order on it reads it again)
SAMPLE_EVERY_S = 60.0  # background equity samples while the server runs
ZERO = Decimal(0)
PCT = Decimal("0.0001")  # percentages as shown
EQUITY_NEEDS = frozenset({"equity", "streak", "cooldown", "gross"})


def _d(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def usd_per_unit(asset: str, prices: dict[str, Decimal]) -> Decimal | None:
    """USD per unit of ``asset``: 1 for a USD stablecoin, else its <ASSET>USDT price; None without a path."""
    if asset in STABLE:
        return Decimal(1)
    price = prices.get(f"{asset}USDT")
    return price if price is not None and price.is_finite() and price > 0 else None


def price_map(tickers: list[dict]) -> dict[str, Decimal]:
    """{symbol: price} from the spot ticker list; rows that are not positive finite numbers are left out."""
    out = {}
    for row in tickers or []:
        try:
            price = Decimal(str(row.get("price")))
        except ArithmeticError:
            continue
        if price.is_finite() and price > 0:
            out[str(row.get("symbol"))] = price
    return out


def value_assets(amounts: dict[str, Decimal], prices: dict[str, Decimal]) -> tuple[Decimal, list[str]]:
    """(USD value of the priced assets, the assets left out for want of a conversion path)."""
    total, unpriced = ZERO, []
    for asset, amount in sorted(amounts.items()):
        if amount == 0:
            continue
        rate = usd_per_unit(asset, prices)
        if rate is None:
            unpriced.append(asset)
        else:
            total += amount * rate
    return total, unpriced


def spot_amounts(account: dict) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for b in account.get("balances", []):
        out[b["asset"]] = out.get(b["asset"], ZERO) + _d(b.get("free")) + _d(b.get("locked"))
    return out


def futures_amounts(account: dict) -> dict[str, Decimal]:
    """Per asset: wallet balance + unrealised PnL (what the futures wallet is worth now)."""
    out: dict[str, Decimal] = {}
    for a in account.get("assets", []):
        out[a["asset"]] = out.get(a["asset"], ZERO) + _d(a.get("walletBalance")) + _d(a.get("unrealizedProfit"))
    return out


@dataclass(frozen=True)
class Equity:
    usd: Decimal
    unpriced: tuple[str, ...]
    at: float


def equity_of(spot_account: dict, futures_account: dict, prices: dict[str, Decimal], at: float) -> Equity:
    spot, miss_spot = value_assets(spot_amounts(spot_account), prices)
    fut, miss_fut = value_assets(futures_amounts(futures_account), prices)
    if not (spot + fut).is_finite():
        raise FactError(f"the account's equity came out as {spot + fut}, not a number")
    return Equity(spot + fut, tuple(sorted(set(miss_spot) | {f"{a} (futures)" for a in miss_fut})), at)


def _order_usd(qty: Decimal, prices_of_order: list[Decimal], current: Decimal | None, quote: str | None,
               prices: dict[str, Decimal]) -> Decimal:
    """An open order's notional in USD at the higher of its own prices and the current price. Raises FactError
    when it cannot be priced (an order that cannot be valued cannot be left out of a cap)."""
    candidates = [p for p in prices_of_order if p > 0] + ([current] if current else [])
    rate = usd_per_unit(quote, prices) if quote else None
    if not candidates or rate is None:
        raise FactError(f"an open order (quote {quote}) cannot be valued in USD")
    return qty * max(candidates) * rate


def gross_exposure(spot_account: dict, prices: dict[str, Decimal], spot_open: list[dict], positions: list[dict],
                   futures_open: list[dict], algo_open: list[dict], marks: dict[str, Decimal]) -> Decimal:
    """Gross exposure in USD on the exchange (see the module docstring). Unpriced spot holdings are left out, as
    for equity; an open order or position that cannot be valued is a FactError (fail closed)."""
    holdings = {a: q for a, q in spot_amounts(spot_account).items() if a not in STABLE}
    total, _ = value_assets(holdings, prices)
    for o in spot_open:
        symbol, side = o["symbol"], o.get("side")
        quote = quote_suffix(symbol)
        if side != "BUY" and quote in STABLE:
            continue  # sells into a USD stablecoin reduce exposure (the asset is counted as a holding)
        left = _d(o.get("origQty")) - _d(o.get("executedQty"))
        if left > 0:
            total += _order_usd(left, [_d(o.get("price")), _d(o.get("stopPrice"))], prices.get(symbol), quote, prices)
    for p in positions:
        amt = _d(p.get("positionAmt"))
        if amt:
            mark = _d(p.get("markPrice")) or marks.get(p["symbol"], ZERO)
            rate = usd_per_unit(quote_suffix(p["symbol"]) or "", prices)
            if mark <= 0 or rate is None:
                raise FactError(f"the {p['symbol']} position cannot be valued in USD")
            total += abs(amt) * mark * rate
    for o in futures_open:
        if _true(o.get("reduceOnly")) or _true(o.get("closePosition")):
            continue
        left = _d(o.get("origQty")) - _d(o.get("executedQty"))
        if left > 0:
            total += _order_usd(left, [_d(o.get("price")), _d(o.get("stopPrice"))], marks.get(o["symbol"]),
                                quote_suffix(o["symbol"]), prices)
    for a in algo_open:
        if _true(a.get("reduceOnly")) or _true(a.get("closePosition")):
            continue
        qty = _d(a.get("quantity"))
        if qty > 0:
            total += _order_usd(qty, [_d(a.get("price")), _d(a.get("triggerPrice"))], marks.get(a["symbol"]),
                                quote_suffix(a["symbol"]), prices)
    return total


@dataclass(frozen=True)
class Close:
    symbol: str
    at: float  # seconds (UTC epoch) of the order's last fill
    pnl: Decimal  # realised, in the quote asset (spot: against the average buy price before it)


def futures_closes(trades: list[dict]) -> list[Close]:
    """Orders whose fills realised PnL, one Close per order (its fills summed)."""
    by_order: dict[Any, list[dict]] = {}
    for t in trades:
        by_order.setdefault(t.get("orderId"), []).append(t)
    out = []
    for fills in by_order.values():
        pnl = sum((_d(f.get("realizedPnl")) for f in fills), ZERO)
        if pnl != 0:
            out.append(Close(fills[0]["symbol"], max(int(f["time"]) for f in fills) / 1000, pnl))
    return sorted(out, key=lambda c: c.at)


def spot_closes(trades: list[dict]) -> list[Close]:
    """Every SELL order, with its PnL against the average price of the BUY fills before it (none before it: not
    judged, PnL 0)."""
    buy_qty = buy_quote = ZERO
    sells: dict[Any, list[dict]] = {}
    order_first: list[Any] = []
    out = []
    for t in sorted(trades, key=lambda t: (int(t["time"]), int(t.get("id", 0)))):
        if _true(t.get("isBuyer")):
            buy_qty += _d(t.get("qty"))
            buy_quote += _d(t.get("quoteQty")) or _d(t.get("qty")) * _d(t.get("price"))
            continue
        oid = t.get("orderId")
        if oid not in sells:
            order_first.append(oid)
            sells[oid] = []
        sells[oid].append({**t, "_avg_buy": (buy_quote / buy_qty) if buy_qty else None})
    for oid in order_first:
        fills = sells[oid]
        qty = sum((_d(f.get("qty")) for f in fills), ZERO)
        quote = sum((_d(f.get("quoteQty")) or _d(f.get("qty")) * _d(f.get("price")) for f in fills), ZERO)
        avg_buy = fills[0]["_avg_buy"]
        pnl = ZERO if avg_buy is None or qty == 0 else quote - qty * avg_buy
        out.append(Close(fills[0]["symbol"], max(int(f["time"]) for f in fills) / 1000, pnl))
    return out


def streak_left(closes: list[Close], losses: int, window: float, cooldown: float, now: float,
                since: float = 0.0) -> tuple[int, float]:
    """(losing closes within the last ``window`` s, seconds of cooldown left). The pause starts at the close that
    makes ``losses`` losing closes within ``window`` s and lasts ``cooldown`` s. Closes before ``since`` (a reset)
    do not count."""
    times = sorted(c.at for c in closes if c.pnl < 0 and c.at >= since and c.at <= now)
    until = 0.0
    for i in range(losses - 1, len(times)):
        if times[i] - times[i - losses + 1] <= window:
            until = max(until, times[i] + cooldown)
    recent = sum(1 for t in times if now - t <= window)
    return recent, max(until - now, 0.0)


def close_left(closes: list[Close], flat: bool, cooldown: float, now: float, since: float = 0.0) -> float:
    """Seconds before a symbol closed by its latest close may be reopened (0: not just closed). ``flat``: the
    symbol has no position (futures) or nothing worth selling (spot) now."""
    times = [c.at for c in closes if since <= c.at <= now]
    if not flat or not times:
        return 0.0
    return max(max(times) + cooldown - now, 0.0)


def equity_checks(prot: Protections) -> list[tuple[str, str, Callable]]:
    """(name, code, test(first, peak, now) -> detail or None) for the equity protections the policy sets."""
    out = []
    if prot.max_daily_loss_usd is not None:
        cap = prot.max_daily_loss_usd

        def daily(first: Decimal, peak: Decimal, now: Decimal) -> dict | None:
            loss = first - now
            return {"start_usd": str(first), "equity_usd": str(now), "loss_usd": str(loss), "limit_usd": str(cap)} \
                if loss > cap else None

        out.append(("max_daily_loss_usd", "DAILY_LOSS_LIMIT", daily))
    if prot.max_drawdown_pct is not None:
        pct = prot.max_drawdown_pct

        def drawdown(first: Decimal, peak: Decimal, now: Decimal) -> dict | None:
            dd = drawdown_pct(peak, now)
            return {"peak_usd": str(peak), "equity_usd": str(now), "drawdown_pct": str(dd.quantize(PCT)),
                    "limit_pct": str(pct)} if dd > pct else None

        out.append(("max_drawdown_pct", "DRAWDOWN_LIMIT", drawdown))
    return out


def protection_needs(prot: Protections, call: Call) -> set[str]:
    """Which account-wide facts the protections need for ``call`` (gathered only when it adds exposure)."""
    if not prot.any or call.risk == "read":
        return set()
    out = {"exposure"}
    if prot.equity:
        out.add("equity")
    if prot.loss_streak is not None:
        out.add("streak")
    if prot.cooldown_after_close is not None and call.get("symbol"):
        out.add("cooldown")
    if prot.max_gross_exposure_usd is not None and call.tool in ORDER_TOOLS:
        out |= {"gross", "notional"}
    return out


class AccountFacts:
    """Account-wide reads through the exchange adapter (``Exchange.call``), reused briefly, one read at a time."""

    def __init__(self, exchange: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.exchange = exchange
        self.clock = clock
        self._lock = asyncio.Lock()
        self._equity: Equity | None = None
        self._gross: tuple[Decimal, int | None, float] | None = None  # (usd, release counter before it, when)
        self._closes: dict[tuple, tuple[float, list[Close]]] = {}  # (market, symbol, start minute) -> (when, closes)
        self._close_locks: dict[tuple, asyncio.Lock] = {}

    async def _call(self, method: str, what: str, **params: Any) -> Any:
        return await self.exchange.call(method, what, **params)

    async def _prices(self) -> dict[str, Decimal]:
        return price_map(await self.exchange.call("get_all_tickers", "Reading prices", signed=False))

    async def read(self, equity: bool, gross: bool, seq: int | None) -> tuple[Equity | None, tuple | None]:
        """(equity, (gross USD, release counter noted before it was read)) as asked, each at most EQUITY_REUSE_S
        old. Concurrent callers wait for one read. A gross exposure read without a release counter (``seq`` None:
        the status tool) is not kept for decisions, which must know which orders were answered after it."""
        async with self._lock:
            now = self.clock()
            need_eq = equity and (self._equity is None or now - self._equity.at >= EQUITY_REUSE_S)
            need_gross = gross and (seq is None or self._gross is None or now - self._gross[2] >= EQUITY_REUSE_S)
            if need_eq or need_gross:
                prices = await self._prices()
                spot = await self._call("get_account", "Reading the spot account")
                if need_eq:
                    fut = await self._call("futures_account", "Reading the futures account")
                    self._equity = equity_of(spot, fut, prices, self.clock())
                if need_gross:
                    spot_open = await self._call("get_open_orders", "Reading open orders")
                    positions = await self._call("futures_position_information", "Reading positions")
                    fut_open = await self._call("futures_get_open_orders", "Reading open orders")
                    algo = await self._call("futures_get_open_orders", "Reading open orders", conditional=True)
                    marks = {r["symbol"]: _d(r.get("markPrice")) for r in await self.exchange.call(
                        "futures_mark_price", "Reading mark prices", signed=False)}
                    usd = gross_exposure(spot, prices, spot_open, positions, fut_open, algo, marks)
                    if seq is None:
                        return (self._equity if equity else None), (usd, None)
                    self._gross = (usd, seq, self.clock())
            return (self._equity if equity else None), (self._gross[:2] if gross else None)

    async def closes(self, market: str, symbol: str, since_s: float) -> list[Close]:
        """The symbol's closes since ``since_s`` (UTC epoch seconds), from its trade history."""
        key = (market, symbol, int(since_s) // 60)  # the same start, to the minute
        async with self._close_locks.setdefault(key[:2], asyncio.Lock()):  # decisions on one symbol share a read
            hit = self._closes.get(key)
            if hit is not None and self.clock() - hit[0] < CLOSES_REUSE_S:
                return hit[1]
            out = await self._read_closes(market, symbol, since_s)
            self._closes[key] = (self.clock(), out)
            return out

    async def _read_closes(self, market: str, symbol: str, since_s: float) -> list[Close]:
        start = int(since_s * 1000)
        if market == "futures":
            trades = await self._call("futures_account_trades", "Reading trade history", symbol=symbol,
                                      startTime=start, limit=1000)
            out = futures_closes(trades)
        else:
            trades = await self._call("get_my_trades", "Reading trade history", symbol=symbol, startTime=start,
                                      limit=1000)
            out = spot_closes(trades)
        return out

    def invalidate(self, market: str | None, symbol: str | None, side: str | None = None) -> None:
        """An order that may have closed something was answered: the symbol's trade history is read again. A spot
        BUY closes nothing. (The gross exposure read need not be dropped: a decision that reuses it counts every
        order answered since it as in flight, by the release counter.)"""
        if market == "spot" and side == "BUY":
            return
        for k in [k for k in self._closes if symbol is None or k[1] == symbol]:
            del self._closes[k]

    async def flat(self, market: str, symbol: str) -> bool:
        """No futures position on the symbol (any leg), or (spot) less of its base asset than can be sold."""
        if market == "futures":
            rows = await self._call("futures_position_information", "Reading the position", symbol=symbol)
            return all(_d(r.get("positionAmt")) == 0 for r in rows)
        info = await self.exchange.symbol_info("spot", symbol)
        base = info["baseAsset"]
        account = await self._call("get_account", "Reading the spot account")
        held = spot_amounts(account).get(base, ZERO)
        if held <= 0:
            return True
        row = await self.exchange.call("get_symbol_ticker", "Reading the price", signed=False, symbol=symbol)
        price = price_map([row]).get(symbol)
        if price is None:
            raise FactError(f"the {symbol} price from the exchange is not a positive number")
        return held * price < _min_notional(info)


def _min_notional(info: dict) -> Decimal:
    for f in info.get("filters", []):
        if f.get("filterType") in ("NOTIONAL", "MIN_NOTIONAL"):
            return _d(f.get("minNotional"))
    return Decimal(1)


def day_start(now: float) -> float:
    return now - (now % 86400)


class Protector:
    """Fills a decision's protection facts and keeps equity samples and trips in the guard's state store."""

    def __init__(self, guard: Any, reader: AccountFacts | None) -> None:
        self.guard = guard
        self.reader = reader
        self.unpriced: tuple[str, ...] = ()
        self.last_error: str | None = None
        self._sampler: asyncio.Task | None = None

    async def fill(self, prot: Protections, call: Call, needs: set[str], facts: Facts, seq: int | None
                   ) -> int | None:
        """Add the protection figures to ``facts`` (only for a call that adds exposure). Returns the release
        counter the decision must count in-flight orders from (older when the gross exposure read is reused)."""
        if not (needs & EQUITY_NEEDS) or facts.adds_exposure is False:
            return seq
        if self.reader is None:
            raise FactError("the account cannot be read for the protections")
        g = self.guard
        eq, gross = await self.reader.read("equity" in needs, "gross" in needs, seq)
        if eq is not None:
            await self.record(prot, eq, facts)
        if gross is not None:
            if seq is None:  # only order tools need it, and they always note the counter (guard._facts)
                raise FactError("the gross exposure needs the state store's release counter")
            facts.gross_exposure_usd = gross[0]
            seq = min(seq, gross[1])  # a reused read: orders answered since it count as in flight on top of it
        now = g.clock()
        symbol = call.get("symbol")
        market = "futures" if call.tool.startswith("binance_futures") else "spot"
        since = await g.store.run(g.state.last_reset, g.account) if ({"streak", "cooldown"} & needs) else 0.0
        if "streak" in needs and prot.loss_streak is not None:
            facts.losing_closes, facts.loss_cooldown_s = await self.streak(prot.loss_streak, now, since,
                                                                           (market, symbol) if symbol else None)
        if "cooldown" in needs and symbol and prot.cooldown_after_close is not None:
            cd = prot.cooldown_after_close
            closes = await self.reader.closes(market, symbol, min(day_start(now), now - cd))
            recent = [c for c in closes if now - c.at < cd and c.at >= since]
            facts.close_cooldown_s = close_left(recent, await self.reader.flat(market, symbol) if recent else False,
                                                cd, now, since)
        return seq

    async def streak(self, ls: Any, now: float, since: float, also: tuple[str, str] | None = None
                     ) -> tuple[int, float]:
        """(losing closes within the window, seconds of pause left), from the trade history of every symbol this
        account traded through the server in window + cooldown (and ``also``, the call's own market and symbol)."""
        g = self.guard
        symbols = set(await g.store.run(g.state.traded_since, g.account, now - ls.window - ls.cooldown))
        if also is not None:
            symbols.add(also)
        start = min(day_start(now), now - ls.window - ls.cooldown)
        closes: list[Close] = []
        for m, s in sorted(symbols):
            closes += await self.reader.closes(m, s, start)
        return streak_left(closes, ls.losses, ls.window, ls.cooldown, now, since)

    async def record(self, prot: Protections, eq: Equity, facts: Facts | None = None) -> dict[str, dict]:
        """Store the sample (the day's first, peak, last; trips it crosses) and put the figures in ``facts``."""
        g = self.guard
        self.unpriced = eq.unpriced
        first, peak, trips = await g.store.run(g.state.record_equity, g.account, eq.usd, equity_checks(prot))
        if facts is not None:
            facts.equity_usd, facts.equity_start_usd, facts.equity_peak_usd = eq.usd, first, peak
        for name, trip in trips.items():
            if trip.get("at") == g.clock():  # tripped by this very sample: say so once, loudly
                log.warning("protection %s tripped: %s", name, {k: v for k, v in trip.items() if k != "at"})
        return trips

    async def sample(self, prot: Protections) -> None:
        """A background sample (about once a minute while the server runs)."""
        if not prot.equity or self.reader is None:
            return
        eq, _ = await self.reader.read(True, False, None)
        await self.record(prot, eq)

    def start(self) -> None:
        if self._sampler is None and self.reader is not None:
            self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def _sample_forever(self) -> None:
        """Sample after each minute, once the exchange is in use: a stdio server touches no network at start."""
        g = self.guard
        while True:
            await g.sleep(SAMPLE_EVERY_S)
            try:
                if not getattr(self.reader.exchange, "connected", False):
                    continue
                prot = (await g.current()).policy.account.protections
                await self.sample(prot)
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except (FactError, StateError, OSError, Exception) as exc:  # noqa: BLE001 - the sampler keeps running
                why = g.redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:300]
                if why != self.last_error:  # one line per new failure, not one a minute
                    log.warning("equity sample failed: %s", why)
                self.last_error = why

    async def aclose(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            try:
                await self._sampler
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing must not raise
                pass
            self._sampler = None
