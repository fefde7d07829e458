"""The console's routes (a Starlette app mounted at /console; see __init__ for how it is served). Every page but the
login pages needs a session; a page asked for without one redirects to the login and back to it afterwards (the
approval links agents hand to their users). Every POST needs the form's CSRF token."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from binance_mcp.service.console import auth, pages
from binance_mcp.service.console.backend import filter_audit

MAX_FORM = 16 << 10
HEADERS = {"content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                                      "form-action 'self'", "x-frame-options": "DENY", "cache-control": "no-store",
           "referrer-policy": "same-origin", "x-content-type-options": "nosniff"}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=HEADERS)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, read within MAX_FORM bytes (None over it: nobody, logged in or not, can make the console
    hold a large body)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def build_app(backend: Any) -> Starlette:
    b = backend

    async def audit(record: dict) -> None:
        await b.audit({"event": record.pop("event"), "channel": "console", **record})

    async def need_session(request: Request):
        s = await auth.session_of(b, request)
        if s is None:
            if request.method == "GET" and not request.url.path.endswith("/fragment"):
                return None, RedirectResponse(f"/console/login?next={quote(request.url.path)}", 303)
            return None, JSONResponse({"error": "login_required"}, 401, headers=HEADERS)
        return s, None

    async def posted(request: Request):
        """(session, form) of a POST with its session's CSRF token, or (None, the refusal)."""
        s, refusal = await need_session(request)
        if refusal is not None:
            return None, None, refusal
        form = await _form(request)
        if form is None:
            return None, None, _html(pages.message_page("Too large", "the form is too large"), 413)
        if not auth.same(form.get("csrf"), s.csrf):
            await audit({"event": "console_csrf_refused", "path": request.url.path, "by": s.label})
            return None, None, _html(pages.message_page("Refused", "the form's CSRF token is missing or wrong: reload "
                                                        "the page and try again", s.csrf), 403)
        return s, form, None

    # -- login -----------------------------------------------------------------------------------
    async def login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
        token, new = auth.pre_csrf(request)
        nxt = auth.safe_next(request.query_params.get("next"))
        resp = _html(pages.login(token, nxt, error), status)
        if new:
            auth.set_cookie(resp, auth.PRE_COOKIE, token, b.secure, 3600)
        return resp

    async def start_session(request: Request, via: str, nxt: str) -> Response:
        sid = secrets.token_urlsafe(32)
        s = await b.run(b.state.open_session, sid, via, auth.client_of(request))
        await audit({"event": "console_login", "via": via, "client": auth.client_of(request), "by": s.label})
        resp = RedirectResponse(auth.safe_next(nxt), 303, headers=HEADERS)
        auth.set_cookie(resp, auth.COOKIE, sid, b.secure, int(s.expires_at - s.created_at))
        resp.delete_cookie(auth.PRE_COOKIE, path="/console")
        return resp

    async def checked_login_form(request: Request):
        form = await _form(request)
        if form is None or not auth.same(form.get("csrf"), request.cookies.get(auth.PRE_COOKIE)):
            await audit({"event": "console_csrf_refused", "path": request.url.path, "client": auth.client_of(request)})
            return None, _html(pages.message_page("Refused", "the login form's CSRF token is missing or wrong: open "
                                                  "the login page again"), 403)
        over = await auth.attempt(b, request)
        if over is not None:
            await audit({"event": "console_login_limited", "limit": over, "client": auth.client_of(request)})
            return None, _html(pages.login(request.cookies[auth.PRE_COOKIE], auth.safe_next(form.get("next")),
                                           "Too many login attempts; wait a few minutes and try again."), 429)
        return form, None

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_page(request)
        form, refusal = await checked_login_form(request)
        if refusal is not None:
            return refusal
        ok = await auth.password_ok(b, form.get("password", ""))
        if not ok:
            why = "no password is set" if ok is None else "wrong password"
            await audit({"event": "console_login_failed", "reason": why, "client": auth.client_of(request)})
            text = ("No console password is set: run `binance-mcp console set-password` as the service's user."
                    if ok is None else "Wrong password.")
            return _html(pages.login(request.cookies[auth.PRE_COOKIE], auth.safe_next(form.get("next")), text), 401)
        return await start_session(request, "password", form.get("next", ""))

    async def link_page(request: Request) -> Response:
        token, new = auth.pre_csrf(request)
        resp = _html(pages.link_login(token, request.path_params["token"],
                                      auth.safe_next(request.query_params.get("next"))))
        if new:
            auth.set_cookie(resp, auth.PRE_COOKIE, token, b.secure, 3600)
        return resp

    async def link_login(request: Request) -> Response:
        form, refusal = await checked_login_form(request)
        if refusal is not None:
            return refusal
        if not await b.run(b.state.use_login_link, form.get("token", "")):
            await audit({"event": "console_login_failed", "reason": "unknown, used or expired link",
                         "client": auth.client_of(request)})
            return _html(pages.message_page("Link not valid", "This login link is unknown, used or expired: print a "
                                            "new one with `binance-mcp console login-link`."), 401)
        return await start_session(request, "link", form.get("next", ""))

    async def logout(request: Request) -> Response:
        s, _, refusal = await posted(request)
        if refusal is not None:
            return refusal
        await b.run(b.state.end_session, s.id_sha256)
        await audit({"event": "console_logout", "by": s.label})
        resp = RedirectResponse("/console/login", 303, headers=HEADERS)
        resp.delete_cookie(auth.COOKIE, path="/console")
        return resp

    # -- approvals -------------------------------------------------------------------------------
    async def _pending():
        await b.run(b.approvals.expire_old)
        return await b.run(b.approvals.list, ("pending",))

    async def approvals(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        recent = [a for a in await b.run(b.approvals.list) if a.status != "pending"][-20:][::-1]
        return _html(pages.approvals(await _pending(), recent, s.csrf, b.clock(), request.query_params.get("msg")))

    async def fragment(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        return _html(pages.pending_fragment(await _pending(), s.csrf, b.clock()))

    async def one_approval(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        await b.run(b.approvals.expire_old)
        a = await b.run(b.approvals.get, request.path_params["id"])
        if a is None:
            return _html(pages.message_page("No such approval", "no approval has this id", s.csrf), 404)
        return _html(pages.page(f"Approval {a.id}", pages.ticket(a, s.csrf, b.clock(), single=True),
                                active="approvals", csrf=s.csrf, message=request.query_params.get("msg")))

    async def decide(request: Request) -> Response:
        s, _, refusal = await posted(request)
        if refusal is not None:
            return refusal
        aid, verb = request.path_params["id"], request.path_params["verb"]
        if verb not in ("approve", "deny"):
            return _html(pages.message_page("Not found", "approve or deny", s.csrf), 404)
        try:
            a = await b.run(b.approvals.decide, aid, verb == "approve", s.label)
        except KeyError:
            return _html(pages.message_page("No such approval", "no approval has this id", s.csrf), 404)
        except ValueError as exc:
            return _html(pages.message_page("Not pending", str(exc), s.csrf), 409)
        await audit({"event": "approval_" + ("approved" if a.status == "approved" else "denied"), "tool": a.tool,
                     "approval_id": a.id, "summary": a.summary, "by": s.label,
                     **({"agent": a.summary["agent"]} if "agent" in a.summary else {})})
        msg = ("approved: the agent's next identical call runs it once" if a.status == "approved" else
               "denied: the agent will be told")
        return RedirectResponse(f"/console/approvals/{a.id}?msg={quote(msg)}", 303, headers=HEADERS)

    # -- today: caps, kill switch, flatten, policy changes -----------------------------------------------------------
    async def today(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        t = await b.today()
        note = None if b.flatten is not None else b.flatten_unavailable
        return _html(pages.today(t, s.csrf, note, request.query_params.get("msg")))

    async def kill(request: Request) -> Response:
        s, form, refusal = await posted(request)
        if refusal is not None:
            return refusal
        on = form.get("to") == "on"
        if form.get("to") not in ("on", "off"):
            return _html(pages.message_page("Bad request", "to must be on or off", s.csrf), 400)
        await b.run(b.state.set_kill_flag, on, s.label)
        await audit({"event": "kill_flag_" + ("on" if on else "off"), "by": s.label})
        return RedirectResponse(f"/console/today?msg={quote('kill switch ' + ('on' if on else 'off'))}", 303,
                                headers=HEADERS)

    async def flatten(request: Request) -> Response:
        s, form, refusal = await posted(request)
        if refusal is not None:
            return refusal
        if b.flatten is None:
            return _html(pages.message_page("Flatten unavailable", b.flatten_unavailable or "", s.csrf), 409)
        if form.get("confirm") != "yes":
            return _html(pages.flatten_confirm(s.csrf))
        await audit({"event": "flatten_started", "by": s.label})
        steps = await b.flatten.run()
        await audit({"event": "flatten_done", "by": s.label, "steps": steps})
        return _html(pages.flatten_done(steps, s.csrf))

    async def policy_change(request: Request) -> Response:
        s, _, refusal = await posted(request)
        if refusal is not None:
            return refusal
        sha, verb = request.path_params["sha"], request.path_params["verb"]
        if verb not in ("confirm", "reject"):
            return _html(pages.message_page("Not found", "confirm or reject", s.csrf), 404)
        from binance_mcp.policy.confirm_state import ConfirmError

        try:
            if verb == "confirm":
                rows = await b.run(b.state.confirm_policy_change, sha, s.label)
            else:
                rows = await b.run(b.state.reject_policy_change, sha, s.label)
        except ConfirmError as exc:
            return _html(pages.message_page("Not confirmed", str(exc), s.csrf), 409)
        if verb == "confirm":  # the same record as `binance-mcp policy confirm`'s, one per file
            for row in rows:
                await audit({"event": "policy_confirm", "path": row["path"], "sha256": row["sha256"], "by": s.label,
                             "lines": row["lines"]})
        else:
            await audit({"event": "policy_reject", "sha256": sha, "by": s.label, "rows": rows})
        msg = "confirmed: each server applies it on its next call" if verb == "confirm" else "rejected"
        return RedirectResponse(f"/console/today?msg={quote(msg)}", 303, headers=HEADERS)

    # -- audit -----------------------------------------------------------------------------------
    async def audit_page(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        filters = {k: request.query_params.get(k, "").strip() for k in ("agent", "tool", "code", "since", "until")}
        records = await b.audit_records()
        try:
            rows = filter_audit(records, filters)
        except ValueError as exc:
            return _html(pages.audit([], filters, s.csrf, str(exc)), 400)
        return _html(pages.audit(rows[-200:][::-1], filters, s.csrf, None))

    async def audit_one(request: Request) -> Response:
        s, refusal = await need_session(request)
        if refusal is not None:
            return refusal
        records = await b.audit_records()
        n = request.path_params["n"]
        if not 0 <= n < len(records):
            return _html(pages.message_page("No such record", "no audit record has this number", s.csrf), 404)
        return _html(pages.audit_record(n, records[n], s.csrf))

    async def poll_js(request: Request) -> Response:
        return Response(pages.POLL, media_type="text/javascript", headers=HEADERS)

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/approvals", 303)

    routes = [
        Route("/console", home), Route("/console/", home), Route("/console/poll.js", poll_js),
        Route("/console/login", login, methods=["GET", "POST"]), Route("/console/link/{token}", link_page),
        Route("/console/link", link_login, methods=["POST"]), Route("/console/logout", logout, methods=["POST"]),
        Route("/console/approvals", approvals), Route("/console/approvals/fragment", fragment),
        Route("/console/approvals/{id}", one_approval),
        Route("/console/approvals/{id}/{verb:str}", decide, methods=["POST"]),
        Route("/console/today", today), Route("/console/kill", kill, methods=["POST"]),
        Route("/console/flatten", flatten, methods=["POST"]),
        Route("/console/policy/{sha}/{verb:str}", policy_change, methods=["POST"]),
        Route("/console/audit", audit_page), Route("/console/audit/{n:int}", audit_one),
    ]
    return Starlette(routes=routes)
