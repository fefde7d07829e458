"""Gathering the facts a decision needs: notional in USD, reference price, open orders, leverage, position.

The server computes the notional itself and never trusts a price the agent sends for a market order.
Prices come through short-lived caches, so a second order on the same symbol within two seconds costs
no extra request. A fact that cannot be fetched raises, and the guard denies with POLICY_ERROR.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from binance_mcp.catalog import BY_NAME
from binance_mcp.policy.engine import Call, Facts
from binance_mcp.policy.state import Pending

CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")

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

    @property
    def receive_window(self) -> float:
        """Seconds after which an order the exchange has not got can no longer be placed (it would be late)."""
        from binance_mcp.exchange.orders import LOOKUP_MARGIN

        return self.exchange.recv_window_s + LOOKUP_MARGIN

    async def find_order(self, market: str, symbol: str | None, cid: str, conditional: bool) -> bool | None:
        """Is there an order with this client id? True, False (the exchange says no such order), None (unknown)."""
        from binance_mcp.errors import ExchangeRejected, ExchangeUnavailable

        if market == "spot":
            method, params = "get_order", {"symbol": symbol, "origClientOrderId": cid}
        elif conditional:
            method, params = "futures_get_order", {"clientAlgoId": cid}
        else:
            method, params = "futures_get_order", {"symbol": symbol, "origClientOrderId": cid}
        try:
            await self.exchange.call(method, f"Looking up order {cid}", **params)
            return True
        except ExchangeRejected as exc:
            return False if exc.binance_code == -2013 else None
        except ExchangeUnavailable:
            return None


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
    return with_pending(call, facts, [])  # derived figures (open orders, position after) with nothing in flight


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
        facts.exchange_open_orders = await src.open_orders("spot")


async def _futures_order(call: Call, needs: set[str], src: PriceSource, facts: Facts) -> None:
    symbol = call.get("symbol")
    qty = _dec(call.get("quantity"))
    price, stop = _dec(call.get("price")), _dec(call.get("stopPrice"))
    ps = call.get("positionSide") or "BOTH"
    closing = bool(call.get("closePosition"))
    if closing or {"position", "position_after"} & needs:
        facts.position = await src.position(symbol, ps)
    mark: Decimal | None = None
    if {"notional", "position_after", "deviation"} & needs or closing:
        mark = await src.mark_price(symbol)
        facts.reference_price = facts.mark_price = mark
    if closing:
        qty = abs(facts.position or Decimal(0))
    facts.quantity = qty
    if "notional" in needs:
        facts.notional_usd = await to_usd(src, "futures", symbol, (qty or Decimal(0)) * mark)
    if "position_after" in needs:
        facts.usd_rate = await to_usd(src, "futures", symbol, Decimal(1))
    if "deviation" in needs:
        order_price = price if price is not None else stop
        facts.price_deviation_pct = abs(order_price - mark) / mark * 100 if order_price is not None else Decimal(0)
    if "open_orders" in needs:
        facts.exchange_open_orders = await src.open_orders("futures")
    if "leverage" in needs:
        facts.leverage = await src.leverage(symbol)


def reducing(call: Call) -> bool:
    """Does the order only ever shrink a position (flagged reduce-only, closePosition, a hedge-mode close, or the
    close tool)? Such an order never adds exposure, whatever it fills at."""
    if call.tool == "binance_futures_close_position":
        return True
    if call.tool != "binance_futures_place_order":
        return False
    ps, side = call.get("positionSide") or "BOTH", call.get("side")
    return bool(call.get("reduceOnly")) or bool(call.get("closePosition")) or \
        (ps == "LONG" and side == "SELL") or (ps == "SHORT" and side == "BUY")


def pending_entry(call: Call, facts: Facts | None, call_id: str, owner: str, client_order_id: str | None
                  ) -> Pending:
    """The in-flight record of an allowed call (what later decisions count until the exchange answers it)."""
    spec = BY_NAME.get(call.tool)
    market = spec.market if spec is not None and (spec.order or spec.reduces) else None
    qty = _dec(call.get("quantity"))
    if call.get("closePosition") or call.tool == "binance_futures_close_position":
        qty = None  # the whole position
    elif qty is None and facts is not None:
        qty = facts.quantity  # spot quoteOrderQty: the base quantity it buys at the price counted
    if market != "futures":
        position_side = None
    elif call.tool == "binance_futures_close_position":
        position_side = call.get("positionSide")  # None: every leg
    else:
        position_side = call.get("positionSide") or "BOTH"
    return Pending(call_id, call.tool, market, call.get("symbol"), call.get("side"), position_side, qty,
                   reducing(call),
                   client_order_id, call.tool == "binance_futures_place_order" and call.get("type") in CONDITIONAL,
                   0.0, owner)


def with_pending(call: Call, facts: Facts, pending: list[Pending]) -> Facts:
    """The facts with orders in flight added, as the worst case: every in-flight order on the same market counts
    as open; every in-flight order that adds to the same position leg is assumed to fill; every in-flight
    reducing order on the leg has used up the part of the position it reduces."""
    out = replace(facts)
    spec = BY_NAME.get(call.tool)
    market = spec.market if spec is not None else None
    mine = [p for p in pending if p.market == market]
    out.in_flight = len(mine) or None
    if facts.exchange_open_orders is not None:
        out.open_orders = facts.exchange_open_orders + len(mine)
    if call.tool != "binance_futures_place_order" or facts.position is None:
        return out
    symbol, side = call.get("symbol"), call.get("side")
    ps = call.get("positionSide") or "BOTH"
    leg = [p for p in mine if p.symbol == symbol and p.position_side in (ps, None)]
    amt = facts.position
    qty = facts.quantity or Decimal(0)
    signed = qty if side == "BUY" else -qty
    # Reduce-only: the position less what reducing orders in flight on this leg will take.
    if any(p.quantity is None for p in leg if p.reduces):
        available = Decimal(0)
    else:
        available = max(abs(amt) - sum((p.quantity for p in leg if p.reduces), Decimal(0)), Decimal(0))
    opposite = (amt > 0 and side == "SELL") or (amt < 0 and side == "BUY")
    flagged = reducing(call)
    closing = bool(call.get("closePosition"))
    out.reduces_position = flagged and opposite and available > 0 and (closing or abs(signed) <= available)
    if facts.mark_price is None or facts.usd_rate is None:
        return out
    # The position after this order, in the worst case over which in-flight orders that add to the leg fill.
    adding = [p for p in leg if not p.reduces and p.quantity is not None]
    if flagged:
        after = max(abs(amt) - abs(signed), Decimal(0)) if not closing else Decimal(0)
    elif ps == "BOTH":
        base = amt + signed
        ups = sum((p.quantity for p in adding if p.side == "BUY"), Decimal(0))
        downs = sum((p.quantity for p in adding if p.side == "SELL"), Decimal(0))
        after = max(abs(base + ups), abs(base - downs))
    else:  # hedge mode, an order that opens more on its leg (BUY LONG / SELL SHORT)
        after = abs(amt) + abs(signed) + sum((p.quantity for p in adding if p.side == side), Decimal(0))
    out.position_after_usd = after * facts.mark_price * facts.usd_rate
    return out
