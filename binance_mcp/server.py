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
    """What the server asks of a guard. The policy guard implements it (see binance_mcp.policy.guard)."""

    def wrap(self, spec: ToolSpec, tool_def: ToolDef, runner: Runner) -> Runner: ...

    async def hidden(self) -> frozenset[str]: ...  # tools not to list

    def extra_tools(self, settings: Settings) -> list[ToolDef]: ...  # the guard's own tools

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class OpenGuard:
    """No policy: every call runs. Used only where a test asks for the bare tools."""

    guarded = False

    def wrap(self, spec: ToolSpec, tool_def: ToolDef, runner: Runner) -> Runner:
        return runner

    async def hidden(self) -> frozenset[str]:
        return frozenset()

    def extra_tools(self, settings: Settings) -> list[ToolDef]:
        return []

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class PolicyListFilter(Middleware):
    """Tools the policy denies outright are not listed (and are still denied if called)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def on_list_tools(self, context, call_next):
        tools = await call_next(context)
        hidden = await self.guard.hidden()
        return [t for t in tools if t.name not in hidden]


def load_policy(settings: Settings):
    """The policy the settings name (a file, or a built-in policy's name), else the built-in read-only policy.
    Raises PolicyLoadError."""
    from binance_mcp.policy.loader import builtin, load_named

    return load_named(settings.policy) if settings.policy else builtin("read-only")


def policy_file(settings: Settings):
    """The policy file to watch for changes: None for a built-in policy (it ships with the code)."""
    from binance_mcp.policy.loader import builtin_name

    return None if settings.policy is None or builtin_name(settings.policy) else settings.policy


def account_id(settings: Settings) -> str:
    """Which exchange account in-flight orders belong to: limits on open orders and positions count the orders
    of every server on the same account (and state store). Each paper exchange is its own account."""
    import hashlib
    import uuid

    if settings.mode == "paper":
        return f"paper-{uuid.uuid4().hex[:12]}"
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    return hashlib.sha256(f"{settings.mode}|{settings.spot_url}|{key}".encode()).hexdigest()[:16]


def make_guard(settings: Settings, exchange: Exchange):
    from binance_mcp.policy.facts import ExchangeFacts
    from binance_mcp.policy.guard import PolicyGuard

    return PolicyGuard(load_policy(settings), settings.state_dir, ExchangeFacts(exchange),
                       policy_path=policy_file(settings), redact=settings.redact, approval_ttl=settings.approval_ttl,
                       elicit_timeout=settings.approval_timeout, account=account_id(settings),
                       stale_after=2 * settings.timeout + 20)


def build_server(settings: Settings, guard: Guard | None = None, exchange: Exchange | None = None) -> FastMCP:
    """The server with every tool wrapped by ``guard`` (default: the policy guard for ``settings``)."""
    exchange = exchange or Exchange(settings)
    deps = Deps(exchange=exchange, settings=settings)
    guard = guard or make_guard(settings, exchange)

    @asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[None]:
        await guard.start()
        try:
            yield None
        finally:
            await guard.aclose()
            await exchange.close()

    mcp = FastMCP("binance-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
                  mask_error_details=True, middleware=[PolicyListFilter(guard)])
    for tool_def in [*all_tools(), *guard.extra_tools(settings)]:
        runner = _bind(tool_def, deps)
        mcp.add_tool(BinanceTool.build(tool_def, guard.wrap(tool_def.spec, tool_def, runner)))
    mcp.binance_deps = deps  # type: ignore[attr-defined]  # for tests and the demo
    mcp.binance_guard = guard  # type: ignore[attr-defined]
    return mcp


def _bind(tool_def: ToolDef, deps: Deps) -> Runner:
    async def run(args: Args) -> BaseModel:
        return await tool_def.handler(args, deps)

    return run
