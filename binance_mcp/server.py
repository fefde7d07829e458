"""Composition root: settings -> exchange adapter -> guard -> FastMCP with all 35 tools.

No network at start-up: the exchange client (and, in paper mode, the simulator) is created on the
first call that needs it, so ``initialize`` and ``tools/list`` answer at once whatever the exchange does.

A policy or a configuration that cannot be loaded gives a *locked* server (``build_locked_server``): over stdio a
server that exits shows up in the client only as "Connection closed", so it starts instead, lists only
``binance_policy_status`` (which returns the error) and refuses every other call with POLICY_ERROR and the same
text. Nothing reaches the exchange.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import Middleware
from pydantic import BaseModel

from binance_mcp import __version__
from binance_mcp.catalog import BY_NAME, ToolSpec
from binance_mcp.errors import HUMAN, BinanceMcpError
from binance_mcp.exchange.client import Exchange
from binance_mcp.paths import state_dir_problem
from binance_mcp.policy.engine import POLICY_STATUS_TOOL as STATUS_TOOL
from binance_mcp.settings import Settings
from binance_mcp.tools import all_tools
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import Args, ToolDef
from binance_mcp.tools.tool import BinanceTool, audit_args

log = logging.getLogger("binance_mcp.server")

Runner = Callable[[Args], Awaitable[BaseModel]]

SERVER_NAME = "binance-mcp"  # fixed: the audience of sealed request state, the same on every replica
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

    # one audit record for a call refused before the guard decided it: invalid input, an unknown tool name
    async def audit_refused(self, tool: str, args: Any, code: str, text: str) -> None: ...


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

    async def audit_refused(self, tool: str, args: Any, code: str, text: str) -> None:
        return None


class LockedGuard:
    """The guard of a server whose policy or configuration could not be loaded: it lists only
    ``binance_policy_status`` (which returns ``text``, the load error) and refuses every other call with
    POLICY_ERROR and the same text, so nothing reaches the exchange. Every call is audited (when the state
    directory can be written)."""

    guarded = True
    locked = True

    def __init__(self, text: str, settings: Settings, *, policy: str, exchange: str,
                 redact: Callable[[str], str] | None = None) -> None:
        from binance_mcp.policy.audit import AuditLog

        self.redact = redact or settings.redact
        self.text = self.redact(text)
        self.policy = policy  # what binance_policy_status says of the policy: the file that failed, or why none
        self.exchange = exchange
        self.audit = AuditLog(settings.state_dir / "audit.jsonl", self.redact, url=None)  # this host's file only
        self.wrapped: set[str] = set()

    def refusal(self) -> BinanceMcpError:
        return BinanceMcpError(self.text, code="POLICY_ERROR", remedy=HUMAN)

    def wrap(self, spec: ToolSpec, tool_def: ToolDef, runner: Runner) -> Runner:
        name = spec.name
        self.wrapped.add(name)

        async def locked(args: BaseModel) -> BaseModel:
            if name == STATUS_TOOL:
                result = await runner(args)
                await self._record(name, {}, "allow", "ALLOWED", "the server is locked; this tool shows why",
                                   "ok")
                return result
            await self.audit_refused(name, args.model_dump(mode="json", exclude_none=True), "POLICY_ERROR",
                                     self.text)
            raise self.refusal()

        locked.__binance_guarded__ = True  # type: ignore[attr-defined]
        return locked

    async def hidden(self) -> frozenset[str]:
        return frozenset(BY_NAME) - {STATUS_TOOL}

    def extra_tools(self, settings: Settings) -> list[ToolDef]:
        from binance_mcp.policy.status import locked_status_tool

        return [locked_status_tool(self, settings)]

    async def start(self) -> None:
        await self._write({"event": "server_locked", "error": self.text})

    async def aclose(self) -> None:
        self.audit.close()

    async def audit_refused(self, tool: str, args: Any, code: str, text: str) -> None:
        await self._record(tool, args, "deny", code, text, "not_run")

    async def _record(self, tool: str, args: Any, effect: str, code: str, reason: str, status: str) -> None:
        await self._write({"call_id": uuid.uuid4().hex[:16], "tool": tool, "args": args,
                           "decision": {"effect": effect, "code": code, "rule": "locked", "reason": reason},
                           "outcome": {"status": status}, "duration_ms": 0,
                           "policy": {"source": self.policy, "sha256": None, "mode": "locked"}})

    async def _write(self, record: dict) -> None:
        try:
            await asyncio.to_thread(self.audit.append, record, False)
        except OSError as exc:
            log.error("audit log not writable: %s", exc)


class PolicyListFilter(Middleware):
    """Tools the policy denies outright are not listed (and are still denied if called)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def on_list_tools(self, context, call_next):
        tools = await call_next(context)
        hidden = await self.guard.hidden()
        return [t for t in tools if t.name not in hidden]


