"""Walking an order book: what a taker order at most ``limit_price`` would fill, level by level."""

from __future__ import annotations

from decimal import Decimal

from binance_mcp.simulator.feed import quantize_down

Level = tuple[Decimal, Decimal]


def walk(levels: list[Level], qty: Decimal | None = None, quote: Decimal | None = None,
         limit_price: Decimal | None = None, buy: bool = True, step: Decimal = Decimal(0)) -> list[Level]:
    """Fills ``[(price, qty), ...]`` taking ``levels`` (best first) for a base ``qty`` or a ``quote`` amount.

    With ``quote`` the total quantity is rounded down to ``step`` so LOT_SIZE still holds.
    """
    if quote is not None:
        total = Decimal(0)
        remaining = quote
        for price, avail in levels:
            if limit_price is not None and (price > limit_price if buy else price < limit_price):
                break
            take = min(avail, remaining / price)
            total += take
            remaining -= take * price
            if remaining <= 0:
                break
        qty = quantize_down(total, step) if step else total
    assert qty is not None
    fills: list[Level] = []
    remaining = qty
    for price, avail in levels:
        if remaining <= 0:
            break
        if limit_price is not None and (price > limit_price if buy else price < limit_price):
            break
        take = min(avail, remaining)
        fills.append((price, take))
        remaining -= take
    return fills


def filled_qty(fills: list[Level]) -> Decimal:
    return sum((q for _, q in fills), Decimal(0))


def filled_quote(fills: list[Level]) -> Decimal:
    return sum((p * q for p, q in fills), Decimal(0))
