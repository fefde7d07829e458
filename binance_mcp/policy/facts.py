"""Gathering the facts a decision needs: notional in USD, reference price, open orders, leverage, position.

The server computes the notional itself and never trusts a price the agent sends for a market order. Every
order is priced where it can fill (POLICY.md "Notional and exposure"). Prices are fresh: at most FRESH_S old,
and never older than the last answered order on the symbol (the guard calls ``invalidate``). A price that is
not a positive finite number, an empty book, or a book whose best prices are more than SANITY_PCT away from
the mark or last price is a fact failure. A fact that cannot be fetched raises, and the guard denies with
POLICY_ERROR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from binance_mcp.catalog import BY_NAME
from binance_mcp.errors import InputError
from binance_mcp.policy.engine import Call, Facts, reducing
from binance_mcp.policy.state import Pending

CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")

STABLE = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI")
QUOTES = STABLE + ("BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "XRP", "DOGE", "SOL")
FRESH_S = 0.3  # a price older than this is fetched again for a decision
MODE_TTL = 30.0  # the account's position mode (one-way or hedge) changes only by hand
SANITY_PCT = Decimal(10)  # a book further than this from the mark or last price is not believed


def quote_suffix(symbol: str) -> str | None:
    """The quote asset a symbol ends with (the longest of QUOTES that leaves a base), or None."""
    for quote in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return quote
    return None


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
    """PriceSource backed by the exchange adapter, with its own short price cache."""

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self._fresh: dict[tuple, tuple[float, Any]] = {}

    async def _price_read(self, key: tuple, ttl: float, method: str, what: str, **params: Any) -> Any:
        now = self.exchange.clock()
        hit = self._fresh.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = await self.exchange.call(method, what, signed=False, **params)
        self._fresh[key] = (self.exchange.clock(), value)
        return value

    def invalidate(self, symbol: str | None) -> None:
        """An order on ``symbol`` was answered: the next decision on it reads its prices again."""
        for key in [k for k in self._fresh if symbol is None or symbol in k]:
            del self._fresh[key]

    async def spot_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        book = await self._price_read(("book5", symbol), FRESH_S, "get_order_book", "Reading the price",
                                      symbol=symbol, limit=5)
        return _top(book, symbol)

    async def futures_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        book = await self._price_read(("fbook5", symbol), FRESH_S, "futures_order_book", "Reading the price",
                                      symbol=symbol, limit=5)
        return _top(book, symbol)

    async def spot_price(self, symbol: str) -> Decimal:
        row = await self._price_read(("price", symbol), FRESH_S, "get_symbol_ticker", "Reading the price",
                                     symbol=symbol)
        return positive(row["price"], f"the {symbol} price")

    async def mark_price(self, symbol: str) -> Decimal:
        row = await self._price_read(("mark", symbol), FRESH_S, "futures_mark_price", "Reading the mark price",
                                     symbol=symbol)
        return positive(row["markPrice"], f"the {symbol} mark price")

    def forget_position_mode(self) -> None:
        """The exchange said the position side does not match the account's mode (-4061): read it again."""
        self.exchange.forget(("dual",))

    async def position_mode(self) -> bool:
        """True in hedge mode (dual side position), False in one-way mode."""
        row = await self.exchange.cached(("dual",), MODE_TTL, "futures_get_position_mode", "Reading the position mode",
                                         signed=True)
        return _true(row.get("dualSidePosition"))

    async def open_legs(self, symbol: str) -> list[OpenLeg]:
        """The symbol's open futures orders, regular and conditional, as what they could add to a position."""
        regular = await self.exchange.call("futures_get_open_orders", "Reading open orders", symbol=symbol)
        algo = await self.exchange.call("futures_get_open_orders", "Reading open orders", symbol=symbol,
                                        conditional=True)
        legs = []
        for o in regular:
            left = Decimal(str(o.get("origQty") or 0)) - Decimal(str(o.get("executedQty") or 0))
            legs.append(OpenLeg(o.get("side"), o.get("positionSide") or "BOTH", left,
                                _true(o.get("reduceOnly")) or _true(o.get("closePosition"))))
        for a in algo:
            legs.append(OpenLeg(a.get("side"), a.get("positionSide") or "BOTH", Decimal(str(a.get("quantity") or 0)),
                                _true(a.get("reduceOnly")) or _true(a.get("closePosition"))))
        return legs

    async def quote_asset(self, market: str, symbol: str) -> str:
        quote = quote_suffix(symbol)
        if quote is not None:
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


