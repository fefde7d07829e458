"""Composition root: settings -> exchange adapter -> guard -> FastMCP with all 35 tools.

No network at start-up: the exchange client (and, in paper mode, the simulator) is created on the
first call that needs it, so ``initialize`` and ``tools/list`` answer at once whatever the exchange does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from fastmcp import FastMCP
from pydantic import BaseModel

from binance_mcp import __version__
from binance_mcp.catalog import ToolSpec
from binance_mcp.exchange.client import Exchange
from binance_mcp.settings import Settings
from binance_mcp.tools import all_tools
from binance_mcp.tools.base import Args, BinanceTool, ToolDef
from binance_mcp.tools.deps import Deps

log = logging.getLogger("binance_mcp.server")

Runner = Callable[[Args], Awaitable[BaseModel]]

INSTRUCTIONS = (
    "Binance spot and USD-M futures tools. Every call passes this server's policy first; a denied call "
    "returns a code and a reason that says what to change. Quantities and prices are decimal strings."
)


class Guard(Protocol):
    """Wraps a tool's runner; the policy guard implements it (see binance_mcp.policy)."""

    def wrap(self, spec: ToolSpec, tool_def: ToolDef, runner: Runner) -> Runner: ...


class OpenGuard:
    """No policy: every call runs. Used only where a test asks for the bare tools."""

    guarded = False

    def wrap(self, spec: ToolSpec, tool_def: ToolDef, runner: Runner) -> Runner:
        return runner


def build_server(settings: Settings, guard: Guard | None = None, exchange: Exchange | None = None) -> FastMCP:
    exchange = exchange or Exchange(settings)
    deps = Deps(exchange=exchange, settings=settings)
    guard = guard or OpenGuard()

    @asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[dict]:
        try:
            yield {"deps": deps}
        finally:
            await exchange.close()

    mcp = FastMCP("binance-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
                  mask_error_details=True)
    for tool_def in all_tools():
        runner = _bind(tool_def, deps)
        mcp.add_tool(BinanceTool.build(tool_def, guard.wrap(tool_def.spec, tool_def, runner)))
    mcp.binance_deps = deps  # type: ignore[attr-defined]  # for tests and the demo
    return mcp


def _bind(tool_def: ToolDef, deps: Deps) -> Runner:
    async def run(args: Args) -> BaseModel:
        return await tool_def.handler(args, deps)

    return run
