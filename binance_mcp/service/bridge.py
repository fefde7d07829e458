"""``binance-mcp connect URL --token-file FILE``: a stdio MCP server that forwards everything to the service.

For Claude Desktop and any client that only starts stdio servers: the client starts the bridge as its child, and
the bridge forwards every request (tool calls, tools/list) to the binance-mcp service at URL over MCP Streamable
HTTP with ``Authorization: Bearer <token>``, and relays what the service sends during a call (progress, log
messages, elicitation of a human's approval) back to the client. It is FastMCP's proxy (``ProxyProvider`` and
``ProxyClient``) with one fresh backend connection per request, in the protocol era the client speaks.

The bridge holds no exchange key, no policy and no state: it cannot trade by itself, and what the agent may do is
decided by the service. When the service cannot be reached, ``tools/list`` still answers, from the catalogue (the
same 36 tools and schemas the server lists, built by the same code; the bridge cannot know which of them the agent's
policy hides, so it lists all) and every call returns an error result that says the service is down and whether the
call reached it. Each call tries the service again, so the bridge needs no restart when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import httpx2
import mcp_types
from fastmcp import FastMCP
from fastmcp.client.auth.bearer import BearerAuth
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.providers.proxy import (
    _PROXY_TRANSPORT_ERRORS,  # the failures FastMCP's own proxy treats as "upstream unreachable"
    ProxyClient,
    ProxyProvider,
    ProxyTool,
    _mirror_front_era_mode,  # the client's protocol era, spoken to the service too (as create_proxy does)
)
from fastmcp.tools import ToolResult
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from binance_mcp import __version__
from binance_mcp.catalog import BY_NAME
from binance_mcp.service.bridge_setup import BridgeSetupError, Token, read_token

log = logging.getLogger("binance_mcp.bridge")

INSTRUCTIONS = (
    "Binance spot and USD-M futures tools of a binance-mcp service, reached through this bridge. Every call passes "
    "the service's policy first; a denied call returns a code and a reason that says what to change. Quantities and "
    "prices are decimal strings."
)


class _Attempt:
    """One request's way to the service: whether a ``tools/call`` left for it, and the HTTP error status the
    service answered (the MCP client turns a 401 into a bare "Server returned an error response")."""

    sent = False
    status: int | None = None
    reason = ""


_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("binance_mcp_bridge_attempt",
                                                                           default=None)


@contextlib.contextmanager
def attempting() -> Iterator[_Attempt]:
    """The backend clients made inside report to the attempt yielded."""
    attempt = _Attempt()
    reset = _ATTEMPT.set(attempt)
    try:
        yield attempt
    finally:
        _ATTEMPT.reset(reset)


class Bridge:
    """The service's address and token, the backend clients made from them, and the texts of its failures."""

    def __init__(self, url: str, token: Token, token_file: str) -> None:
        self.url = url
        self.token = token
        self.token_file = token_file
        self._seen = self._file_version(token_file)
        self._file_problem: str | None = None

    @staticmethod
    def _file_version(path: str) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    async def refresh(self) -> str | None:
        """Read the token file again when it changed (the user wrote a new token into it, so no restart is
        needed): None, or why the file cannot be used now."""
        version = await asyncio.to_thread(self._file_version, self.token_file)
        if version == self._seen:
            return self._file_problem
        self._seen = version
        try:
            token = await asyncio.to_thread(read_token, self.token_file)
        except BridgeSetupError as exc:
            self._file_problem = str(exc)
            log.warning("%s", exc)
            return self._file_problem
        if token.warning:
            log.warning("%s", token.warning)
        self.token, self._file_problem = token, None
        log.info("the token file %s changed: its token is used from now on", self.token_file)
        return None

    # -- the backend connection -----------------------------------------------------------------
    def client(self) -> ProxyClient:
        """A fresh backend client for one request: the token as a bearer header (never a forwarded client header,
        there are none on stdio), no redirects followed (a redirect must not take the token elsewhere), and the
        protocol era of the front connection."""
        attempt = _ATTEMPT.get() or _Attempt()

        async def sending(request: httpx2.Request) -> None:
            if request.method == "POST" and _is_call(request):
                attempt.sent = True

        async def answered(response: httpx2.Response) -> None:  # the POSTs carry the requests; a GET stream may 405
            if response.status_code >= 400 and response.request.method == "POST":
                attempt.status, attempt.reason = response.status_code, response.reason_phrase

        def http_client(headers=None, timeout=None, auth=None, **_ignored: Any) -> httpx2.AsyncClient:
            client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
            client.event_hooks.setdefault("request", []).append(sending)
            client.event_hooks.setdefault("response", []).append(answered)
            return client

        transport = StreamableHttpTransport(self.url, auth=BearerAuth(self.token.secret()),
                                            httpx_client_factory=http_client)
        client = ProxyClient(transport, forward_incoming_headers=False)
        mode = _mirror_front_era_mode()
        if mode is not None:
            client.mode = mode
        return client

    # -- what a failure means -------------------------------------------------------------------
    def problem(self, exc: BaseException, attempt: _Attempt) -> str | None:
        """Why the service could not answer, in a few words ("refused" for a 401); None when ``exc`` is not about
        reaching it (the service answered with an error of its own: that is passed on)."""
        if attempt.status == 401:
            return "refused"
        if attempt.status is not None:
            return f"it answered HTTP {attempt.status} {attempt.reason}".rstrip()
        seen: set[int] = set()
        cause: BaseException | None = exc
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, httpx2.HTTPStatusError):
                return "refused" if cause.response.status_code == 401 else f"it answered HTTP {cause.response.status_code}"
            if isinstance(cause, httpx2.ConnectError):
                return "the connection was refused or the host is unknown"
            if isinstance(cause, httpx2.TimeoutException):
                return "it did not answer in time"
            if isinstance(cause, httpx2.HTTPError):
                return type(cause).__name__
            cause = cause.__cause__ or cause.__context__
        if isinstance(exc, MCPError):  # the MCP client's own error for a stream that broke, or the service's answer
            return "the connection was closed" if exc.error.code == mcp_types.CONNECTION_CLOSED else None
        if isinstance(exc, _PROXY_TRANSPORT_ERRORS):
            return "the connection failed"
        return None

    def token_file_text(self, problem: str) -> str:
        return (f"SERVICE_TOKEN_FILE: {problem} Nothing was sent to the exchange. Ask the user to fix the bridge's "
                "token file; the next call reads it again.")

    def unreachable_text(self, tool: str, problem: str, sent: bool) -> str:
        if problem == "refused":
            return (f"SERVICE_REFUSED_TOKEN: the binance-mcp service at {self.url} refused this bridge's token (HTTP "
                    "401: the agent was revoked or the token is wrong), so nothing was sent to the exchange. Ask the "
                    "user for a new token: `binance-mcp agents add NAME` run on the service (as its user), written "
                    f"into the bridge's token file {self.token_file} (the next call reads it; no restart needed).")
        if not sent:
            return (f"SERVICE_UNREACHABLE: the binance-mcp service at {self.url} cannot be reached ({problem}), so "
                    f"{tool} did not run and nothing was sent to the exchange. Ask the user to start the service "
                    "(`binance-mcp serve --http` as the service's user) or to check the URL in the bridge's "
                    "configuration; then call again, the bridge needs no restart.")
        spec = BY_NAME.get(tool)
        after = ("A read changes nothing; call again once the service is back." if spec is not None
                 and spec.risk == "read" else "The service got the call, so the exchange may or may not have acted: "
                 "once the service is back, check open orders, positions and history before calling again.")
        return (f"SERVICE_UNREACHABLE: the connection to the binance-mcp service at {self.url} failed during the call "
                f"to {tool} ({problem}). {after} Ask the user to check the service.")


