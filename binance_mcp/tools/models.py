"""What every tool is made of: the ``ToolDef``, the input and result model bases, and the shared field types.

A tool is a ``ToolDef``: its catalogue entry, a description, an input model (Binance's own argument
names, bounds and enums), a result model, and a thin async handler ``(args, deps) -> result``. The
server wraps every handler with the guard in one place (``server.py``) and registers a ``BinanceTool``
(``tool.py``) for each. This module does not import FastMCP: the command-line tools that only need the
models (policy, approvals, audit) start without it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from binance_mcp.catalog import BY_NAME, ToolSpec
from binance_mcp.tools.numbers import kinds_of, plain_number

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def normalize_symbol(value: object) -> object:
    """Upper-case and check a symbol. Non-ASCII is rejected before upper-casing: 'ſ'.upper() is 'S', and a
    look-alike must never turn into a real symbol."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii():
            raise ValueError("a symbol is ASCII letters and digits only, such as BTCUSDT")
        value = value.upper()
        if not SYMBOL_RE.match(value):
            raise ValueError("a symbol is 2-20 letters or digits, such as BTCUSDT")
    return value


def dec_str(value: Decimal) -> str:
    """A plain decimal string (never exponent notation) as Binance expects."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# No description: "symbol" on a Binance tool says it, and a malformed one is refused with an example (BTCUSDT).
Symbol = Annotated[str, BeforeValidator(normalize_symbol)]
# Decimal in results: a string on the wire, never a float.
Dec = Annotated[Decimal, PlainSerializer(dec_str, return_type=str, when_used="always")]
# At most 8 decimals (Binance's finest tick or step) and 30 digits: anything else is an input error.
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=30, decimal_places=8)]
# The schema leaves out the bounds (0 and the year 5138: sanity checks an agent need not read; still enforced).
TimeMs = Annotated[int, Field(ge=0, le=10**14), WithJsonSchema({"type": "integer", "description": "epoch ms"})]
Limit1000 = Annotated[int, Field(ge=1, le=1000)]


def header(*names: str) -> Any:
    """The column header of a rows result (candles, trades): always these names, so the schema says them as a
    ``const`` and each row is a fixed-length array (a ``tuple[...]`` of the same length)."""
    return Annotated[tuple[str, ...], WithJsonSchema({"const": list(names)})]


def client_id(pattern: str) -> Any:
    """A client order id: checked against Binance's pattern; the schema says only "string" (an agent rarely sets
    one, and a wrong one is refused with the pattern)."""
    return Annotated[str, Field(pattern=pattern), WithJsonSchema({"type": "string"})]


_KINDS: dict[tuple[type, str], frozenset] = {}


class Args(BaseModel):
    """Base of every input model: unknown arguments are errors, strings are stripped, numbers are plain."""

    # defer_build: the validators are built on a tool's first call, not at start-up (see schemas.json).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        key = (cls, info.field_name or "")
        kinds = _KINDS.get(key)
        if kinds is None:
            field = cls.model_fields.get(info.field_name or "")
            kinds = _KINDS[key] = kinds_of(field.annotation) if field is not None else frozenset()
        return plain_number(value, kinds)


class NoArgs(Args):
    pass


class Result(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings", defer_build=True)

    @classmethod
    def pick(cls, fields: dict, **extra: Any) -> Any:
        """This result from a dict of more fields than it has (one mapping serves a tool's full and lean forms)."""
        return cls(**{k: v for k, v in fields.items() if k in cls.model_fields}, **extra)


def iso(ms: int | None) -> str | None:
    if ms is None or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def D(value: object) -> Decimal:
    """Decimal from an exchange string; '' and None read as 0."""
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


Handler = Callable[[Any, Any], Awaitable[BaseModel]]


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    args: type[Args]
    result: type[Result]
    handler: Handler

    @property
    def spec(self) -> ToolSpec:
        return BY_NAME[self.name]
