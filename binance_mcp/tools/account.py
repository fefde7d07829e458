"""Account tools (read): spot account and balances, futures margin overview and positions, diagnostics."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, D, Dec, NoArgs, Result, Symbol, ToolDef


class CommissionRates(BaseModel):
    """(Binance's buyer and seller rates, extra by side and zero on normal accounts: left out.)"""

    maker: Dec
    taker: Dec


class AccountInfoResult(Result):
    """(Binance's accountType is SPOT on this endpoint, and its updateTime is when the account last changed: left
    out, an agent cannot act on either.)"""

    canTrade: bool
    canWithdraw: bool
    canDeposit: bool
    permissions: list[str]
    commissionRates: CommissionRates
    nonzeroBalances: int


async def account_info(args: NoArgs, deps: Deps) -> AccountInfoResult:
    acc = await deps.exchange.call("get_account", "Reading the spot account")
    rates = acc.get("commissionRates") or {}
    nonzero = sum(1 for b in acc.get("balances", []) if D(b["free"]) + D(b["locked"]) != 0)
    return AccountInfoResult(
        canTrade=acc.get("canTrade", False), canWithdraw=acc.get("canWithdraw", False),
        canDeposit=acc.get("canDeposit", False), permissions=list(acc.get("permissions", [])),
        commissionRates=CommissionRates(**{k: D(rates.get(k)) for k in ("maker", "taker")}),
        nonzeroBalances=nonzero,
    )


class BalancesArgs(Args):
    asset: str | None = Field(None, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$",
                              description="only this asset, e.g. USDT")


class Balance(BaseModel):
    asset: str
    free: Dec
    locked: Dec
    total: Dec


class BalancesResult(Result):
    balances: list[Balance]


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
    return BalancesResult(balances=rows)


class FuturesAsset(BaseModel):
    """(Binance's marginBalance is walletBalance + unrealizedProfit: left out.)"""

    asset: str
    walletBalance: Dec
    unrealizedProfit: Dec
    availableBalance: Dec


class PortfolioResult(Result):
    totalWalletBalance: Dec
    totalUnrealizedProfit: Dec
    totalMarginBalance: Dec
    totalInitialMargin: Dec
    totalMaintMargin: Dec
    availableBalance: Dec
    maxWithdrawAmount: Dec
    marginRatioPct: Dec
    assets: list[FuturesAsset]


async def portfolio_account(args: NoArgs, deps: Deps) -> PortfolioResult:
    acc = await deps.exchange.call("futures_account", "Reading the futures account")
    margin_balance, maint = D(acc.get("totalMarginBalance")), D(acc.get("totalMaintMargin"))
    assets = [
        FuturesAsset(asset=a["asset"], walletBalance=D(a.get("walletBalance")),
                     unrealizedProfit=D(a.get("unrealizedProfit")), availableBalance=D(a.get("availableBalance")))
        for a in acc.get("assets", []) if D(a.get("walletBalance")) != 0
    ]
    return PortfolioResult(
        totalWalletBalance=D(acc.get("totalWalletBalance")), totalUnrealizedProfit=D(acc.get("totalUnrealizedProfit")),
        totalMarginBalance=margin_balance, totalInitialMargin=D(acc.get("totalInitialMargin")), totalMaintMargin=maint,
        availableBalance=D(acc.get("availableBalance")), maxWithdrawAmount=D(acc.get("maxWithdrawAmount")),
        marginRatioPct=(maint / margin_balance * 100).quantize(Decimal("0.01")) if margin_balance > 0 else Decimal(0),
        assets=assets,
    )


class PositionsArgs(Args):
    symbol: Symbol | None = None


class Position(BaseModel):
    symbol: str
    positionSide: str
    positionAmt: Dec
    entryPrice: Dec
    markPrice: Dec
    unrealizedProfit: Dec
    liquidationPrice: Dec
    leverage: int | None
    marginType: str | None
    notional: Dec


class PositionsResult(Result):
    """positionAmt and notional are signed: + long, - short (Binance's side of it; no separate side field)."""

    positions: list[Position]


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
            symbol=r["symbol"], positionSide=r.get("positionSide", "BOTH"),
            positionAmt=amt, entryPrice=D(r.get("entryPrice")), markPrice=D(r.get("markPrice")),
            unrealizedProfit=D(r.get("unRealizedProfit")), liquidationPrice=D(r.get("liquidationPrice")),
            leverage=int(c["leverage"]) if c.get("leverage") is not None else None,
            marginType=_margin_type(c.get("marginType")),
            notional=D(r.get("notional")),
        ))
    return out


def _margin_type(value: object) -> str | None:
    if not value:
        return None
    text = str(value).upper()
    return "CROSSED" if text.startswith("CROSS") else text


async def futures_positions(args: PositionsArgs, deps: Deps) -> PositionsResult:
    rows = await fetch_positions(deps, args.symbol)
    return PositionsResult(positions=rows)


class StatusResult(Result):
    connected: bool
    exchange: str
    host: str
    serverTime: int | None
    clockDriftMs: int | None = Field(description="server - local")
    error: str | None
    feed: str | None


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
    return StatusResult(connected=connected, exchange=deps.settings.mode, host=ex.host, serverTime=server_time,
                        clockDriftMs=drift, error=error, feed=getattr(ex, "feed", None))


TOOLS = [
    ToolDef("binance_account_info", "Spot account: trading flags, permissions, maker/taker commission, number of "
            "assets held.", NoArgs, AccountInfoResult, account_info),
    ToolDef("binance_spot_balances", "Spot balances of each asset held: free, locked by open orders, total.",
            BalancesArgs, BalancesResult, spot_balances),
    ToolDef("binance_portfolio_account", "USD-M futures margin overview: wallet, unrealized PnL, margin used and "
            "ratio, available balance, max withdraw; per asset.", NoArgs, PortfolioResult, portfolio_account),
    ToolDef("binance_futures_positions", "Open USD-M futures positions, one symbol or all: signed size and notional "
            "(+ long), entry, mark, unrealized PnL, liquidation price, leverage, margin type.",
            PositionsArgs, PositionsResult, futures_positions),
    ToolDef("binance_account_status", "Diagnostics: is the exchange reachable, its server time, our clock drift, "
            "exchange (paper/testnet/live/custom), host.", NoArgs, StatusResult, account_status),
]
