"""The human console (docs/console.md): pending approvals as order tickets, today's caps and rate limits, the kill
switch, flatten, policy changes waiting for a human, and the audit log, in a browser.

Served at ``/console`` by the HTTP service (``serve --http``, on the same port; ServiceGate hands /console paths here
without the bearer check, and refuses any request there that carries an Authorization header: an agent's token opens
nothing here, and the console's session cookie opens nothing on /mcp), and by ``binance-mcp console`` for stdio
users (a local web server on 127.0.0.1:8766 on the same state directory, behind ``ConsoleGate``'s own Host and Origin
checks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from binance_mcp.service.http import host_of

PREFIX = "/console"
DEFAULT_LISTEN = "127.0.0.1:8766"


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def refuse(send: Callable, status: int, error: str, text: str) -> None:
    body = json.dumps({"error": error, "error_description": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def bearer_refused(scope: dict, send: Callable) -> bool:
    """An Authorization header on a console path: 401 (agents' tokens never open the console)."""
    if any(k.lower() == b"authorization" for k, _ in scope.get("headers", [])):
        await refuse(send, 401, "invalid_token", "the console does not accept bearer tokens: log in with the "
                                                 "console's password or a login link")
        return True
    return False


class ConsoleGate:
    """The standalone console's checks before its app: Host (DNS rebinding), Origin, no bearer, console paths."""

    def __init__(self, app: Any, hosts: tuple[str, ...], origin: str) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.origin = origin

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if host_of(headers.get("host", "")) not in self.hosts:
            await refuse(send, 421, "misdirected_request", "the Host header is not a name of this console")
            return
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() != f"http://{headers.get('host', '').lower()}":
            await refuse(send, 403, "forbidden_origin", "requests from this Origin are not accepted")
            return
        if await bearer_refused(scope, send):
            return
        if not is_console_path(scope.get("path", "")):
            await refuse(send, 404, "not_found", "the console is at /console")
            return
        await self.app(scope, receive, send)


def service_backend(mcp: Any, secure: bool):
    """The console of ``serve --http``: the guard's policies, audit and account; flatten with its exchange."""
    from binance_mcp.service.console.backend import ConsoleBackend
    from binance_mcp.service.console.flatten import Flattener

    guard = mcp.binance_guard
    deps = mcp.binance_deps

    async def agent_policy(path: str):
        return await guard._io(guard._agent_policy, path)

    return ConsoleBackend(deps.settings.state_dir, guard.account, guard.current, agent_policy, guard.recorder.safe,
                          secure=secure, flatten=Flattener(deps.exchange), clock=guard.clock)