class CallGate(Middleware):
    """Every call is audited, also those FastMCP would answer itself: a tool name the server does not have
    (UNKNOWN_TOOL) and, on a locked server, any call but ``binance_policy_status`` (POLICY_ERROR, before its
    arguments are even validated)."""

    def __init__(self, guard: Guard, names: frozenset[str]) -> None:
        self.guard = guard
        self.names = names

    async def on_call_tool(self, context, call_next):
        name = str(context.message.name)
        if getattr(self.guard, "locked", False) and name != STATUS_TOOL:
            await self._audit(name, context.message.arguments, "POLICY_ERROR", self.guard.text)
            raise ToolError(str(self.guard.refusal()))
        if name not in self.names:
            shown = name if len(name) <= 80 else name[:80] + "..."
            text = (f"{shown!r} is not a tool of this server, so nothing was run. Call tools/list for the tools it "
                    "offers (binance_policy_status says which of them the policy allows).")
            await self._audit(name, context.message.arguments, "UNKNOWN_TOOL", text)
            raise ToolError(f"UNKNOWN_TOOL: {text}")
        return await call_next(context)

    async def _audit(self, name: str, arguments: Any, code: str, text: str) -> None:
        audit = getattr(self.guard, "audit_refused", None)  # a test's own guard may not audit
        if audit is not None:
            await audit(name[:200], audit_args(arguments), code, text)