@dataclass(frozen=True)
class OpenLeg:
    """An open order on the exchange as the worst case sees it: it may fill in full, later."""

    side: str
    position_side: str
    quantity: Decimal
    reduces: bool


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def positive(value: Any, what: str) -> Decimal:
    """A price from the exchange, only if it is a positive finite number."""
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise FactError(f"{what} from the exchange is not a number ({value!r})") from None
    if not d.is_finite() or d <= 0:
        raise FactError(f"{what} from the exchange is {value!r}, not a positive price")
    return d


def _top(book: dict, symbol: str) -> tuple[Decimal, Decimal]:
    if not book.get("bids") or not book.get("asks"):
        raise FactError(f"the {symbol} order book is empty")
    bid = positive(book["bids"][0][0], f"the {symbol} best bid")
    ask = positive(book["asks"][0][0], f"the {symbol} best ask")
    if bid > ask:
        raise FactError(f"the {symbol} order book is crossed (bid {bid} above ask {ask})")
    return bid, ask


def sane(bid: Decimal, ask: Decimal, ref: Decimal, symbol: str, what: str) -> None:
    """The book's best prices must lie within SANITY_PCT of the mark or last price, or neither is believed."""
    for name, price in (("bid", bid), ("ask", ask)):
        if abs(price - ref) * 100 > ref * SANITY_PCT:
            raise FactError(f"the {symbol} best {name} {price} is more than {SANITY_PCT} % away from the {what} {ref}: "
                            "the prices disagree, so neither is used")


async def to_usd(src: PriceSource, market: str, symbol: str, quote_amount: Decimal) -> Decimal:
    quote = await src.quote_asset(market, symbol)
    if quote in STABLE:
        return quote_amount
    try:
        rate = await src.spot_price(f"{quote}USDT")
    except Exception as exc:  # noqa: BLE001 - any failure means no conversion path
        raise FactError(f"no USD conversion for {quote}: {quote}USDT has no price ({exc})") from exc
    return quote_amount * positive(rate, f"the {quote}USDT price")


async def gather(call: Call, needs: set[str], src: PriceSource) -> Facts:
    """The facts ``needs`` names (see engine.needs; "exposure" asks whether the call adds exposure)."""
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
            facts.reference_price = facts.mark_price = mark
            facts.notional_usd = await to_usd(src, "futures", symbol, size * mark)
        elif tool == "binance_futures_change_leverage" and "exposure" in needs:
            facts.leverage = await src.leverage(symbol)
        if "exposure" in needs:
            facts.adds_exposure = await adds_exposure(call, facts, src)
    except FactError as exc:
        exc.facts = facts
        raise
    return with_pending(call, facts, [])  # derived figures (open orders, position after) with nothing in flight


async def adds_exposure(call: Call, facts: Facts, src: PriceSource) -> bool:
    """POLICY.md's table "What adds exposure": the one place that decides it for every call."""
    tool = call.tool
    if tool == "binance_spot_place_order":
        if call.get("side") == "BUY":
            return True
        return await src.quote_asset("spot", call.get("symbol")) not in STABLE  # ETHBTC SELL buys BTC
    if tool in ("binance_futures_place_order", "binance_futures_close_position"):
        return not reducing(call)
    if tool == "binance_futures_change_leverage":
        return facts.leverage is None or int(call.get("leverage")) > facts.leverage
    spec = BY_NAME.get(tool)
    return spec is not None and spec.risk == "financial"  # margin type: yes; cancels and reads: no


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _order_price(call: Call) -> Decimal | None:
    """The higher of the order's limit and stop prices (None for a market order)."""
    prices = [p for p in (_dec(call.get("price")), _dec(call.get("stopPrice"))) if p is not None]
    return max(prices) if prices else None


async def _spot_order(call: Call, needs: set[str], src: PriceSource, facts: Facts) -> None:
    symbol, side, otype = call.get("symbol"), call.get("side"), call.get("type")
    qty, quote_qty = _dec(call.get("quantity")), _dec(call.get("quoteOrderQty"))
    facts.quantity = qty
    if "notional" in needs:
        # Never the agent's price alone: the book's side where it would fill now (ask for a BUY, bid for a SELL),
        # checked against the last price; a limit or stop order at the higher of that and its own price.
        bid, ask = await src.spot_book_top(symbol)
        last = await src.spot_price(symbol)
        sane(bid, ask, last, symbol, "last price")
        current = ask if side == "BUY" else bid
        if otype == "MARKET":
            facts.reference_price = current
            if quote_qty is not None:
                quote_notional = quote_qty
                facts.quantity = quote_qty / current
            else:
                quote_notional = qty * current
        else:
            facts.reference_price = max(_order_price(call), current)
            quote_notional = qty * facts.reference_price
        facts.notional_usd = await to_usd(src, "spot", symbol, quote_notional)
    if "deviation" in needs:
        ref = await src.spot_price(symbol)
        order_price = _dec(call.get("price")) if call.get("price") is not None else _dec(call.get("stopPrice"))
        facts.reference_price = ref
        facts.price_deviation_pct = abs(order_price - ref) / ref * 100
    if "open_orders" in needs:
        facts.exchange_open_orders = await src.open_orders("spot")


