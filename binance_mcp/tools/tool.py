"""The FastMCP ``Tool`` that runs a ``ToolDef``: validate and normalise the arguments, run the (guarded)
handler, and turn our errors into MCP tool errors.

The tool validates *before* the guard sees the arguments, so bad input never reaches the policy or the exchange;
it is still audited, through the guard's ``audit_refused`` (INVALID_INPUT).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp.exceptions import FastMCPError, ToolError
from fastmcp.tools import Tool, ToolResult
from fastmcp.tools.base import InputRequiredToolResult
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from binance_mcp.errors import BinanceMcpError, InputError, InternalError
from binance_mcp.policy.approval_rounds import InputNeeded
from binance_mcp.tools.models import Args, ToolDef
from binance_mcp.tools.schemas import tool_schemas

log = logging.getLogger("binance_mcp.tools")
AUDIT_ARGS_MAX = 2000  # characters of a refused call's arguments kept in its audit record
Audit = Callable[[str, Any, str, str], Awaitable[None]]  # (tool, arguments, code, text)


def audit_args(arguments: Any) -> Any:
    """A refused call's arguments as they came (they did not validate), cut short when large."""
    text = json.dumps(arguments if arguments is not None else {}, default=str, separators=(",", ":"))
    if len(text) <= AUDIT_ARGS_MAX:
        return json.loads(text)
    return {"truncated": text[:AUDIT_ARGS_MAX], "length": len(text)}


# A result's name for a value that an argument takes under Binance's other name (Binance's own convention).
PASS_BACK_AS = {"clientOrderId": "origClientOrderId"}


def format_validation_error(tool: str, exc: ValidationError, fields: dict | None = None) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            other = PASS_BACK_AS.get(loc)
            msg = (f"unknown argument; pass it as {other}" if other and other in (fields or {})
                   else "unknown argument; remove it")
        parts.append(f"{loc}: {msg}")
    return f"{tool}: " + "; ".join(parts) + ". Nothing was sent to the exchange; fix the arguments and call again."


class BinanceTool(Tool):
    """A FastMCP tool backed by a ``ToolDef`` and a (guarded) handler."""

    tool_def: Any = None
    runner: Any = None  # async (args_model) -> Result
    audit: Any = None  # the guard's audit_refused: a call whose arguments do not validate is recorded too

    @classmethod
    def build(cls, tool_def: ToolDef, runner: Callable[[Args], Awaitable[BaseModel]],
              audit: Audit | None = None) -> BinanceTool:
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
            audit=audit,
        )

    def get_meta(self) -> dict[str, Any] | None:  # no FastMCP tag metadata: it only costs context
        return None

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            try:
                args = self.tool_def.args.model_validate(arguments or {})
            except ValidationError as exc:
                error = InputError(format_validation_error(self.name, exc, self.tool_def.args.model_fields))
                if self.audit is not None:
                    try:
                        await self.audit(self.name, audit_args(arguments), error.code, error.message)
                    except Exception:  # noqa: BLE001 - the agent still gets its INVALID_INPUT
                        log.exception("audit record of an invalid call to %s not written", self.name)
                raise error from None
            try:
                result = await self.runner(args)
            except InputNeeded as asked:  # an approval round on a 2026-07-28 connection (policy/approval_rounds.py)
                return InputRequiredToolResult(asked.result)
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
        data = result.model_dump(mode="json", exclude_none=True)  # a field not set is left out (see schemas.py)
        return ToolResult(content=json.dumps(data, separators=(",", ":")), structured_content=data)
