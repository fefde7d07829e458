"""Analysis helpers (read): computed locally from exchange data. All six work (the other server leaves three empty)."""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from binance_mcp.errors import InputError
from binance_mcp.exchange.filters import SymbolRules
from binance_mcp.tools.account import fetch_positions
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, D, Dec, Positive, Result, Symbol, ToolDef, iso

Market = Literal["spot", "futures"]
FUNDING_INTERVAL_MS = 8 * 3_600_000
CENT = Decimal("0.01")


async def rules(deps: Deps, market: str, symbol: str) -> SymbolRules:
    return SymbolRules.from_info(await deps.exchange.symbol_info(market, symbol), market)


class PositionSizeArgs(Args):
    symbol: Symbol
    riskAmount: Positive = Field(description="quote amount lost if the stop is hit")
    entryPrice: Positive
    stopLossPrice: Positive
    leverage: int = Field(1, ge=1, le=125)
    market: Market = "spot"

    @model_validator(mode="after")
    def _distinct(self) -> PositionSizeArgs:
        if self.entryPrice == self.stopLossPrice:
            raise ValueError("stopLossPrice must differ from entryPrice")
        return self


class PositionSizeResult(Result):
    symbol: str
    market: str
    side: str = Field(description="LONG when the stop is below entry, else SHORT")
    quantity: Dec = Field(description="rounded down to the step size")
    notional: Dec
    margin_required: Dec
    risk_at_stop: Dec = Field(description="loss if stopped out at this quantity")
    meets_min_qty: bool
    meets_min_notional: bool
    step_size: Dec
    min_notional: Dec


async def position_size(args: PositionSizeArgs, deps: Deps) -> PositionSizeResult:
    r = await rules(deps, args.market, args.symbol)
    per_unit = abs(args.entryPrice - args.stopLossPrice)
    qty = r.floor_qty(args.riskAmount / per_unit)
    notional = qty * args.entryPrice
    return PositionSizeResult(
        symbol=args.symbol, market=args.market, side="LONG" if args.stopLossPrice < args.entryPrice else "SHORT",
        quantity=qty, notional=notional, margin_required=notional / args.leverage, risk_at_stop=qty * per_unit,
        meets_min_qty=qty >= r.min_qty and qty > 0, meets_min_notional=notional >= r.min_notional,
        step_size=r.step_size, min_notional=r.min_notional,
    )


class NoArgs(Args):
    pass


class PositionRisk(BaseModel):
    symbol: str
    side: str
    size: Dec
    mark_price: Dec
    liquidation_price: Dec
    distance_to_liquidation_pct: Dec | None = Field(description="|mark - liquidation| / mark x 100; none when "
                                                                "there is no liquidation price")
    unrealized_pnl: Dec


class PortfolioRiskResult(Result):
    margin_balance: Dec
    initial_margin: Dec
    margin_usage_pct: Dec = Field(description="initial margin / margin balance x 100")
    risk_level: str = Field(description="LOW < 50 % <= MEDIUM < 80 % <= HIGH")
    total_unrealized_pnl: Dec
    positions: list[PositionRisk]
    winners: int
    losers: int
    spot_holdings: int = Field(description="spot assets with a non-zero balance")


def risk_level(pct: Decimal) -> str:
    return "LOW" if pct < 50 else "MEDIUM" if pct < 80 else "HIGH"


async def portfolio_risk(args: NoArgs, deps: Deps) -> PortfolioRiskResult:
    acc = await deps.exchange.call("futures_account", "Reading the futures account")
    positions = await fetch_positions(deps, None)
    spot = await deps.exchange.call("get_account", "Reading spot balances", omitZeroBalances="true")
    margin_balance, initial = D(acc.get("totalMarginBalance")), D(acc.get("totalInitialMargin"))
    usage = (initial / margin_balance * 100).quantize(CENT) if margin_balance > 0 else Decimal(0)
    rows = []
    for p in positions:
        dist = (abs(p.mark_price - p.liquidation_price) / p.mark_price * 100).quantize(CENT) if (
            p.liquidation_price > 0 and p.mark_price > 0) else None
        rows.append(PositionRisk(symbol=p.symbol, side=p.side, size=p.size, mark_price=p.mark_price,
                                 liquidation_price=p.liquidation_price, distance_to_liquidation_pct=dist,
                                 unrealized_pnl=p.unrealized_pnl))
    return PortfolioRiskResult(
        margin_balance=margin_balance, initial_margin=initial, margin_usage_pct=usage, risk_level=risk_level(usage),
        total_unrealized_pnl=sum((p.unrealized_pnl for p in positions), Decimal(0)), positions=rows,
        winners=sum(1 for p in positions if p.unrealized_pnl > 0),
        losers=sum(1 for p in positions if p.unrealized_pnl < 0),
        spot_holdings=sum(1 for b in spot.get("balances", []) if D(b["free"]) + D(b["locked"]) != 0),
    )


