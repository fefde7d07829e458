"""``binance-mcp serve --http``: the same server (every tool, the guard, approvals, audit) over MCP Streamable HTTP
at ``/mcp``, in front of which ``ServiceGate`` checks every request before FastMCP sees it:

1. ``Host`` must be one of the service's names (loopback names, the bound address, ``--allowed-host``): 421
   otherwise (DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name);
2. an ``Origin``, when a browser sends one, must be the service's own or an ``--allowed-origin``: 403;
3. ``Authorization: Bearer <token>`` of an active agent (the state store's ``agents`` table, read on every request,
   so a revocation applies to the next one): 401 and nothing else otherwise. Failures are counted and summarised
   once a minute in the log and the audit log (not one record each: a flood cannot fill the disk);
4. ``/console`` paths go to the human console (service/console) instead, without a bearer check, and any request
   there that carries an Authorization header gets 401; a path other than ``/mcp``: 404; a method other than GET, POST, DELETE: 405; another agent's MCP session id:
   404, as for an unknown session (a session belongs to the agent that opened it);
5. a body over ``max_body`` bytes: 413 (the body is read, within the cap, before the app sees it).

The agent found is put in the request's scope; ``AgentContext`` (a FastMCP middleware) hands it to the guard
(``layers.CURRENT_AGENT``) for every MCP request the HTTP request carries.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastmcp.server.middleware import Middleware

from binance_mcp.policy.agent_state import AgentRow
from binance_mcp.policy.layers import CURRENT_AGENT

log = logging.getLogger("binance_mcp.service")

MCP_PATH = "/mcp"
DEFAULT_BIND = "127.0.0.1:8765"
MAX_BODY = 1 << 20  # 1 MiB: far above any tool call's arguments
TOKEN = re.compile(r"^bmcp_[A-Za-z0-9_-]{43}$")
SUMMARY_EVERY_S = 60.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SCOPE_KEY = "binance_agent"
MAX_SESSIONS = 10_000


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) -> (host, port). Raises ValueError with what to write instead."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", value.strip())
    if not m:
        raise ValueError(f"--http {value!r}: write HOST:PORT, e.g. {DEFAULT_BIND} (an IPv6 address in brackets: "
                         "[::1]:8765)")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"--http {value!r}: the port must be 0 to 65535")
    return host, int(port)


def host_of(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class AuthFailures:
    """Requests that failed authentication: counted, and summarised at most once per ``every`` seconds (a log line
    and one audit record with the count, the reasons and the busiest client addresses)."""

    def __init__(self, audit: Callable[[dict], Awaitable[None]], clock: Callable[[], float] = time.time,
                 every: float = SUMMARY_EVERY_S) -> None:
        self.audit = audit
        self.clock = clock
        self.every = every
        self.total = 0  # since start (binance_policy_status, tests)
        self.reasons: Counter[str] = Counter()
        self.clients: Counter[str] = Counter()
        self.since = clock()

    async def note(self, reason: str, client: str) -> None:
        self.total += 1
        self.reasons[reason] += 1
        self.clients[client] += 1
        if self.clock() - self.since >= self.every:
            await self.flush()

    async def flush(self) -> None:
        count = sum(self.reasons.values())
        now = self.clock()
        if count:
            reasons = dict(self.reasons)
            clients = dict(self.clients.most_common(5))
            log.warning("%d HTTP requests failed authentication in the last %d s (%s; from %s)", count,
                        int(now - self.since), ", ".join(f"{k} {v}" for k, v in reasons.items()),
                        ", ".join(f"{k} x{v}" for k, v in clients.items()))
            await self.audit({"event": "auth_failures", "count": count, "seconds": round(now - self.since, 1),
                              "reasons": reasons, "clients": clients})
        self.reasons.clear()
        self.clients.clear()
        self.since = now


class ServiceGate:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: Any, *, authenticate: Callable[[str], Awaitable[AgentRow | None]],
                 failures: AuthFailures, hosts: tuple[str, ...], origins: tuple[str, ...], scheme: str = "http",
                 max_body: int = MAX_BODY, console: Any = None) -> None:
        self.app = app
        self.console = console  # the human console's app (service/console), or None
        self.authenticate = authenticate
        self.failures = failures
        self.hosts = frozenset(h.lower() for h in hosts)
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)
        self.scheme = scheme
        self.max_body = max_body
        self.sessions: dict[str, str] = {}  # MCP session id -> the agent that opened it
        self._store_error_logged = float("-inf")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if host_of(host) not in self.hosts:
            await _answer(send, 421, "misdirected_request", "the Host header is not a name of this service")
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, host):
            await _answer(send, 403, "forbidden_origin", "requests from this Origin are not accepted")
            return
        if self.console is not None and _console_path(scope.get("path", "")):  # a human's pages: their own login;
            from binance_mcp.service.console import bearer_refused  # an agent's token there gets 401

            if not await bearer_refused(scope, send):
                await self.console(scope, receive, send)
            return
        agent = await self._agent(headers.get("authorization", ""), scope)
        if agent is None:
            await _answer(send, 401, "invalid_token", "a valid bearer token is required",
                          [(b"www-authenticate", b'Bearer realm="binance-mcp"')])
            return
        if scope.get("path") != MCP_PATH:
            await _answer(send, 404, "not_found", f"the only endpoint is {MCP_PATH}")
            return
        if scope.get("method") not in ("GET", "POST", "DELETE"):
            await _answer(send, 405, "method_not_allowed", "use POST (GET and DELETE for sessions)",
                          [(b"allow", b"GET, POST, DELETE")])
            return
        session = headers.get("mcp-session-id")
        if session is not None and self.sessions.get(session, agent.name) != agent.name:
            await _answer(send, 404, "session_not_found", "no such session for this agent")  # another agent's
            return
        scope.setdefault("state", {})[SCOPE_KEY] = agent
        send = self._learn_session(send, agent.name, session, scope.get("method"))
        if scope.get("method") == "POST":
            body = await self._body(headers, receive)
            if body is None:
                await _answer(send, 413, "request_too_large", f"the request body is over {self.max_body} bytes")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _learn_session(self, send: Callable, agent: str, asked: str | None, method: str | None) -> Callable:
        """Note which agent a new MCP session belongs to (the session id FastMCP answers with), so that no other
        agent's token can use it; a DELETE ends it. At most MAX_SESSIONS are remembered (the oldest go first)."""
        if asked is not None and method == "DELETE":
            self.sessions.pop(asked, None)
            return send

        async def noting(message: dict) -> None:
            if message["type"] == "http.response.start":
                for key, value in message.get("headers", []):
                    if key.lower() == b"mcp-session-id":
                        self.sessions[value.decode("latin-1")] = agent
                        while len(self.sessions) > MAX_SESSIONS:
                            self.sessions.pop(next(iter(self.sessions)))
            await send(message)

        return noting

    def _origin_ok(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin in self.origins or origin == f"{self.scheme}://{host.lower()}"

    async def _agent(self, authorization: str, scope: dict) -> AgentRow | None:
        client = scope.get("client") or ("unknown", 0)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if not authorization:
            reason = "no token"
        elif scheme.lower() != "bearer" or not TOKEN.match(token):
            reason = "malformed token"
        else:
            try:
                agent = await self.authenticate(token)
            except Exception as exc:  # noqa: BLE001 - the store cannot be read: nobody gets in (fail closed)
                now = self.failures.clock()
                if now - self._store_error_logged >= SUMMARY_EVERY_S:  # once a minute, not once per request
                    self._store_error_logged = now
                    log.error("agent tokens cannot be checked, so every request is refused: %s", exc)
                agent = None
                reason = "token store unreadable"
            else:
                if agent is not None:
                    return agent
                reason = "unknown or revoked token"
        await self.failures.note(reason, str(client[0]))
        return None

    async def _body(self, headers: dict, receive: Callable) -> bytes | None:
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to run
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _console_path(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def _replay(body: bytes, receive: Callable) -> Callable:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: http.disconnect, as the server reports it

    return replay


async def _answer(send: Callable, status: int, error: str, text: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": error, "error_description": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


class AgentContext(Middleware):
    """Every MCP request on the service runs as the agent ServiceGate found for its HTTP request."""

    async def on_request(self, context, call_next):
        from fastmcp.server.dependencies import get_http_request

        try:
            agent = get_http_request().scope.get("state", {}).get(SCOPE_KEY)
        except RuntimeError:  # no HTTP request: the guard refuses a service call without an agent
            agent = None
        token = CURRENT_AGENT.set(agent)
        try:
            return await call_next(context)
        finally:
            CURRENT_AGENT.reset(token)


def agent_principal(ctx: Any) -> str | None:
    """Whom a sealed 2026-07-28 request state is bound to on the service: the agent of the HTTP request (FastMCP's
    request-state boundary refuses a state another agent sends back). None without one (then the guard refuses)."""
    scope = getattr(getattr(ctx, "request", None), "scope", None)
    agent = scope.get("state", {}).get(SCOPE_KEY) if isinstance(scope, dict) else None
    return f"agent:{agent.name}" if agent is not None else None


def service_hosts(bind_host: str, extra: list[str]) -> tuple[str, ...]:
    """The Host header names the service answers to: loopback names, the address it binds (unless 0.0.0.0 or ::),
    and the names a human added (a proxy's public name)."""
    names = [*LOOPBACK_NAMES, *(h.lower() for h in extra)]
    if bind_host not in ("0.0.0.0", "::", ""):
        names.append(bind_host.lower())
    return tuple(dict.fromkeys(names))


def check_origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"--allowed-origin {value!r}: write an origin, scheme://host[:port], e.g. "
                         "https://console.example.com")
    return value.rstrip("/")
