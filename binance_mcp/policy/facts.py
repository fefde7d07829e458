"""Gathering the facts a decision needs: notional in USD, reference price, open orders, leverage, position.

The server computes the notional itself and never trusts a price the agent sends for a market order.
Prices come through short-lived caches, so a second order on the same symbol within two seconds costs
no extra request. A fact that cannot be fetched raises, and the guard denies with POLICY_ERROR.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from binance_mcp.policy.engine import Call, Facts

STABLE = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI")
QUOTES = STABLE + ("BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "XRP", "DOGE", "SOL")
PRICE_TTL = 2.0


class FactError(Exception):
    """A fact the policy needs could not be determined. ``facts`` holds those gathered before it (or None)."""

    facts: Facts | None = None


class PriceSource(Protocol):
    async def spot_book_top(self, symbol: str) -> tuple[Decimal, Decimal]: ...  # (bid, ask)
    async def spot_price(self, symbol: str) -> Decimal: ...
    async def mark_price(self, symbol: str) -> Decimal: ...
    async def quote_asset(self, market: str, symbol: str) -> str: ...
    async def open_orders(self, market: str) -> int: ...
    async def leverage(self, symbol: str) -> int: ...
    async def position(self, symbol: str, side: str) -> Decimal: ...  # signed amount
    async def positions(self, symbol: str) -> dict[str, Decimal]: ...  # positionSide -> signed amount


class ExchangeFacts:
    """PriceSource backed by the exchange adapter (with caches)."""

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange

    async def spot_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        book = await self.exchange.cached(("book5", symbol), PRICE_TTL, "get_order_book", "Reading the price",
                                          symbol=symbol, limit=5)
        if not book.get("bids") or not book.get("asks"):
            raise FactError(f"the {symbol} order book is empty")
        return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])

    async def spot_price(self, symbol: str) -> Decimal:
        row = await self.exchange.cached(("price", symbol), PRICE_TTL, "get_symbol_ticker", "Reading the price",
                                         symbol=symbol)
        return Decimal(row["price"])

    async def mark_price(self, symbol: str) -> Decimal:
        row = await self.exchange.cached(("mark", symbol), PRICE_TTL, "futures_mark_price", "Reading the mark price",
                                         symbol=symbol)
        return Decimal(row["markPrice"])

    async def quote_asset(self, market: str, symbol: str) -> str:
        for quote in sorted(QUOTES, key=len, reverse=True):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return quote
        info = await self.exchange.symbol_info(market, symbol)
        return info["quoteAsset"]

    async def open_orders(self, market: str) -> int:
        if market == "futures":
            regular = await self.exchange.call("futures_get_open_orders", "Counting open orders")
            algo = await self.exchange.call("futures_get_open_orders", "Counting open orders", conditional=True)
            return len(regular) + len(algo)
        return len(await self.exchange.call("get_open_orders", "Counting open orders"))

    async def leverage(self, symbol: str) -> int:
        rows = await self.exchange.call("futures_symbol_config", "Reading leverage", symbol=symbol)
        rows = rows if isinstance(rows, list) else [rows]
        for r in rows:
            if r.get("symbol") == symbol:
                return int(r["leverage"])
        raise FactError(f"no leverage setting for {symbol}")

    async def positions(self, symbol: str) -> dict[str, Decimal]:
        rows = await self.exchange.call("futures_position_information", "Reading the position", symbol=symbol)
        out: dict[str, Decimal] = {}
        for r in rows:
            out[r.get("positionSide", "BOTH")] = out.get(r.get("positionSide", "BOTH"), Decimal(0)) + Decimal(
                r["positionAmt"])
        return out

    async def position(self, symbol: str, side: str) -> Decimal:
        return (await self.positions(symbol)).get(side, Decimal(0))


async def to_usd(src: PriceSource, market: str, symbol: str, quote_amount: Decimal) -> Decimal:
    quote = await src.quote_asset(market, symbol)
    if quote in STABLE:
        return quote_amount
    try:
        rate = await src.spot_price(f"{quote}USDT")
    except Exception as exc:  # noqa: BLE001 - any failure means no conversion path
        raise FactError(f"no USD conversion for {quote}: {quote}USDT has no price ({exc})") from exc
    return quote_amount * rate


async def gather(call: Call, needs: set[str], src: PriceSource) -> Facts:
    facts = Facts()
    if not needs:
        return facts
    tool = call.tool
    symbol = call.get("symbol")
    try:
        if tool == "binance_spot_place_order":
            await _spot_order(call, needs, src, facts)
        elif tool == "binance_futures_place_order":
            await _futures_order(call, needs, src, facts)
        elif tool == "binance_futures_close_position" and "notional" in needs:
            positions = await src.positions(symbol)
            side = call.get("positionSide")
            size = sum((abs(a) for s, a in positions.items() if side is None or s == side), Decimal(0))
            mark = await src.mark_price(symbol)
            facts.quantity = size
            facts.reference_price = mark
            facts.notional_usd = await to_usd(src, "futures", symbol, size * mark)
    except FactError as exc:
        exc.facts = facts
        raise
    return facts


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def _spot_order(call: Call, needs: set[str], src: PriceSource, facts: Facts) -> None:
    symbol, side, otype = call.get("symbol"), call.get("side"), call.get("type")
    qty, quote_qty = _dec(call.get("quantity")), _dec(call.get("quoteOrderQty"))
    price, stop = _dec(call.get("price")), _dec(call.get("stopPrice"))
    facts.quantity = qty
    if "notional" in needs:
        if otype == "MARKET":
            # Never the agent's price: the book's best ask (BUY) or bid (SELL), or the quote amount itself.
            bid, ask = await src.spot_book_top(symbol)
            facts.reference_price = ask if side == "BUY" else bid
            if quote_qty is not None:
                quote_notional = quote_qty
                facts.quantity = quote_qty / facts.reference_price
            else:
                quote_notional = qty * facts.reference_price
        elif price is not None and side == "SELL":
            # A SELL priced under the market crosses and fills at the best bid (or, once a stop triggers, near the
            # stop price) or better: never count less than that, or a far-too-low limit price would slip a large
            # order under a notional cap.
            floor = stop if stop is not None else (await src.spot_book_top(symbol))[0]
            quote_notional = qty * max(price, floor)
        elif price is not None:  # a BUY that crosses fills at or under its price: qty x price is the upper bound
            quote_notional = qty * price
        else:  # STOP_LOSS / TAKE_PROFIT: a market order at the trigger
            quote_notional = qty * stop
        facts.notional_usd = await to_usd(src, "spot", symbol, quote_notional)
    if "deviation" in needs:
        ref = await src.spot_price(symbol)
        order_price = price if price is not None else stop
        facts.reference_price = ref
        facts.price_deviation_pct = abs(order_price - ref) / ref * 100
    if "open_orders" in needs:
        facts.open_orders = await src.open_orders("spot")


async def _futures_order(call: Call, needs: set[str], src: PriceSource, facts: Facts) -> None:
    symbol, side = call.get("symbol"), call.get("side")
    qty = _dec(call.get("quantity"))
    price, stop = _dec(call.get("price")), _dec(call.get("stopPrice"))
    ps = call.get("positionSide") or "BOTH"
    closing = bool(call.get("closePosition"))
    position: Decimal | None = None
    if closing or {"position", "position_after"} & needs:
        position = await src.position(symbol, ps)
    mark: Decimal | None = None
    if {"notional", "position_after", "deviation"} & needs or closing:
        mark = await src.mark_price(symbol)
        facts.reference_price = mark
    if closing:
        qty = abs(position or Decimal(0))
    facts.quantity = qty
    if "notional" in needs:
        facts.notional_usd = await to_usd(src, "futures", symbol, (qty or Decimal(0)) * mark)
    if "deviation" in needs:
        order_price = price if price is not None else stop
        facts.price_deviation_pct = abs(order_price - mark) / mark * 100 if order_price is not None else Decimal(0)
    if "open_orders" in needs:
        facts.open_orders = await src.open_orders("futures")
    if "leverage" in needs:
        facts.leverage = await src.leverage(symbol)
    signed = (qty or Decimal(0)) * (1 if side == "BUY" else -1)
    if "position" in needs:
        hedge_close = (ps == "LONG" and side == "SELL") or (ps == "SHORT" and side == "BUY")
        flagged = bool(call.get("reduceOnly")) or closing or hedge_close
        amt = position or Decimal(0)
        opposite = (amt > 0 and side == "SELL") or (amt < 0 and side == "BUY")
        facts.reduces_position = flagged and opposite and (closing or abs(signed) <= abs(amt))
    if "position_after" in needs:
        amt = position or Decimal(0)
        if ps == "SHORT":
            after = abs(amt + signed) if side == "SELL" else max(abs(amt) - abs(signed), Decimal(0))
        elif ps == "LONG":
            after = abs(amt + signed) if side == "BUY" else max(abs(amt) - abs(signed), Decimal(0))
        else:
            after = abs(amt + signed) if not closing else Decimal(0)
        facts.position_after_usd = await to_usd(src, "futures", symbol, after * mark)
