"""Symbol-filter math on Binance exchangeInfo rows (spot and futures spell their filters differently)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)


def _d(value: object, default: str = "0") -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    return Decimal(str(value))


@dataclass(frozen=True)
class SymbolRules:
    symbol: str
    market: str
    base: str
    quote: str
    status: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal | None
    multiplier_up: Decimal | None
    multiplier_down: Decimal | None
    order_types: tuple[str, ...]

    @classmethod
    def from_info(cls, row: dict, market: str) -> SymbolRules:
        filters = {f.get("filterType"): f for f in row.get("filters", [])}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        mlot = filters.get("MARKET_LOT_SIZE", {})
        if market == "futures":
            min_notional = _d(filters.get("MIN_NOTIONAL", {}).get("notional"))
            max_notional = None
            pp = filters.get("PERCENT_PRICE", {})
            up, down = pp.get("multiplierUp"), pp.get("multiplierDown")
            types = row.get("orderTypes") or row.get("OrderType") or []
        else:
            notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
            min_notional = _d(notional.get("minNotional"))
            max_notional = _d(notional.get("maxNotional")) if notional.get("maxNotional") else None
            pp = filters.get("PERCENT_PRICE_BY_SIDE") or filters.get("PERCENT_PRICE") or {}
            up = pp.get("bidMultiplierUp", pp.get("multiplierUp"))
            down = pp.get("askMultiplierDown", pp.get("multiplierDown"))
            types = row.get("orderTypes") or []
        market_max = _d(mlot.get("maxQty")) if mlot.get("maxQty") and _d(mlot.get("maxQty")) > 0 else _d(
            lot.get("maxQty"))
        return cls(
            symbol=row["symbol"], market=market, base=row.get("baseAsset", ""), quote=row.get("quoteAsset", ""),
            status=row.get("status", "TRADING"), tick_size=_d(price.get("tickSize")),
            min_price=_d(price.get("minPrice")), max_price=_d(price.get("maxPrice")),
            step_size=_d(lot.get("stepSize")), min_qty=_d(lot.get("minQty")), max_qty=_d(lot.get("maxQty")),
            market_max_qty=market_max, min_notional=min_notional, max_notional=max_notional,
            multiplier_up=_d(up) if up is not None else None, multiplier_down=_d(down) if down is not None else None,
            order_types=tuple(types),
        )

    # -- rounding ---------------------------------------------------------------------------
    def round_price(self, price: Decimal) -> Decimal:
        """The nearest valid price (half up), within min/max."""
        if self.tick_size <= 0:
            return price
        steps = ((price - self.min_price) / self.tick_size).to_integral_value(rounding=ROUND_HALF_UP)
        value = self.min_price + steps * self.tick_size
        value = max(value, self.min_price if self.min_price > 0 else self.tick_size)
        if self.max_price > 0:
            value = min(value, self.max_price)
        return value.normalize() if value == value.to_integral() else value

    def floor_qty(self, qty: Decimal) -> Decimal:
        """The largest valid quantity not above ``qty`` (may be below min_qty: check separately)."""
        if self.step_size <= 0:
            return qty
        steps = ((qty - self.min_qty) / self.step_size).to_integral_value(rounding=ROUND_DOWN)
        if steps < 0:
            return ZERO
        return self.min_qty + steps * self.step_size

    def nearest_qty(self, qty: Decimal) -> Decimal:
        if self.step_size <= 0:
            return qty
        steps = ((qty - self.min_qty) / self.step_size).to_integral_value(rounding=ROUND_HALF_UP)
        value = self.min_qty + max(steps, Decimal(0)) * self.step_size
        if self.max_qty > 0:
            value = min(value, self.max_qty)
        return value

    # -- checks -----------------------------------------------------------------------------
    def checks(self, price: Decimal, qty: Decimal, reference: Decimal | None) -> list[dict]:
        """Each filter check: name, passed, detail. ``reference`` is the current (mark) price for the band."""
        out: list[dict] = []

        def add(name: str, ok: bool, detail: str) -> None:
            out.append({"check": name, "passed": ok, "detail": detail})

        tick_ok = self.tick_size <= 0 or (price - self.min_price) % self.tick_size == 0
        add("tick_size", tick_ok, f"price must be a multiple of {self.tick_size}")
        add("min_price", price >= self.min_price, f"price must be >= {self.min_price}")
        if self.max_price > 0:
            add("max_price", price <= self.max_price, f"price must be <= {self.max_price}")
        step_ok = self.step_size <= 0 or (qty - self.min_qty) % self.step_size == 0
        add("step_size", step_ok, f"quantity must be a multiple of {self.step_size}")
        add("min_qty", qty >= self.min_qty, f"quantity must be >= {self.min_qty}")
        if self.max_qty > 0:
            add("max_qty", qty <= self.max_qty, f"quantity must be <= {self.max_qty}")
        notional = price * qty
        add("min_notional", notional >= self.min_notional,
            f"price x quantity = {notional.normalize():f} must be >= {self.min_notional}")
        if self.max_notional:
            add("max_notional", notional <= self.max_notional, f"price x quantity must be <= {self.max_notional}")
        if reference is not None and self.multiplier_up is not None and self.multiplier_down is not None:
            lo, hi = reference * self.multiplier_down, reference * self.multiplier_up
            add("percent_price", lo <= price <= hi,
                f"price must be within {lo.normalize():f} .. {hi.normalize():f} of the current price {reference}")
        return out
