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
from fastmcp.server.middleware import Middleware
from pydantic import BaseModel

from binance_mcp import __version__
from binance_mcp.catalog import ToolSpec
from binance_mcp.exchange.client import Exchange
from binance_mcp.settings import Settings
from binance_mcp.tools import all_tools
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, ToolDef
from binance_mcp.tools.tool import BinanceTool

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


class PolicyListFilter(Middleware):
    """Tools the policy denies outright are not listed (and are still denied if called)."""

    def __init__(self, guard) -> None:
        self.guard = guard

    async def on_list_tools(self, context, call_next):
        tools = await call_next(context)
        return [t for t in tools if not self.guard.hidden(t.name)]


def load_policy(settings: Settings):
    """The policy file from the settings, else the built-in read-only policy. Raises PolicyLoadError."""
    from binance_mcp.policy.loader import builtin, load_file

    return load_file(settings.policy) if settings.policy else builtin("read-only")


def make_guard(settings: Settings, exchange: Exchange):
    from binance_mcp.policy.facts import ExchangeFacts
    from binance_mcp.policy.guard import PolicyGuard

    return PolicyGuard(load_policy(settings), settings.state_dir, ExchangeFacts(exchange),
                       policy_path=settings.policy, redact=settings.redact, approval_ttl=settings.approval_ttl,
                       elicit_timeout=settings.approval_timeout)


def build_server(settings: Settings, guard: Guard | None = None, exchange: Exchange | None = None) -> FastMCP:
    """The server with every tool wrapped by ``guard`` (default: the policy guard for ``settings``)."""
    exchange = exchange or Exchange(settings)
    deps = Deps(exchange=exchange, settings=settings)
    guard = guard or make_guard(settings, exchange)

    @asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[dict]:
        try:
            yield {"deps": deps}
        finally:
            await exchange.close()
            close = getattr(guard, "close", None)
            if close is not None:
                close()

    middleware = [PolicyListFilter(guard)] if hasattr(guard, "hidden") else []
    mcp = FastMCP("binance-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
                  mask_error_details=True, middleware=middleware)
    tool_defs = all_tools()
    if hasattr(guard, "current"):
        from binance_mcp.policy.status import status_tool

        tool_defs.append(status_tool(guard, settings))
    for tool_def in tool_defs:
        runner = _bind(tool_def, deps)
        mcp.add_tool(BinanceTool.build(tool_def, guard.wrap(tool_def.spec, tool_def, runner)))
    mcp.binance_deps = deps  # type: ignore[attr-defined]  # for tests and the demo
    mcp.binance_guard = guard  # type: ignore[attr-defined]
    return mcp


def _bind(tool_def: ToolDef, deps: Deps) -> Runner:
    async def run(args: Args) -> BaseModel:
        return await tool_def.handler(args, deps)

    return run