class CompareArgs(Args):
    symbol: Symbol = Field(description="an asset (BTC, read as BTCUSDT) or a symbol")


class CompareResult(Result):
    symbol: str
    spot_price: Dec
    futures_price: Dec = Field(description="perpetual last price")
    mark_price: Dec
    basis: Dec = Field(description="futures last - spot")
    basis_pct: Dec
    premium: str = Field(description="PREMIUM, DISCOUNT or FLAT (futures vs spot)")
    funding_rate: Dec
    next_funding_time: int
    next_funding_time_iso: str | None


def _full_symbol(symbol: str) -> str:
    quotes = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "TUSD", "DAI")
    return symbol if symbol.endswith(quotes) and len(symbol) > 4 else symbol + "USDT"


async def compare_prices(args: CompareArgs, deps: Deps) -> CompareResult:
    symbol = _full_symbol(args.symbol)
    what = f"Comparing {symbol} spot and futures"
    spot = await deps.exchange.call("get_symbol_ticker", what, signed=False, symbol=symbol)
    fut = await deps.exchange.call("futures_symbol_ticker", what, signed=False, symbol=symbol)
    mark = await deps.exchange.call("futures_mark_price", what, signed=False, symbol=symbol)
    s, f = D(spot["price"]), D(fut["price"])
    basis = f - s
    pct = (basis / s * 100).quantize(Decimal("0.0001"))
    return CompareResult(symbol=symbol, spot_price=s, futures_price=f, mark_price=D(mark["markPrice"]), basis=basis,
                         basis_pct=pct, premium="PREMIUM" if basis > 0 else "DISCOUNT" if basis < 0 else "FLAT",
                         funding_rate=D(mark["lastFundingRate"]), next_funding_time=int(mark["nextFundingTime"]),
                         next_funding_time_iso=iso(int(mark["nextFundingTime"])))


class FundingArgs(Args):
    symbol: Symbol
    positionSize: Decimal = Field(allow_inf_nan=False, description="signed base quantity: + long, - short")
    holdHours: Decimal = Field(gt=0, le=8760, allow_inf_nan=False)
    fundingRate: Decimal | None = Field(None, ge=-1, le=1, allow_inf_nan=False,
                                        description="per 8 h; default the current rate")

    @model_validator(mode="after")
    def _nonzero(self) -> FundingArgs:
        if self.positionSize == 0:
            raise ValueError("positionSize must not be 0 (+ long, - short)")
        return self


class FundingResult(Result):
    symbol: str
    position_size: Dec
    mark_price: Dec
    notional: Dec
    funding_rate: Dec
    funding_events: int = Field(description="funding times within the hold period")
    cost_per_event: Dec = Field(description="> 0 paid, < 0 received")
    total_cost: Dec = Field(description="> 0 paid, < 0 received")
    direction: str = Field(description="PAY, RECEIVE or NONE")
    next_funding_time: int
    next_funding_time_iso: str | None


async def funding_cost(args: FundingArgs, deps: Deps) -> FundingResult:
    m = await deps.exchange.call("futures_mark_price", f"Reading {args.symbol} funding", signed=False,
                                 symbol=args.symbol)
    mark = D(m["markPrice"])
    rate = args.fundingRate if args.fundingRate is not None else D(m["lastFundingRate"])
    nxt = int(m["nextFundingTime"])
    now = int(m.get("time") or time.time() * 1000)
    end = now + int(args.holdHours * 3_600_000)
    events = 0 if nxt > end else (end - nxt) // FUNDING_INTERVAL_MS + 1
    notional = args.positionSize * mark
    per = notional * rate
    total = per * events
    return FundingResult(symbol=args.symbol, position_size=args.positionSize, mark_price=mark, notional=notional,
                         funding_rate=rate, funding_events=events, cost_per_event=per, total_cost=total,
                         direction="PAY" if total > 0 else "RECEIVE" if total < 0 else "NONE",
                         next_funding_time=nxt, next_funding_time_iso=iso(nxt))


class PrecisionArgs(Args):
    symbol: Symbol
    price: Positive
    quantity: Positive
    market: Market = "spot"


class Check(BaseModel):
    check: str
    passed: bool
    detail: str


class PrecisionResult(Result):
    symbol: str
    market: str
    passes: bool
    checks: list[Check]
    valid_price: Dec = Field(description="nearest valid price")
    valid_quantity: Dec = Field(description="nearest valid quantity")
    reference_price: Dec = Field(description="current price (mark price for futures) used for the price band")


async def check_precision(args: PrecisionArgs, deps: Deps) -> PrecisionResult:
    r = await rules(deps, args.market, args.symbol)
    if args.market == "futures":
        m = await deps.exchange.call("futures_mark_price", "Reading the mark price", signed=False, symbol=args.symbol)
        ref = D(m["markPrice"])
    else:
        t = await deps.exchange.call("get_symbol_ticker", "Reading the price", signed=False, symbol=args.symbol)
        ref = D(t["price"])
    checks = r.checks(args.price, args.quantity, ref)
    return PrecisionResult(symbol=args.symbol, market=args.market, passes=all(c["passed"] for c in checks),
                           checks=[Check(**c) for c in checks], valid_price=r.round_price(args.price),
                           valid_quantity=r.nearest_qty(args.quantity), reference_price=ref)


