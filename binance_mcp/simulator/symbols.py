"""The markets the simulator lists, with Binance's real-world filters (values as on Binance in 2025-2026)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D = Decimal


@dataclass(frozen=True)
class Bracket:
    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True)
class SpotSymbol:
    symbol: str
    base: str
    quote: str
    start_price: Decimal
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal = D("9000000")
    multiplier_up: Decimal = D("5")
    multiplier_down: Decimal = D("0.2")
    max_num_orders: int = 200
    max_num_algo_orders: int = 5
    base_precision: int = 8
    quote_precision: int = 8
    volatility: float = 0.0004  # per feed step (log-return standard deviation)


@dataclass(frozen=True)
class FuturesSymbol:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int
    brackets: tuple[Bracket, ...] = field(default=())
    multiplier_up: Decimal = D("1.05")
    multiplier_down: Decimal = D("0.95")
    max_num_orders: int = 200
    max_num_algo_orders: int = 10
    basis: Decimal = D("0.0003")  # futures last = spot x (1 + basis)

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].initial_leverage


def _brackets(rows: list[tuple[int, int, int]]) -> tuple[Bracket, ...]:
    """Build brackets from (initialLeverage, notionalCap, maintMarginRatio in 1/10000) rows, computing cum."""
    out: list[Bracket] = []
    floor = D(0)
    cum = D(0)
    prev_mmr = D(0)
    for i, (lev, cap, mmr_bp) in enumerate(rows, start=1):
        mmr = D(mmr_bp) / D(10000)
        cum = cum + floor * (mmr - prev_mmr)
        out.append(Bracket(i, lev, floor, D(cap), mmr, cum))
        floor = D(cap)
        prev_mmr = mmr
    return tuple(out)


_BTC_BRACKETS = _brackets(
    [
        (125, 50_000, 40),
        (100, 600_000, 50),
        (75, 3_000_000, 65),
        (50, 12_000_000, 100),
        (25, 70_000_000, 200),
        (20, 100_000_000, 250),
        (10, 230_000_000, 500),
        (5, 480_000_000, 1000),
        (4, 600_000_000, 1250),
        (3, 800_000_000, 1500),
        (2, 1_200_000_000, 2500),
        (1, 1_800_000_000, 5000),
    ]
)
_ETH_BRACKETS = _brackets(
    [
        (125, 50_000, 40),
        (100, 500_000, 50),
        (75, 2_000_000, 65),
        (50, 10_000_000, 100),
        (25, 50_000_000, 200),
        (20, 80_000_000, 250),
        (10, 150_000_000, 500),
        (5, 300_000_000, 1000),
        (4, 400_000_000, 1250),
        (3, 500_000_000, 1500),
        (2, 600_000_000, 2500),
        (1, 800_000_000, 5000),
    ]
)
_SOL_BRACKETS = _brackets(
    [
        (75, 10_000, 65),
        (50, 100_000, 100),
        (25, 500_000, 200),
        (20, 1_000_000, 250),
        (10, 5_000_000, 500),
        (5, 10_000_000, 1000),
        (4, 15_000_000, 1250),
        (3, 25_000_000, 1500),
        (2, 50_000_000, 2500),
        (1, 100_000_000, 5000),
    ]
)

SPOT_SYMBOLS: dict[str, SpotSymbol] = {
    s.symbol: s
    for s in [
        SpotSymbol("BTCUSDT", "BTC", "USDT", D("97000.00"), D("0.01"), D("0.00001"), D("0.00001"), D("9000"),
                   D("83.76"), D("5")),
        SpotSymbol("ETHUSDT", "ETH", "USDT", D("3500.00"), D("0.01"), D("0.0001"), D("0.0001"), D("9000"),
                   D("1800"), D("5")),
        SpotSymbol("BNBUSDT", "BNB", "USDT", D("650.00"), D("0.01"), D("0.001"), D("0.001"), D("9000"),
                   D("1700"), D("5")),
        SpotSymbol("SOLUSDT", "SOL", "USDT", D("180.00"), D("0.01"), D("0.001"), D("0.001"), D("9000"),
                   D("9000"), D("5")),
        SpotSymbol("XRPUSDT", "XRP", "USDT", D("2.3000"), D("0.0001"), D("0.1"), D("0.1"), D("9222449"),
                   D("1500000"), D("5")),
        SpotSymbol("ETHBTC", "ETH", "BTC", D("0.03600"), D("0.00001"), D("0.0001"), D("0.0001"), D("100000"),
                   D("2000"), D("0.0001"), max_notional=D("9000000")),
    ]
}

FUTURES_SYMBOLS: dict[str, FuturesSymbol] = {
    s.symbol: s
    for s in [
        FuturesSymbol("BTCUSDT", "BTC", "USDT", D("0.10"), D("0.001"), D("0.001"), D("1000"), D("120"), D("100"),
                      2, 3, _BTC_BRACKETS),
        FuturesSymbol("ETHUSDT", "ETH", "USDT", D("0.01"), D("0.001"), D("0.001"), D("10000"), D("2000"), D("20"),
                      2, 3, _ETH_BRACKETS),
        FuturesSymbol("SOLUSDT", "SOL", "USDT", D("0.0100"), D("1"), D("1"), D("1000000"), D("5000"), D("5"),
                      4, 0, _SOL_BRACKETS),
    ]
}

def decimals_of(value: Decimal) -> int:
    """Number of decimal places a step such as Decimal("0.001") allows."""
    exp = value.normalize().as_tuple().exponent
    return max(0, -int(exp))  # type: ignore[arg-type]
