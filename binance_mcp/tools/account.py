"""Account tools (read): spot account and balances, futures margin overview and positions, diagnostics."""

from __future__ import annotations

import time
from decimal import Decimal

from pydantic import BaseModel, Field

from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, D, Dec, NoArgs, Result, Symbol, ToolDef, iso


class CommissionRates(BaseModel):
    maker: Dec
    taker: Dec
    buyer: Dec
    seller: Dec


class AccountInfoResult(Result):
    account_type: str
    can_trade: bool
    can_withdraw: bool
    can_deposit: bool
    permissions: list[str]
    commission_rates: CommissionRates
    update_time: int
    update_time_iso: str | None
    nonzero_balances: int


async def account_info(args: NoArgs, deps: Deps) -> AccountInfoResult:
    acc = await deps.exchange.call("get_account", "Reading the spot account")
    rates = acc.get("commissionRates") or {}
    nonzero = sum(1 for b in acc.get("balances", []) if D(b["free"]) + D(b["locked"]) != 0)
    return AccountInfoResult(
        account_type=acc.get("accountType", "SPOT"), can_trade=acc.get("canTrade", False),
        can_withdraw=acc.get("canWithdraw", False), can_deposit=acc.get("canDeposit", False),
        permissions=list(acc.get("permissions", [])),
        commission_rates=CommissionRates(**{k: D(rates.get(k)) for k in ("maker", "taker", "buyer", "seller")}),
        update_time=int(acc.get("updateTime", 0)), update_time_iso=iso(acc.get("updateTime")),
        nonzero_balances=nonzero,
    )


class BalancesArgs(Args):
    asset: str | None = Field(None, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$",
                              description="only this asset, e.g. USDT")


class Balance(BaseModel):
    asset: str
    free: Dec
    locked: Dec = Field(description="held by open orders")
    total: Dec


class BalancesResult(Result):
    balances: list[Balance]
    count: int


async def spot_balances(args: BalancesArgs, deps: Deps) -> BalancesResult:
    acc = await deps.exchange.call("get_account", "Reading spot balances", omitZeroBalances="true")
    want = args.asset.upper() if args.asset else None
    rows = []
    for b in acc.get("balances", []):
        free, locked = D(b["free"]), D(b["locked"])
        if free + locked == 0 or (want and b["asset"] != want):
            continue
        rows.append(Balance(asset=b["asset"], free=free, locked=locked, total=free + locked))
    rows.sort(key=lambda r: r.asset)
    return BalancesResult(balances=rows, count=len(rows))


class FuturesAsset(BaseModel):
    asset: str
    wallet: Dec
    unrealized_pnl: Dec
    margin_balance: Dec
    available: Dec
    max_withdraw: Dec


class PortfolioResult(Result):
    wallet: Dec
    unrealized_pnl: Dec
    margin_balance: Dec
    initial_margin: Dec
    maint_margin: Dec
    position_initial_margin: Dec
    open_order_initial_margin: Dec
    available: Dec
    max_withdraw: Dec
    margin_ratio_pct: Dec = Field(description="maintenance margin / margin balance x 100")
    can_trade: bool
    assets: list[FuturesAsset]


async def portfolio_account(args: NoArgs, deps: Deps) -> PortfolioResult:
    acc = await deps.exchange.call("futures_account", "Reading the futures account")
    margin_balance, maint = D(acc.get("totalMarginBalance")), D(acc.get("totalMaintMargin"))
    assets = [
        FuturesAsset(asset=a["asset"], wallet=D(a.get("walletBalance")), unrealized_pnl=D(a.get("unrealizedProfit")),
                     margin_balance=D(a.get("marginBalance")), available=D(a.get("availableBalance")),
                     max_withdraw=D(a.get("maxWithdrawAmount")))
        for a in acc.get("assets", []) if D(a.get("walletBalance")) != 0
    ]
    return PortfolioResult(
        wallet=D(acc.get("totalWalletBalance")), unrealized_pnl=D(acc.get("totalUnrealizedProfit")),
        margin_balance=margin_balance, initial_margin=D(acc.get("totalInitialMargin")), maint_margin=maint,
        position_initial_margin=D(acc.get("totalPositionInitialMargin")),
        open_order_initial_margin=D(acc.get("totalOpenOrderInitialMargin")),
        available=D(acc.get("availableBalance")), max_withdraw=D(acc.get("maxWithdrawAmount")),
        margin_ratio_pct=(maint / margin_balance * 100).quantize(Decimal("0.01")) if margin_balance > 0 else Decimal(0),
        can_trade=bool(acc.get("canTrade", False)), assets=assets,
    )


