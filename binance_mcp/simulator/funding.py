"""Funding payments and liquidations of the paper futures account, settled before each request and poll.

Funding, as Binance settles it: at each funding time a position pays ``size x mark price x funding rate`` (a long
pays a positive rate, a short receives it; a negative rate the other way round). The rate is the feed's: the
synthetic formula of market.py, or the upstream's ``lastFundingRate`` with its ``nextFundingTime``. Each
payment is a FUNDING_FEE record of the income ledger (``/fapi/v1/income``) and moves the wallet. A paper
exchange that was not running at a funding time settles it when it next runs, once per funding time missed, at
the rate it knows then (the 8-hour grid).

Liquidation: a position whose mark price reached its liquidation price (the one positionRisk shows) is closed at
that price by an ``autoclose-`` order, as Binance's liquidation engine does, with the taker fee; the loss is
realised. A wallet left below zero is brought back to zero (Binance's insurance fund takes the rest).
"""

from __future__ import annotations

from decimal import Decimal

from binance_mcp.simulator.futures_models import FuturesOrder
from binance_mcp.simulator.market import FUNDING_INTERVAL

ZERO = Decimal(0)


def _next_funding(ex, symbol: str, now: int) -> int:
    market = ex.market
    if hasattr(market, "next_funding"):  # live: the upstream's own schedule
        return market.next_funding(symbol, now)
    return market.next_funding_time(now)


def settle(ex, now: int) -> None:
    """Pay the funding due and liquidate what must be, on ``ex`` (a PaperExchange) at ``now`` (ms)."""
    f = ex.futures
    held = sorted({s for (s, _), pos in f.positions.items() if pos.amt})
    for symbol in [s for s in ex.next_funding if s not in held]:
        del ex.next_funding[symbol]  # no position: the next one starts its own schedule
    for symbol in held:
        due = ex.next_funding.get(symbol)
        if due is None:  # a new position: its first funding time is the next one
            ex.next_funding[symbol] = _next_funding(ex, symbol, now)
            continue
        if now < due:
            continue
        times = 1 + (now - due) // FUNDING_INTERVAL
        mark = ex.market.mark_price(symbol)
        rate = ex.market.funding_rate(symbol)
        for i in range(int(times)):
            for (s, _), pos in f.positions.items():
                if s != symbol or not pos.amt:
                    continue
                fee = (-pos.amt * mark * rate).quantize(Decimal("0.00000001"))
                if fee:
                    f.wallet["USDT"] = f.wallet.get("USDT", ZERO) + fee
                    f.income.add(symbol, "FUNDING_FEE", fee, due + i * FUNDING_INTERVAL)
        f.update_time = now
        upcoming = _next_funding(ex, symbol, now)
        ex.next_funding[symbol] = upcoming if upcoming > now else due + times * FUNDING_INTERVAL
    liquidate(ex, now)


def liquidate(ex, now: int) -> None:
    f = ex.futures
    for pos in [p for p in f.positions.values() if p.amt]:
        liq = f.liquidation_price(pos)
        if liq <= 0:
            continue
        mark = ex.market.mark_price(pos.symbol)
        if (pos.amt > 0 and mark > liq) or (pos.amt < 0 and mark < liq):
            continue
        from binance_mcp.simulator.symbols import FUTURES_SYMBOLS

        spec = FUTURES_SYMBOLS[pos.symbol]
        price = liq.quantize(spec.tick_size)
        side = "SELL" if pos.amt > 0 else "BUY"
        qty = abs(pos.amt)
        order = FuturesOrder(pos.symbol, next(f._ids), f"autoclose-{now}", side, pos.side, "LIMIT", "IOC", price,
                             qty, True, now, update_time=now)
        f.orders[order.order_id] = order
        for o in f.open_orders(pos.symbol):  # Binance cancels the symbol's open orders before it liquidates
            if o is not order:
                o.status, o.update_time = "CANCELED", now
        f._fill(order, price, qty, now, maker=False)
        order.status = "FILLED"
        if f.wallet.get("USDT", ZERO) < 0:
            f.wallet["USDT"] = ZERO