def _is_call(request: httpx2.Request) -> bool:
    try:
        body = request.content
    except httpx2.RequestNotRead:  # a streamed body: count it as a call (the safe side)
        return True
    return b'"tools/call"' in body


class BridgeTool(ProxyTool):
    """A tool of the service: the call is forwarded; a service that cannot be reached gives an error result."""

    _bridge: Any = None

    @classmethod
    def make(cls, bridge: Bridge, mcp_tool: mcp_types.Tool) -> BridgeTool:
        tool = cls.from_mcp_tool(bridge.client, mcp_tool)
        tool._bridge = bridge
        return tool

    def get_meta(self) -> dict[str, Any] | None:  # the service's own _meta, without FastMCP's tags added here
        return dict(self.meta) if self.meta else None

    async def run(self, arguments: dict[str, Any], context=None) -> ToolResult:
        file_problem = await self._bridge.refresh()
        if file_problem is not None:
            return ToolResult(content=self._bridge.token_file_text(file_problem), is_error=True)
        with attempting() as attempt:
            try:
                return await super().run(arguments, context)
            except Exception as exc:
                problem = self._bridge.problem(exc, attempt)
                if problem is None:
                    raise
        log.warning("%s: the service at %s cannot be reached (%s)", self.name, self._bridge.url,
                    "it refused the token" if problem == "refused" else problem)
        return ToolResult(content=self._bridge.unreachable_text(self.name, problem, attempt.sent), is_error=True)


