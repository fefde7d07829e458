"""The policy file format (v1), as pydantic models: shape only. Consistency checks live in loader.py."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

Action = Literal["allow", "deny", "require_approval"]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]

_UNITS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600,
          "day": 86400, "d": 86400}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(Strict):
    """``{max: 10, window: 60}`` (calls per window seconds), or the string ``"10/minute"``."""

    max: StrictInt = Field(gt=0)
    window: StrictInt = Field(gt=0, le=86400, description="seconds")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-zA-Z]+)\s*", value)
            if not m or m.group(3).lower() not in _UNITS:
                raise ValueError("a rate limit is {max: N, window: SECONDS} or a string like '10/minute'")
            n = int(m.group(2) or 1)
            return {"max": int(m.group(1)), "window": n * _UNITS[m.group(3).lower()]}
        return value


class ApprovalAbove(Strict):
    notional_usd: NonNegative
    # who may approve: "console": only the console (or the CLI as the server's user), whatever the transport;
    # unset or "any": any channel the transport trusts (over stdio a form in the client's UI counts)
    channel: Literal["any", "console"] | None = None


def _upper_list(value: Any) -> Any:
    if isinstance(value, list):
        return [v.strip().upper() if isinstance(v, str) else v for v in value]
    return value


UpperList = Annotated[list[str], BeforeValidator(_upper_list)]


class Limits(Strict):
    symbols: UpperList | None = Field(None, description="allow-list of symbols, shell globs, e.g. ETH*")
    deny_symbols: UpperList | None = None
    sides: list[Literal["BUY", "SELL"]] | None = None
    order_types: UpperList | None = None
    max_notional_usd: NonNegative | None = None
    daily_notional_usd: NonNegative | None = None
    max_price_deviation_pct: NonNegative | None = None
    max_open_orders: StrictInt | None = Field(None, ge=0)
    reduce_only: StrictBool | None = None
    max_leverage: StrictInt | None = Field(None, ge=1, le=125)
    max_position_notional_usd: NonNegative | None = None


class Rule(Strict):
    action: Action = "allow"
    reason: str | None = Field(None, max_length=500)
    rate_limit: RateLimit | None = None
    approval_above: ApprovalAbove | None = None
    limits: Limits | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"action": value}
        if value is None:
            return {}
        return value


class LossStreak(Strict):
    """``{losses: 3, window: 3600, cooldown: 1800}``: that many losing closes within ``window`` seconds pause new
    exposure for ``cooldown`` seconds after the last of them."""

    losses: StrictInt = Field(ge=1, le=1000)
    window: StrictInt = Field(gt=0, le=86400, description="seconds")
    cooldown: StrictInt = Field(gt=0, le=86400, description="seconds")


class Protections(Strict):
    """Account-level risk checks (POLICY.md "Protections"): they stop calls that add exposure, never cancels or
    reduce-only orders."""

    max_daily_loss_usd: Positive | None = Field(None, description="fall of equity since the UTC day's first sample")
    max_drawdown_pct: Annotated[Decimal, Field(gt=0, lt=100, allow_inf_nan=False)] | None = Field(
        None, description="fall of equity from the UTC day's highest sample, in percent")
    loss_streak: LossStreak | None = None
    max_gross_exposure_usd: NonNegative | None = Field(
        None, description="sum of |position notional| at mark and open-order notional, spot and futures")
    cooldown_after_close: StrictInt | None = Field(None, gt=0, le=86400, description="seconds before a symbol "
                                                   "just closed may be reopened")

    @property
    def equity(self) -> bool:
        """Do these protections need the account's equity?"""
        return self.max_daily_loss_usd is not None or self.max_drawdown_pct is not None

    @property
    def any(self) -> bool:
        return self.equity or self.loss_streak is not None or self.max_gross_exposure_usd is not None or \
            self.cooldown_after_close is not None


class DeadManSwitch(Strict):
    """``account.dead_man_switch``: keep Binance's countdownCancelAll armed on every futures symbol with open orders
    while the server runs (policy/deadman.py)."""

    seconds: StrictInt = Field(ge=30, le=86400, description="countdown in seconds, renewed every third of it; if the "
                               "server dies, Binance cancels every open order on those symbols, a human's too")


class Account(Strict):
    daily_notional_usd: NonNegative | None = None
    rate_limit: RateLimit | None = None
    max_leverage: StrictInt | None = Field(None, ge=1, le=125, description="binds binance_futures_change_leverage "
                                           "and every futures order that adds exposure")
    kill_switch_file: str | None = Field(None, description="absolute path; ~ and $VARIABLES are expanded; anything "
                                         "at it stops every call that adds exposure")
    kill_switch_scope: Literal["exposure", "all"] = Field(
        "exposure", description="exposure: the kill switch stops calls that add exposure; all: every trading "
        "and cancelling call")
    dead_man_switch: DeadManSwitch | None = None
    protections: Protections = Field(default_factory=Protections)

    @field_validator("protections", mode="before")
    @classmethod
    def _no_protections(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("kill_switch_file")
    @classmethod
    def _kill_switch_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import os

        missing = [name for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value) if name not in os.environ]
        if missing:
            raise ValueError(f"the environment variable {missing[0]} in kill_switch_file is not set; set it or "
                             "write the path out")
        path = os.path.expanduser(os.path.expandvars(value))
        if not os.path.isabs(path):
            raise ValueError(f"kill_switch_file must be an absolute path (or start with ~), not {value!r}: a "
                             "relative path would depend on the directory the server happens to start in")
        return path


class Classes(Strict):
    read: Rule | None = None
    financial: Rule | None = None
    destructive: Rule | None = None


class Policy(Strict):
    version: Literal[1] = 1
    default: Literal["allow", "deny"] = "deny"
    mode: Literal["enforce", "shadow"] = "enforce"
    classes: Classes = Field(default_factory=Classes)
    tools: dict[str, Rule] = Field(default_factory=dict)
    account: Account = Field(default_factory=Account)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if value in ("1", 1):
            return 1
        raise ValueError("version must be 1 (or \"1\", as PolicyLayer writes it)")

    @field_validator("classes", "account", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        return {} if value is None else value
