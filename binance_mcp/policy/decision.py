"""What the decision engine reads and returns: the call, the facts gathered for it, the counters from the state
store (and the keys they are kept under), and the decision. Plain values (engine.py re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from binance_mcp.catalog import BY_NAME

ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"


@dataclass(frozen=True)
class Call:
    """A tool call as the guard saw it: the tool and its validated, normalised arguments."""

    tool: str
    args: dict[str, Any]
    agent: str | None = None  # the agent that called, on the HTTP service (None over stdio)

    @property
    def risk(self) -> str:
        return BY_NAME[self.tool].risk if self.tool in BY_NAME else "read"

    def get(self, name: str) -> Any:
        return self.args.get(name)


@dataclass
class Facts:
    """What the guard fetched for this decision (only what the policy needs)."""

    notional_usd: Decimal | None = None
    quantity: Decimal | None = None
    reference_price: Decimal | None = None
    price_deviation_pct: Decimal | None = None
    open_orders: int | None = None
    leverage: int | None = None
    position_after_usd: Decimal | None = None
    reduces_position: bool | None = None
    # What the exchange said, before orders in flight are added (see facts.with_pending):
    exchange_open_orders: int | None = None
    position: Decimal | None = None  # signed amount of the position leg the order acts on
    mark_price: Decimal | None = None
    usd_rate: Decimal | None = None  # USD per unit of the symbol's quote asset
    in_flight: int | None = None  # orders in flight (or answered after these facts were read) that were counted
    open_adding: int | None = None  # open orders on the exchange counted in the worst-case position
    adds_exposure: bool | None = None  # see POLICY.md "What adds exposure"; None: not known (treated as yes)
    open_legs: tuple = ()  # open orders on the symbol (facts.OpenLeg), for the worst case; not audited
    # Protections (protections.py): the account's equity now and today's first and highest samples (USD),
    equity_usd: Decimal | None = None
    equity_start_usd: Decimal | None = None
    equity_peak_usd: Decimal | None = None
    losing_closes: int | None = None  # losing closes within loss_streak.window
    loss_cooldown_s: float | None = None  # seconds of loss_streak cooldown left (0: none)
    close_cooldown_s: float | None = None  # seconds before the symbol, just closed, may be reopened (0: none)
    gross_exposure_usd: Decimal | None = None  # on the exchange when read (orders in flight not yet added)
    gross_after_usd: Decimal | None = None  # with orders in flight and this order (facts.with_pending)

    def as_dict(self) -> dict[str, str | int | bool]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.__dict__.items()
                if v is not None and k != "open_legs"}


@dataclass(frozen=True)
class Cap:
    """A daily notional cap that a call counts against: its key in the state store, its rule path, its limit."""

    key: str
    rule: str
    limit: Decimal


def tool_key(tool: str, agent: str | None = None) -> str:
    """The state-store key of a tool rule's daily sum and rate limit: per agent on the HTTP service (a tool rule
    counts what that agent did), the bare tool over stdio. The account's key ("account") is never per agent."""
    return f"tool:{tool}" if agent is None else f"agent:{agent}:tool:{tool}"


def rate_slot(key: str, rl: Any) -> str:
    """Where a rate limit (model.RateLimit) finds its wait in Counters.rate_wait: two policies (the service's and an
    agent's) may limit the same key differently, and each must see its own wait."""
    return f"{key}#{rl.max}/{rl.window}"


@dataclass
class Counters:
    """State the decision reads: daily sums used today (UTC) and seconds until a rate limit frees a slot."""

    daily_used: dict[str, Decimal] = field(default_factory=dict)  # "tool:<name>" / "account"
    # seconds until a rate limit frees (0 = free), by rate_slot(key, limit), or by the bare key
    # ("tool:<name>", "account") when a key has one limit
    rate_wait: dict[str, float] = field(default_factory=dict)
    kill_switch: bool | str = False  # a str: the kill flag in the state store is on, and why (who, when)
    approved: str | None = None  # how a human approved this very call (every limit is still decided again)
    tripped: dict[str, dict] = field(default_factory=dict)  # protections tripped today (state store), by name


@dataclass(frozen=True)
class Decision:
    effect: str
    code: str
    rule: str
    reason: str
    facts: dict = field(default_factory=dict)
    steps: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW

    def as_dict(self) -> dict:
        return {"effect": self.effect, "code": self.code, "rule": self.rule, "reason": self.reason,
                "facts": self.facts}
