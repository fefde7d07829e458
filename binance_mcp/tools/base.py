"""The tool framework: input and result models, the shared types, and the FastMCP ``Tool`` that runs them.

A tool is a ``ToolDef``: its catalogue entry, a description, an input model (Binance's own argument
names, bounds and enums), a result model, and a thin async handler ``(args, deps) -> result``. The
server wraps every handler with the guard in one place (``server.py``) and registers a
``BinanceTool`` for each; the tool validates and normalises the arguments *before* the guard sees them,
so bad input never reaches the policy or the exchange.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from fastmcp.exceptions import FastMCPError, ToolError
from fastmcp.tools import Tool, ToolResult
from mcp.shared.exceptions import MCPError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from binance_mcp.catalog import BY_NAME, ToolSpec
from binance_mcp.errors import BinanceMcpError, InputError, InternalError

log = logging.getLogger("binance_mcp.tools")

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


Symbol = Annotated[str, BeforeValidator(normalize_symbol), Field(description="e.g. BTCUSDT (upper-cased)")]
# Decimal in results: a string on the wire, never a float.
Dec = Annotated[Decimal, PlainSerializer(dec_str, return_type=str, when_used="always")]
# At most 8 decimals (Binance's finest tick or step) and 30 digits: anything else is an input error.
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=30, decimal_places=8)]
TimeMs = Annotated[int, Field(ge=0, le=10**14, description="epoch milliseconds")]
Limit1000 = Annotated[int, Field(ge=1, le=1000)]


# A number given as text: ASCII digits only (Python's Decimal would read '１' or '٣' as digits, and '1_000' too).
INT_TEXT = re.compile(r"[+-]?[0-9]{1,25}")
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_INT = 2**63 - 1  # Binance's ids and times are signed 64-bit
MAX_WHOLE_DIGITS = 30  # any decimal argument: below 10**30 ...
MAX_DECIMALS = 18  # ... and at most 18 decimals (Positive amounts are stricter: 8)


def _kinds(annotation: Any) -> frozenset:
    """The plain types an annotation accepts, through Optional, unions, Annotated and Literal."""
    out: set = set()
    stack = [annotation]
    while stack:
        a = stack.pop()
        origin = get_origin(a)
        if origin is Annotated:
            stack.append(get_args(a)[0])
        elif origin is Union or origin is types.UnionType:
            stack.extend(get_args(a))
        elif origin is Literal:
            out.update(type(v) for v in get_args(a))
        elif isinstance(a, type):
            out.add(a)
    return frozenset(out)


def plain_number(value: Any, kinds: frozenset) -> Any:
    """Reject what pydantic would quietly turn into a number: true/false, non-ASCII or underscored digits, and
    sizes no exchange amount or id has (10**40, 1e-999999999 would overflow or flood later arithmetic)."""
    exact = Decimal in kinds or float in kinds
    if not (exact or int in kinds) or str in kinds:
        return value
    if isinstance(value, bool):
        if bool in kinds:
            return value
        raise ValueError("true/false is not a number; give a number such as 1 or \"0.001\"")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 100:
            raise ValueError("too long for a number: at most 100 characters")
        if not (NUMBER_TEXT if exact else INT_TEXT).fullmatch(text):
            raise ValueError("give a plain number in ASCII digits, such as \"0.001\"" if exact else
                             "give a whole number in ASCII digits, such as 12")
        value = text
    if not exact:
        number = int(value) if isinstance(value, str) else value
        if isinstance(number, int) and number.bit_length() > 63:
            raise ValueError(f"out of range: at most {MAX_INT}")
        return value
    if isinstance(value, int) and value.bit_length() > 110:  # > 10**33: no str() of a huge int either
        raise ValueError(f"too large: at most {MAX_WHOLE_DIGITS} digits before the decimal point")
    if isinstance(value, (str, int, float, Decimal)):
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        if d.is_finite() and d:
            _, digits, exp = d.as_tuple()
            while len(digits) > 1 and digits[-1] == 0:
                digits, exp = digits[:-1], exp + 1
            if len(digits) + exp > MAX_WHOLE_DIGITS:
                raise ValueError(f"too large: at most {MAX_WHOLE_DIGITS} digits before the decimal point")
            if -exp > MAX_DECIMALS:
                raise ValueError(f"too many decimal places: at most {MAX_DECIMALS}")
    return value


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
            kinds = _KINDS[key] = _kinds(field.annotation) if field is not None else frozenset()
        return plain_number(value, kinds)


class NoArgs(Args):
    pass


class Result(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings", defer_build=True)


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


def compact_schema(schema: dict, output: bool = False) -> dict:
    """Shrink a pydantic JSON schema without changing what it accepts: the whole tools/list must stay small.

    Drops titles and ``default: null``, and folds ``anyOf`` of plain types (optional fields, decimals that
    accept a number or a string) into one ``type`` list.
    """

    def fold(options: list) -> dict | None:
        merged: dict = {}
        types: list[str] = []
        for opt in options:
            if not isinstance(opt, dict) or set(opt) - {"type", "exclusiveMinimum", "minimum", "maximum",
                                                         "exclusiveMaximum", "maxLength", "minLength", "pattern",
                                                         "enum"}:
                return None
            t = opt.get("type")
            if not isinstance(t, str):
                return None
            for k, v in opt.items():
                if k == "type":
                    continue
                if k in merged and merged[k] != v:
                    return None
                merged[k] = v
            types.append(t)
        if "enum" in merged and set(types) - {"string", "null"}:
            return None
        if "pattern" in merged and "number" in types:  # a number would skip the pattern: keep it exact
            return None
        if "enum" in merged and "null" in types:
            merged["enum"] = [*merged["enum"], None]
        merged["type"] = types if len(types) > 1 else types[0]
        return merged

    def walk(node: Any, parent_key: str | None = None) -> Any:
        if isinstance(node, dict):
            out: dict = {}
            for k, v in node.items():
                if k == "title" and parent_key != "properties" and isinstance(v, str):
                    continue
                if k == "default" and v is None:
                    continue
                if output and k == "required" and isinstance(v, list):
                    continue  # results always carry every field; the list only costs the agent's context
                out[k] = walk(v, k)
            if "anyOf" in out:
                folded = fold(out["anyOf"])
                if folded is not None:
                    del out["anyOf"]
                    out.update(folded)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def format_validation_error(tool: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown argument; remove it"
        parts.append(f"{loc}: {msg}")
    return f"{tool}: " + "; ".join(parts) + ". Nothing was sent to the exchange; fix the arguments and call again."


SCHEMAS = Path(__file__).with_name("schemas.json")


def generate_schemas(tool_def: ToolDef) -> tuple[dict, dict]:
    """The compact input and output JSON schemas of a tool, from its pydantic models."""
    return (compact_schema(tool_def.args.model_json_schema()),
            compact_schema(tool_def.result.model_json_schema(mode="serialization"), output=True))


@functools.lru_cache(maxsize=1)
def _cached_schemas() -> dict:
    try:
        return json.loads(SCHEMAS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def tool_schemas(tool_def: ToolDef) -> tuple[dict, dict]:
    """Schemas from schemas.json (generated by ``python -m binance_mcp.docgen``; a test keeps it equal to the
    models), so start-up does not build 72 schemas; computed from the models when a tool is not in it."""
    cached = _cached_schemas().get(tool_def.name)
    if cached is not None:
        return cached["input"], cached["output"]
    return generate_schemas(tool_def)


class BinanceTool(Tool):
    """A FastMCP tool backed by a ``ToolDef`` and a (guarded) handler."""

    tool_def: Any = None
    runner: Any = None  # async (args_model) -> Result

    @classmethod
    def build(cls, tool_def: ToolDef, runner: Callable[[Args], Awaitable[BaseModel]]) -> BinanceTool:
        spec = tool_def.spec
        parameters, output = tool_schemas(tool_def)
        return cls(
            name=tool_def.name,
            title=spec.title,
            description=tool_def.description,
            parameters=parameters,
            output_schema=output,
            annotations=spec.annotations,
            tool_def=tool_def,
            runner=runner,
        )

    def get_meta(self) -> dict[str, Any] | None:  # no FastMCP tag metadata: it only costs context
        return None

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            try:
                args = self.tool_def.args.model_validate(arguments or {})
            except ValidationError as exc:
                raise InputError(format_validation_error(self.name, exc)) from None
            try:
                result = await self.runner(args)
            except (BinanceMcpError, FastMCPError, MCPError):
                raise
            except Exception as exc:  # a bug: say so with a code, never as a bare masked message
                log.exception("%s failed", self.name)
                after = ("A read changes nothing; retry later." if self.tool_def.spec.risk == "read"
                         else "The exchange may or may not have acted: check open orders, positions and history "
                              "before calling again.")
                raise InternalError(f"{self.name} failed inside the server ({type(exc).__name__}). {after} If it "
                                    "persists, a human must check the server log.") from None
        except BinanceMcpError as exc:  # the one place our errors become MCP tool errors
            raise ToolError(str(exc)) from None
        data = result.model_dump(mode="json")
        return ToolResult(content=json.dumps(data, separators=(",", ":")), structured_content=data)
