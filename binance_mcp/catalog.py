"""The 35 tools: name, family and risk class. Everything else (annotations, the guard, the default
policy, the docs) derives from this one list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # imported when needed: the policy and approvals commands do not load the MCP SDK
    from mcp_types import ToolAnnotations

Risk = Literal["read", "financial", "destructive"]
Family = Literal["account", "spot", "futures", "market", "analysis", "policy"]


@dataclass(frozen=True)
class ToolSpec:
    number: int
    name: str
    family: Family
    risk: Risk
    title: str
    # Capabilities the policy engine and loader ask about (one place, not name lists in several modules):
    market: Literal["spot", "futures"] | None = None  # the market an order or position tool acts on
    order: bool = False  # places an order from its own arguments (symbol, side, type, quantity, prices)
    notional: bool = False  # has an order notional in USD: notional caps, daily sums, approval_above
    reduces: bool = False  # only ever reduces a position (closes it with reduce-only orders)

    @property
    def annotations(self) -> ToolAnnotations:
        return annotations_for(self.risk, self.title)


def annotations_for(risk: Risk, title: str) -> ToolAnnotations:
    """MCP hints from the risk class. openWorldHint is left at the spec's default (true: every tool reaches the
    exchange); the rest are said even where they equal a default, so a client need not know the defaults."""
    from mcp_types import ToolAnnotations

    if risk == "read":
        return ToolAnnotations(read_only_hint=True)
    return ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=risk == "destructive")


_S = ToolSpec
CATALOG: tuple[ToolSpec, ...] = (
    _S(1, "binance_account_info", "account", "read", "Spot account"),
    _S(2, "binance_spot_balances", "account", "read", "Spot balances"),
    _S(3, "binance_spot_place_order", "spot", "financial", "Place a spot order", "spot", order=True, notional=True),
    _S(4, "binance_spot_cancel_order", "spot", "destructive", "Cancel a spot order"),
    _S(5, "binance_spot_cancel_all_orders", "spot", "destructive", "Cancel all spot orders"),
    _S(6, "binance_spot_open_orders", "spot", "read", "Open spot orders"),
    _S(7, "binance_spot_order_history", "spot", "read", "Spot order history"),
    _S(8, "binance_spot_trade_history", "spot", "read", "Spot trade history"),
    _S(9, "binance_portfolio_account", "account", "read", "Futures account"),
    _S(10, "binance_futures_positions", "account", "read", "Futures positions"),
    _S(11, "binance_futures_place_order", "futures", "financial", "Place a futures order", "futures", order=True,
       notional=True),
    _S(12, "binance_futures_cancel_order", "futures", "destructive", "Cancel a futures order"),
    _S(13, "binance_futures_cancel_all_orders", "futures", "destructive", "Cancel all futures orders"),
    _S(14, "binance_futures_open_orders", "futures", "read", "Open futures orders"),
    _S(15, "binance_futures_order_history", "futures", "read", "Futures order history"),
    _S(16, "binance_futures_trade_history", "futures", "read", "Futures trade history"),
    _S(17, "binance_futures_change_leverage", "futures", "financial", "Change futures leverage"),
    _S(18, "binance_futures_set_margin_type", "futures", "financial", "Set futures margin type"),
    _S(19, "binance_futures_close_position", "futures", "financial", "Close a futures position", "futures",
       notional=True, reduces=True),
    _S(20, "binance_spot_price", "market", "read", "Spot price"),
    _S(21, "binance_futures_price", "market", "read", "Futures prices"),
    _S(22, "binance_spot_orderbook", "market", "read", "Spot order book"),
    _S(23, "binance_spot_klines", "market", "read", "Spot candles"),
    _S(24, "binance_futures_klines", "market", "read", "Futures candles"),
    _S(25, "binance_spot_24hr_ticker", "market", "read", "Spot 24h statistics"),
    _S(26, "binance_futures_24hr_ticker", "market", "read", "Futures 24h statistics"),
    _S(27, "binance_exchange_info", "market", "read", "Trading rules"),
    _S(28, "binance_server_time", "market", "read", "Server time"),
    _S(29, "binance_account_status", "account", "read", "Diagnostics"),
    _S(30, "binance_calculate_position_size", "analysis", "read", "Position size"),
    _S(31, "binance_analyze_portfolio_risk", "analysis", "read", "Portfolio risk"),
    _S(32, "binance_compare_spot_futures_price", "analysis", "read", "Spot vs futures basis"),
    _S(33, "binance_calculate_funding_cost", "analysis", "read", "Funding cost"),
    _S(34, "binance_check_order_precision", "analysis", "read", "Check order precision"),
    _S(35, "binance_get_optimal_trade_size", "analysis", "read", "Optimal trade size"),
)

# The 36th tool: the server's own, read-only view of the policy (not a Binance tool).
POLICY_STATUS = ToolSpec(36, "binance_policy_status", "policy", "read", "Policy status")
ALL_TOOLS: tuple[ToolSpec, ...] = (*CATALOG, POLICY_STATUS)

BY_NAME: dict[str, ToolSpec] = {t.name: t for t in ALL_TOOLS}
TOOL_NAMES: tuple[str, ...] = tuple(t.name for t in CATALOG)
RISK_CLASSES: tuple[Risk, ...] = ("read", "financial", "destructive")
ORDER_TOOLS: frozenset[str] = frozenset(t.name for t in ALL_TOOLS if t.order)
NOTIONAL_TOOLS: frozenset[str] = frozenset(t.name for t in ALL_TOOLS if t.notional)
FUTURES_ORDER_TOOLS: frozenset[str] = frozenset(t.name for t in ALL_TOOLS if t.order and t.market == "futures")


def spec(name: str) -> ToolSpec:
    return BY_NAME[name]