class OptimalArgs(Args):
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    maxPriceImpact: Decimal = Field(Decimal("1.0"), ge=Decimal("0.01"), le=10, allow_inf_nan=False,
                                    description="percent the average fill may move from the best price")


class OptimalResult(Result):
    symbol: str
    side: str
    best_price: Dec
    quantity: Dec = Field(description="largest quantity within the impact, rounded down to the step size")
    notional: Dec
    avg_price: Dec
    impact_pct: Dec
    levels_used: int
    book_exhausted: bool = Field(description="true when all 1000 levels fit: more may be possible")


def optimal_size(levels: list[tuple[Decimal, Decimal]], buy: bool, impact_pct: Decimal, step: Decimal
                 ) -> tuple[Decimal, Decimal, int, bool]:
    """(quantity, cost, levels_used, exhausted) keeping the average price within impact_pct of the best."""
    best = levels[0][0]
    limit = best * (1 + impact_pct / 100) if buy else best * (1 - impact_pct / 100)
    qty = cost = Decimal(0)
    used = 0
    exhausted = True
    for price, avail in levels:
        new_qty, new_cost = qty + avail, cost + price * avail
        if (new_cost / new_qty <= limit) if buy else (new_cost / new_qty >= limit):
            qty, cost = new_qty, new_cost
            used += 1
            continue
        # Take part of this level: (cost + p*q) / (qty + q) == limit  =>  q = (limit*qty - cost) / (p - limit)
        if price != limit:
            part = (limit * qty - cost) / (price - limit)
            if part > 0:
                qty, cost = qty + part, cost + price * part
                used += 1
        exhausted = False
        break
    if step > 0 and qty > 0:
        rounded = (qty / step).to_integral_value(rounding=ROUND_DOWN) * step
        cost = _cost_of(levels, rounded)
        qty = rounded
    return qty, cost, used, exhausted


def _cost_of(levels: list[tuple[Decimal, Decimal]], qty: Decimal) -> Decimal:
    cost, left = Decimal(0), qty
    for price, avail in levels:
        take = min(avail, left)
        cost += take * price
        left -= take
        if left <= 0:
            break
    return cost


async def optimal_trade_size(args: OptimalArgs, deps: Deps) -> OptimalResult:
    book = await deps.exchange.call("get_order_book", f"Reading the {args.symbol} order book", signed=False,
                                    symbol=args.symbol, limit=1000)
    side = book["asks"] if args.side == "BUY" else book["bids"]
    if not side:
        raise InputError(f"the {args.symbol} book has no {'asks' if args.side == 'BUY' else 'bids'}")
    levels = [(D(p), D(q)) for p, q in side]
    r = await rules(deps, "spot", args.symbol)
    qty, cost, used, exhausted = optimal_size(levels, args.side == "BUY", args.maxPriceImpact, r.step_size)
    best = levels[0][0]
    avg = cost / qty if qty else best
    return OptimalResult(symbol=args.symbol, side=args.side, best_price=best, quantity=qty, notional=cost,
                         avg_price=avg, impact_pct=(abs(avg - best) / best * 100).quantize(Decimal("0.0001")),
                         levels_used=used, book_exhausted=exhausted)


TOOLS = [
    ToolDef("binance_calculate_position_size", "Risk-based size: the quantity whose stop-out loses riskAmount, "
            "rounded down to the step size, with notional, margin at leverage and min-notional check.",
            PositionSizeArgs, PositionSizeResult, position_size),
    ToolDef("binance_analyze_portfolio_risk", "Futures margin usage %, risk level, distance to liquidation per "
            "position, winners/losers, total unrealized PnL, spot holdings count.", NoArgs, PortfolioRiskResult,
            portfolio_risk),
    ToolDef("binance_compare_spot_futures_price", "Spot vs perpetual price for an asset or symbol: basis, basis %, "
            "premium or discount, funding rate.", CompareArgs, CompareResult, compare_prices),
    ToolDef("binance_calculate_funding_cost", "Funding paid or received for a position held N hours at the current "
            "(or given) rate, with the number of funding events.", FundingArgs, FundingResult, funding_cost),
    ToolDef("binance_check_order_precision", "Check price and quantity against tick size, step size, min/max "
            "quantity, min notional and the price band; gives the nearest valid values.", PrecisionArgs,
            PrecisionResult, check_precision),
    ToolDef("binance_get_optimal_trade_size", "Largest spot quantity whose average fill stays within "
            "maxPriceImpact % of the best price, walking the order book (depth 1000).", OptimalArgs, OptimalResult,
            optimal_trade_size),
]
