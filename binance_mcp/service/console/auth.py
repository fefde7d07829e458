"""Who may use the console: a session opened with the console's password or a one-time login link, never an agent's
token. Session ids and link tokens are 256 random bits, stored as SHA-256 (state store, console_state.py); the cookie
is HttpOnly, SameSite=Strict, scoped to /console, Secure when the console is reached over TLS. Every form carries a
CSRF token (the session's, or before login a cookie's: double submit), compared in constant time; a POST without the
right one gets 403. Login attempts (password or link) count per client address and over all clients in the state
store, so replicas share the count; over the limit: 429, audited, nothing checked."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from binance_mcp.policy.console_state import ConsoleSession, check_password

COOKIE = "bmcp_console"
PRE_COOKIE = "bmcp_console_login"
LOGIN_LIMITS = {"client": (10, 300.0), "all": (30, 300.0)}  # attempts per window (s)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_cookie(response: Response, name: str, value: str, secure: bool, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/console", httponly=True, samesite="strict",
                        secure=secure)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


async def session_of(backend: Any, request: Request) -> ConsoleSession | None:
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 100:
        return None
    return await backend.run(backend.state.console_session, sid)


def pre_csrf(request: Request) -> tuple[str, bool]:
    """The login form's CSRF token (double submit: a cookie and the form's field); True when it is new."""
    have = request.cookies.get(PRE_COOKIE)
    if have and 20 <= len(have) <= 100:
        return have, False
    return secrets.token_urlsafe(32), True


async def attempt(backend: Any, request: Request) -> str | None:
    """Count one login attempt; the limit reached (``client`` or ``all``) or None."""
    over = await backend.run(backend.state.login_attempt,
                             [f"console_login:client:{client_of(request)}", "console_login:all"], LOGIN_LIMITS)
    return None if over is None else over.split(":")[1]


async def password_ok(backend: Any, password: str) -> bool | None:
    """None: no password is set yet."""
    stored = await backend.run(backend.state.console_password)
    if stored is None:
        return None
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, check_password, password, stored)


def safe_next(value: str | None) -> str:
    """Where to go after login: a console path only (no open redirect)."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/approvals"