async def _futures_order(call: Call, needs: set[str], src: PriceSource, facts: Facts) -> None:
    symbol, side, otype = call.get("symbol"), call.get("side"), call.get("type")
    qty = _dec(call.get("quantity"))
    ps = call.get("positionSide") or "BOTH"
    closing = bool(call.get("closePosition"))
    if closing or {"position", "position_after"} & needs:
        hedge = await src.position_mode()
        if hedge and ps == "BOTH":
            raise InputError("binance_futures_place_order: the account is in hedge mode, so give positionSide LONG "
                             "or SHORT. Nothing was sent to the exchange; fix the arguments and call again.")
        if not hedge and ps != "BOTH":
            raise InputError(f"binance_futures_place_order: positionSide {ps} is for hedge mode and the account is "
                             "in one-way mode: omit positionSide (or give BOTH). Nothing was sent to the exchange; "
                             "fix the arguments and call again.")
        facts.position = await src.position(symbol, ps)
    mark: Decimal | None = None
    if {"notional", "position_after", "deviation"} & needs or closing:
        mark = await src.mark_price(symbol)
        facts.reference_price = facts.mark_price = mark
    if closing:
        qty = abs(facts.position or Decimal(0))
    facts.quantity = qty
    if "notional" in needs:
        # Where it can fill: the book's side (ask for a BUY, bid for a SELL), never below the mark; a limit or
        # stop order at the higher of that and its own price.
        bid, ask = await src.futures_book_top(symbol)
        sane(bid, ask, mark, symbol, "mark price")
        price = max(ask if side == "BUY" else bid, mark)
        order_price = _order_price(call) if otype != "MARKET" else None
        facts.reference_price = max(price, order_price) if order_price is not None else price
        facts.notional_usd = await to_usd(src, "futures", symbol, (qty or Decimal(0)) * facts.reference_price)
    if "position_after" in needs:
        facts.usd_rate = await to_usd(src, "futures", symbol, Decimal(1))
        facts.open_legs = tuple(await src.open_legs(symbol))
    if "deviation" in needs:
        order_price = _dec(call.get("price")) if call.get("price") is not None else _dec(call.get("stopPrice"))
        facts.price_deviation_pct = abs(order_price - mark) / mark * 100 if order_price is not None else Decimal(0)
    if "open_orders" in needs:
        facts.exchange_open_orders = await src.open_orders("futures")
    if "leverage" in needs:
        facts.leverage = await src.leverage(symbol)


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
    # The USD it adds to the gross exposure while in flight: 0 for an order that adds none, None when not priced.
    adds = spec is not None and spec.order and not reducing(call) and (facts is None or facts.adds_exposure is not False)
    notional = (facts.notional_usd if facts is not None else None) if adds else Decimal(0)
    return Pending(call_id, call.tool, market, call.get("symbol"), call.get("side"), position_side, qty,
                   reducing(call),
                   client_order_id, call.tool == "binance_futures_place_order" and call.get("type") in CONDITIONAL,
                   0.0, owner, notional)


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
    if facts.gross_exposure_usd is not None:
        # Gross exposure, worst case: every order in flight that adds exposure (either market) fills in full, and
        # so does this one. An order in flight that was not priced when allowed cannot be bounded: unknown.
        flying = [p.notional for p in pending if p.market is not None and not p.reduces]
        this = facts.notional_usd if facts.adds_exposure and not reducing(call) else Decimal(0)
        out.gross_after_usd = None if this is None or any(n is None for n in flying) else \
            facts.gross_exposure_usd + sum(flying, Decimal(0)) + this
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
    # The position after this order, in the worst case: every in-flight order and every open order (resting or
    # conditional) on the symbol that adds to the leg fills in full.
    adding = [p for p in leg if not p.reduces and p.quantity is not None]
    adding += [o for o in facts.open_legs if o.position_side == ps and not o.reduces and o.quantity > 0]
    out.open_adding = sum(1 for o in facts.open_legs if o.position_side == ps and not o.reduces) or None
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