class PositionsArgs(Args):
    symbol: Symbol | None = None


class Position(BaseModel):
    symbol: str
    side: str = Field(description="LONG or SHORT")
    position_side: str = Field(description="BOTH in one-way mode, LONG/SHORT in hedge mode")
    size: Dec = Field(description="absolute base quantity")
    entry_price: Dec
    mark_price: Dec
    unrealized_pnl: Dec
    liquidation_price: Dec
    leverage: int | None
    margin_type: str | None = Field(description="CROSSED or ISOLATED")
    notional: Dec


class PositionsResult(Result):
    positions: list[Position]
    count: int


async def fetch_positions(deps: Deps, symbol: str | None) -> list[Position]:
    rows = await deps.exchange.call("futures_position_information", "Reading futures positions", symbol=symbol)
    rows = [r for r in rows if D(r.get("positionAmt")) != 0]
    config: dict[str, dict] = {}
    if rows:
        cfg = await deps.exchange.call("futures_symbol_config", "Reading futures leverage settings", symbol=symbol)
        config = {c["symbol"]: c for c in (cfg if isinstance(cfg, list) else [cfg])}
    out = []
    for r in rows:
        amt = D(r["positionAmt"])
        c = config.get(r["symbol"], {})
        out.append(Position(
            symbol=r["symbol"], side="LONG" if amt > 0 else "SHORT", position_side=r.get("positionSide", "BOTH"),
            size=abs(amt), entry_price=D(r.get("entryPrice")), mark_price=D(r.get("markPrice")),
            unrealized_pnl=D(r.get("unRealizedProfit")), liquidation_price=D(r.get("liquidationPrice")),
            leverage=int(c["leverage"]) if c.get("leverage") is not None else None,
            margin_type=_margin_type(c.get("marginType")),
            notional=abs(D(r.get("notional"))),
        ))
    return out


def _margin_type(value: object) -> str | None:
    if not value:
        return None
    text = str(value).upper()
    return "CROSSED" if text.startswith("CROSS") else text


async def futures_positions(args: PositionsArgs, deps: Deps) -> PositionsResult:
    rows = await fetch_positions(deps, args.symbol)
    return PositionsResult(positions=rows, count=len(rows))


class StatusResult(Result):
    connected: bool
    exchange: str = Field(description="paper, testnet, live or custom")
    host: str
    server_time: int | None
    server_time_iso: str | None
    local_time: int
    local_time_iso: str | None
    clock_drift_ms: int | None = Field(description="server time minus local time")
    error: str | None


async def account_status(args: NoArgs, deps: Deps) -> StatusResult:
    ex = deps.exchange
    error = None
    server_time = drift = None
    connected = False
    try:  # the server time answers both questions: reachable, and by how much the clocks differ
        drift = await ex.sync_time()
        server_time = ex.connectivity.server_time
        connected = True
    except Exception as exc:  # noqa: BLE001 - diagnostics report the failure instead of raising
        error = str(getattr(exc, "message", exc))
    local = int(time.time() * 1000)
    return StatusResult(connected=connected, exchange=deps.settings.mode, host=ex.host, server_time=server_time,
                        server_time_iso=iso(server_time), local_time=local, local_time_iso=iso(local),
                        clock_drift_ms=drift, error=error)


TOOLS = [
    ToolDef("binance_account_info", "Spot account summary: permissions, trading flags, commission rates and how "
            "many assets have a balance.", NoArgs, AccountInfoResult, account_info),
    ToolDef("binance_spot_balances", "Spot balances: free, locked (held by open orders) and total per asset, zero "
            "balances removed, full precision, sorted by asset.", BalancesArgs, BalancesResult, spot_balances),
    ToolDef("binance_portfolio_account", "USD-M futures margin overview: wallet, unrealized PnL, margin used, "
            "available balance, max withdraw, per-asset rows.", NoArgs, PortfolioResult, portfolio_account),
    ToolDef("binance_futures_positions", "Open USD-M futures positions only: side, size, entry, mark, unrealized PnL, "
            "liquidation price, leverage, margin type, notional.", PositionsArgs, PositionsResult, futures_positions),
    ToolDef("binance_account_status", "Diagnostics: is the exchange reachable, server vs local time and clock drift, "
            "which exchange (paper/testnet/live/custom) and its host.", NoArgs, StatusResult, account_status),
]