class KeyGate(Middleware):
    """Once the key check (exchange/keycheck.py) has found a key that may withdraw or transfer, every tool but
    ``binance_policy_status`` is refused here with the lock's text, before its arguments or the policy are looked at,
    and the refusal is audited. The gate never runs the check itself: the exchange adapter runs it before its first
    request (so a call that needs no exchange, or has invalid arguments, sends nothing), and refuses every request
    while the key is locked. A lock due for its re-check goes through to the adapter, which checks again."""

    def __init__(self, guard: Guard, exchange: Exchange) -> None:
        self.guard = guard
        self.exchange = exchange

    async def on_call_tool(self, context, call_next):
        name = str(context.message.name)
        check = self.exchange.keycheck
        if name == STATUS_TOOL or not check.needed or check.result.status != "locked" or check.due():
            return await call_next(context)
        text = self.exchange.settings.redact(check.result.error or "the API key is locked")
        audit = getattr(self.guard, "audit_refused", None)
        if audit is not None:
            await audit(name[:200], audit_args(context.message.arguments), "POLICY_ERROR", text)
        raise ToolError(f"POLICY_ERROR: {text}")


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
    of every server on the same account (and state store). A state directory holds one paper account."""
    import hashlib

    if settings.mode == "paper":  # the paper account of the state directory (simulator/store.py)
        return "paper-" + hashlib.sha256(str(settings.state_dir.absolute()).encode()).hexdigest()[:12]
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    return hashlib.sha256(f"{settings.mode}|{settings.spot_url}|{key}".encode()).hexdigest()[:16]


def make_guard(settings: Settings, exchange: Exchange, service: bool = False):
    """The policy guard; ``service``: for ``serve --http`` (every call from a known agent, approvals out of band)."""
    from binance_mcp.policy.approvals import STDIO_CONSOLE_URL
    from binance_mcp.policy.facts import ExchangeFacts
    from binance_mcp.policy.guard import PolicyGuard

    # On the service without BINANCE_MCP_CONSOLE_URL, service/run.py sets its own URL + /console once it listens.
    return PolicyGuard(load_policy(settings), settings.state_dir, ExchangeFacts(exchange), state_url=settings.state_url,
                       policy_path=policy_file(settings), redact=settings.redact, approval_ttl=settings.approval_ttl,
                       elicit_timeout=settings.approval_timeout, account=account_id(settings),
                       stale_after=2 * settings.timeout + 20, service=service,
                       confirm_loosening=service, console_url=settings.console_url or STDIO_CONSOLE_URL)


def build_server(settings: Settings, guard: Guard | None = None, exchange: Exchange | None = None,
                 service: bool = False) -> FastMCP:
    """The server with every tool wrapped by ``guard`` (default: the policy guard for ``settings``; raises
    PolicyLoadError when the policy cannot be loaded). The state directory is tried at once (a real write): a
    problem is logged and kept in ``binance_deps.state_error`` for binance_policy_status."""
    exchange = exchange or Exchange(settings)
    state_error = state_dir_problem(settings.state_dir)
    if state_error:
        log.error("%s", state_error)
    deps = Deps(exchange=exchange, settings=settings, state_error=state_error)
    guard = guard or make_guard(settings, exchange, service)
    deadman = None
    if hasattr(guard, "current") and not getattr(guard, "locked", False):  # a policy guard: its policy may ask
        from binance_mcp.policy.deadman import DeadManSwitch

        deadman = deps.deadman = DeadManSwitch(exchange, guard.current)

    @asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[None]:
        await guard.start()
        undo_sigterm = None
        if deadman is not None:
            await deadman.start()
            # Over stdio SIGTERM ends the process at once (disarming first); the HTTP service stops gracefully on
            # it instead (service/run.py), and this lifespan's end disarms.
            undo_sigterm = (lambda: None) if service else deadman.disarm_on_sigterm()
        try:
            yield None
        finally:
            try:
                if deadman is not None:
                    undo_sigterm()
                    await deadman.aclose()  # disarm while the exchange (and paper mode's simulator) still runs
            finally:
                await guard.aclose()
                await exchange.close()

    tool_defs = [*all_tools(), *guard.extra_tools(settings)]
    middleware: list[Middleware] = [PolicyListFilter(guard), CallGate(guard, frozenset(t.name for t in tool_defs)),
                                    KeyGate(guard, exchange)]
    if service:  # every request runs as the agent its HTTP request authenticated (service/http.py)
        from binance_mcp.service.http import AgentContext

        middleware.insert(0, AgentContext())
    mcp = FastMCP(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
                  mask_error_details=True, middleware=middleware, request_state_security=_sealing(guard, settings))
    audit = getattr(guard, "audit_refused", None)
    for tool_def in tool_defs:
        runner = _bind(tool_def, deps)
        mcp.add_tool(BinanceTool.build(tool_def, guard.wrap(tool_def.spec, tool_def, runner), audit=audit))
    mcp.binance_deps = deps  # type: ignore[attr-defined]  # for tests and the demo
    mcp.binance_guard = guard  # type: ignore[attr-defined]
    return mcp


def _sealing(guard: Guard, settings: Settings) -> Any:
    """How 2026-07-28 request state is sealed: under the state store's keys (policy/request_keys.py) and this fixed
    server name as the audience, so a restart or another replica on the same store opens it; per process for a
    guard without such keys (a locked server asks nobody anything)."""
    from mcp.server.request_state import RequestStateSecurity

    codec = getattr(guard, "request_keys", None)
    if codec is None:
        return None
    if getattr(guard, "service", False):  # bound to the agent of the HTTP request as well
        from binance_mcp.service.http import agent_principal

        return RequestStateSecurity(codec=codec, ttl=settings.approval_ttl, audience=SERVER_NAME,
                                    bind_principal=agent_principal)
    return RequestStateSecurity(codec=codec, ttl=settings.approval_ttl, audience=SERVER_NAME)


def build_locked_server(settings: Settings, text: str, *, policy: str, exchange: str,
                        redact: Callable[[str], str] | None = None) -> FastMCP:
    """A server that trades on nothing: ``text`` (the load error) is all it shows. ``settings`` may be safe
    defaults when the configuration itself could not be read (then ``redact`` scrubs the keys the environment
    has): nothing of them but the state directory, for the audit log, is used."""
    return build_server(settings, LockedGuard(text, settings, policy=policy, exchange=exchange, redact=redact))


def _bind(tool_def: ToolDef, deps: Deps) -> Runner:
    async def run(args: Args) -> BaseModel:
        return await tool_def.handler(args, deps)

    return run
