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
from binance_mcp.tools.models import Args, D, Dec, Positive, Result, Symbol, ToolDef

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
    quantity: Dec
    notional: Dec
    marginRequired: Dec
    riskAtStop: Dec
    meetsMinQty: bool
    meetsMinNotional: bool


async def position_size(args: PositionSizeArgs, deps: Deps) -> PositionSizeResult:
    r = await rules(deps, args.market, args.symbol)
    per_unit = abs(args.entryPrice - args.stopLossPrice)
    qty = r.floor_qty(args.riskAmount / per_unit)
    notional = qty * args.entryPrice
    return PositionSizeResult(
        quantity=qty, notional=notional, marginRequired=notional / args.leverage, riskAtStop=qty * per_unit,
        meetsMinQty=qty >= r.min_qty and qty > 0, meetsMinNotional=notional >= r.min_notional,
    )


class NoArgs(Args):
    pass


class PositionRisk(BaseModel):
    symbol: str
    positionSide: str
    distanceToLiquidationPct: Dec | None = None
    unrealizedProfit: Dec


class PortfolioRiskResult(Result):
    marginUsagePct: Dec
    riskLevel: str
    totalUnrealizedProfit: Dec
    positions: list[PositionRisk]
    winners: int
    losers: int
    spotHoldings: int


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
        dist = (abs(p.markPrice - p.liquidationPrice) / p.markPrice * 100).quantize(CENT) if (
            p.liquidationPrice > 0 and p.markPrice > 0) else None
        rows.append(PositionRisk(symbol=p.symbol, positionSide=p.positionSide, distanceToLiquidationPct=dist,
                                 unrealizedProfit=p.unrealizedProfit))
    return PortfolioRiskResult(
        marginUsagePct=usage, riskLevel=risk_level(usage),
        totalUnrealizedProfit=sum((p.unrealizedProfit for p in positions), Decimal(0)), positions=rows,
        winners=sum(1 for p in positions if p.unrealizedProfit > 0),
        losers=sum(1 for p in positions if p.unrealizedProfit < 0),
        spotHoldings=sum(1 for b in spot.get("balances", []) if D(b["free"]) + D(b["locked"]) != 0),
    )


class CompareArgs(Args):
    symbol: Symbol = Field(description="an asset (BTC, read as BTCUSDT) or a symbol")


class CompareResult(Result):
    symbol: str
    spotPrice: Dec
    futuresPrice: Dec
    basis: Dec
    basisPct: Dec
    premium: str
    fundingRate: Dec


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
    return CompareResult(symbol=symbol, spotPrice=s, futuresPrice=f, basis=basis, basisPct=pct,
                         premium="PREMIUM" if basis > 0 else "DISCOUNT" if basis < 0 else "FLAT",
                         fundingRate=D(mark["lastFundingRate"]))


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
    """(Left out: the notional, the cost per event, which fundingEvents and totalCost give, and the next funding
    time, which binance_futures_price gives.)"""

    fundingRate: Dec
    fundingEvents: int
    totalCost: Dec


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
    return FundingResult(fundingRate=rate, fundingEvents=events, totalCost=total)


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
    passes: bool
    checks: list[Check]
    validPrice: Dec
    validQuantity: Dec
    referencePrice: Dec


async def check_precision(args: PrecisionArgs, deps: Deps) -> PrecisionResult:
    r = await rules(deps, args.market, args.symbol)
    if args.market == "futures":
        m = await deps.exchange.call("futures_mark_price", "Reading the mark price", signed=False, symbol=args.symbol)
        ref = D(m["markPrice"])
    else:
        t = await deps.exchange.call("get_symbol_ticker", "Reading the price", signed=False, symbol=args.symbol)
        ref = D(t["price"])
    checks = r.checks(args.price, args.quantity, ref)
    return PrecisionResult(passes=all(c["passed"] for c in checks),
                           checks=[Check(**c) for c in checks], validPrice=r.round_price(args.price),
                           validQuantity=r.nearest_qty(args.quantity), referencePrice=ref)


class OptimalArgs(Args):
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    maxPriceImpact: Decimal = Field(Decimal("1.0"), ge=Decimal("0.01"), le=10, allow_inf_nan=False)


class OptimalResult(Result):
    bestPrice: Dec
    quantity: Dec
    avgPrice: Dec
    impactPct: Dec
    bookExhausted: bool = Field(description="all 1000 levels fit: more may be possible")


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
    return OptimalResult(bestPrice=best, quantity=qty,
                         avgPrice=avg, impactPct=(abs(avg - best) / best * 100).quantize(Decimal("0.0001")),
                         bookExhausted=exhausted)


TOOLS = [
    ToolDef("binance_calculate_position_size", "Risk-based size: the quantity (step-rounded) whose stop-out loses "
            "riskAmount, with notional, margin at leverage and min qty/notional checks.",
            PositionSizeArgs, PositionSizeResult, position_size),
    ToolDef("binance_analyze_portfolio_risk", "Futures margin usage % and risk level (LOW < 50 % <= MEDIUM < 80 % <= "
            "HIGH), liquidation distance per position, winners/losers, unrealized PnL, spot holdings count.",
            NoArgs, PortfolioRiskResult, portfolio_risk),
    ToolDef("binance_compare_spot_futures_price", "Spot vs perpetual price for an asset or symbol: basis (futures - "
            "spot), basis %, premium or discount, funding rate.", CompareArgs, CompareResult, compare_prices),
    ToolDef("binance_calculate_funding_cost", "Funding paid (+) or received (-) for a position held N hours at the "
            "current (or given) rate, with the number of funding events.", FundingArgs, FundingResult, funding_cost),
    ToolDef("binance_check_order_precision", "Check price and quantity against tick and step size, min/max quantity, "
            "min notional and the price band; gives the nearest valid values.",
            PrecisionArgs, PrecisionResult, check_precision),
    ToolDef("binance_get_optimal_trade_size", "Largest spot quantity (step-rounded) whose average fill stays within "
            "maxPriceImpact % of the best price, over 1000 book levels.", OptimalArgs,
            OptimalResult, optimal_trade_size),
]