def catalogue() -> list[mcp_types.Tool]:
    """The tools a server lists when its policy hides none: the 35 Binance tools and binance_policy_status, made by
    the server's own code (tools/tool.py reading tools/schemas.json), as docgen does."""
    from binance_mcp.policy.status import status_tool
    from binance_mcp.tools import all_tools
    from binance_mcp.tools.tool import BinanceTool

    return [BinanceTool.build(d, runner=None).to_mcp_tool() for d in (*all_tools(), status_tool(None, None))]


class BridgeProvider(ProxyProvider):
    """The service's tools; the catalogue's when the service cannot be reached (not cached: the next list asks the
    service again)."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__(bridge.client)
        self.bridge = bridge
        self._catalogue = [BridgeTool.make(bridge, t) for t in catalogue()]

    async def _list_tools(self) -> Sequence[BridgeTool]:
        import time

        from fastmcp.server.providers.proxy import _CacheEntry

        if await self.bridge.refresh() is not None:
            return self._catalogue
        self._tools_generation += 1
        generation = self._tools_generation
        with attempting() as attempt:
            try:
                client = await self._get_client()
                async with client:
                    listed = await client.list_tools()
            except Exception as exc:
                problem = self.bridge.problem(exc, attempt)
                if problem is None:
                    raise
                log.warning("the service at %s cannot be reached (%s): tools/list answered from the catalogue",
                            self.bridge.url, "it refused the token" if problem == "refused" else problem)
                return self._catalogue
        tools = [BridgeTool.make(self.bridge, t) for t in listed]
        if generation == self._tools_generation:
            self._tools_cache = _CacheEntry(tools, time.monotonic())
        return tools

    async def _get_tool(self, name: str, version=None) -> BridgeTool | None:
        """A tool the service did not list (its policy hides it) is still forwarded when it is in the catalogue:
        the service's own answer says why it is refused."""
        tool = await super()._get_tool(name, version)
        if tool is None:
            tool = next((t for t in self._catalogue if t.name == name), None)
        return tool

    async def _list_resources(self):
        return await self._or_none(super()._list_resources)

    async def _list_resource_templates(self):
        return await self._or_none(super()._list_resource_templates)

    async def _list_prompts(self):
        return await self._or_none(super()._list_prompts)

    async def _or_none(self, listing):
        """The server has no resources or prompts; a client asking while the service is down gets none either."""
        with attempting() as attempt:
            try:
                return await listing()
            except Exception as exc:
                if self.bridge.problem(exc, attempt) is None:
                    raise
                return []


def build_bridge(url: str, token: Token, token_file: str) -> FastMCP:
    """The bridge's server; nothing is connected until a request comes."""
    bridge = Bridge(url, token, token_file)
    mcp = FastMCP("binance-mcp", version=__version__, instructions=INSTRUCTIONS, mask_error_details=True)
    mcp.add_provider(BridgeProvider(bridge))
    mcp.binance_bridge = bridge  # type: ignore[attr-defined]
    return mcp
