"""The console's HTML: server-rendered pages, escaped everywhere (an order's fields and audit records come from
agents), one small script that refreshes the pending approvals every second. No build step, nothing fetched from
elsewhere (the Content-Security-Policy allows only this origin)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import Any

from binance_mcp.policy.approvals import Approval, describe

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}main{padding:1.2em;max-width:1100px}
table{border-collapse:collapse;width:100%;background:#fff;margin:.6em 0 1.4em}
th,td{border-bottom:1px solid #e2e5ea;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}.ticket{background:#fff;border:1px solid #d5dae1;border-radius:6px;
padding:1em 1.2em;margin:0 0 1em}.ticket dl{display:grid;grid-template-columns:11em 1fr;margin:.4em 0}
.ticket dt{color:#5a6475}.ticket dd{margin:0}button{font:inherit;padding:.35em 1em;border-radius:4px;
border:1px solid #8a94a6;background:#fff;cursor:pointer}button.go{background:#1f7a3a;color:#fff;border-color:#1f7a3a}
button.stop{background:#b3261e;color:#fff;border-color:#b3261e}.bad{color:#b3261e;font-weight:600}
.ok{color:#1f7a3a;font-weight:600}.note{color:#5a6475}.inline{display:inline}pre{background:#fff;padding:1em;
border:1px solid #d5dae1;overflow:auto}input,select{font:inherit;padding:.25em}.msg{background:#fff4d6;padding:.6em 1em;
border:1px solid #e8cf7a;margin-bottom:1em}
"""
POLL = """
(function(){
function left(){var now=Date.now()/1000;document.querySelectorAll('[data-expires]').forEach(function(e){
var s=Math.max(0,Math.floor(e.dataset.expires-now));e.textContent=' ('+s+' s left)';});}
left();setInterval(left,1000);
var box=document.getElementById('pending');if(!box)return;var last=null;
function tick(){fetch(box.dataset.src,{credentials:'same-origin',cache:'no-store'}).then(function(r){
if(r.status===200)return r.text();if(r.status===401)location.reload();}).then(function(t){
if(t!==undefined&&t!==last){last=t;box.innerHTML=t;left();}}).catch(function(){});}
setInterval(tick,1000);})();
"""
NAV = (("approvals", "Approvals"), ("today", "Today"), ("audit", "Audit"))


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def page(title: str, body: str, *, active: str = "", csrf: str | None = None, message: str | None = None) -> str:
    nav = "".join(f'<a href="/console/{k}" class="{"on" if k == active else ""}">{v}</a>' for k, v in NAV) \
        if csrf is not None else ""
    logout = (f'<form method="post" action="/console/logout">{hidden(csrf)}<button>Log out</button></form>'
              if csrf is not None else "")
    note = f'<div class="msg" id="message">{_e(message)}</div>' if message else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)} - binance-mcp console'
            f'</title><meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>'
            f'<header><strong>binance-mcp console</strong>{nav}{logout}</header><main><h1>{_e(title)}</h1>{note}'
            f'{body}</main><script src="/console/poll.js"></script></body></html>')


def hidden(csrf: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(csrf)}">'


def login(pre_csrf: str, next_path: str, error: str | None = None) -> str:
    bad = f'<p class="bad" id="login-error">{_e(error)}</p>' if error else ""
    return page("Log in", f"""{bad}<form method="post" action="/console/login" id="login">{hidden(pre_csrf)}
<input type="hidden" name="next" value="{_e(next_path)}"><p><label>Console password<br>
<input type="password" name="password" id="password" autofocus autocomplete="current-password"></label></p>
<p><button class="go" id="login-button">Log in</button></p></form><p class="note">The password is set with
<code>binance-mcp console set-password</code>, as the service's user; <code>binance-mcp console login-link</code>
prints a one-time link instead. No agent token opens this console.</p>""")


def link_login(pre_csrf: str, token: str, next_path: str) -> str:
    return page("Log in with a one-time link", f"""<form method="post" action="/console/link">{hidden(pre_csrf)}
<input type="hidden" name="token" value="{_e(token)}"><input type="hidden" name="next" value="{_e(next_path)}">
<p>This link logs you in once and is then used up.</p><p><button class="go" id="link-button">Log in</button></p>
</form>""")


def ticket(a: Approval, csrf: str, now: float, single: bool = False) -> str:
    s = a.summary
    left = _ts(a.expires_at) - now
    rows = [("agent", s.get("agent", "(stdio client)")), ("tool", a.tool), ("symbol", s.get("symbol")),
            ("side", s.get("side")), ("type", s.get("type")),
            ("quantity", s.get("quantity") or (f"{s['quoteOrderQty']} (quote)" if "quoteOrderQty" in s else None)),
            ("price", s.get("price") or ("market" if s.get("type") else None)),
            ("notional", f"{s['notional_usd']} USD (computed by the server)" if "notional_usd" in s else
             "not priced"), ("rule that asked", a.rule),
            ("expires", a.expires_at),
            ("status", a.status)]
    for key in ("stopPrice", "positionSide", "reduceOnly", "closePosition", "leverage", "marginType"):
        if key in s:
            rows.append((key, s[key]))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows if v is not None)
    if a.status == "pending" and left > 0:  # the seconds left: counted down in the page (the fragment stays the same)
        dl = dl.replace(f"<dd>{_e(a.expires_at)}</dd>",
                        f'<dd>{_e(a.expires_at)}<span data-expires="{_ts(a.expires_at):.0f}"></span></dd>', 1)
    buttons = ""
    if a.status == "pending":
        buttons = (f'<form method="post" action="/console/approvals/{_e(a.id)}/approve" class="inline">'
                   f'{hidden(csrf)}<button class="go" id="approve-{_e(a.id)}">Approve once</button></form> '
                   f'<form method="post" action="/console/approvals/{_e(a.id)}/deny" class="inline">{hidden(csrf)}'
                   f'<button class="stop" id="deny-{_e(a.id)}">Deny</button></form>')
    title = _e(describe(s)) if single else f'<a href="/console/approvals/{_e(a.id)}">{_e(describe(s))}</a>'
    return (f'<div class="ticket" id="ticket-{_e(a.id)}" data-status="{_e(a.status)}"><strong>{title}</strong>'
            f'<div class="note">approval {_e(a.id)}</div><dl>{dl}</dl>{buttons}</div>')


def pending_fragment(rows: list[Approval], csrf: str, now: float) -> str:
    if not rows:
        return '<p class="note" id="none-pending">No order is waiting for approval.</p>'
    return "".join(ticket(a, csrf, now) for a in rows)


def approvals(rows: list[Approval], recent: list[Approval], csrf: str, now: float, message: str | None) -> str:
    done = "".join(f"<tr><td><a href=\"/console/approvals/{_e(a.id)}\">{_e(a.id)}</a></td><td>{_e(a.status)}</td>"
                   f"<td>{_e(a.decided_at or a.created_at)}</td><td>{_e(describe(a.summary))}</td></tr>"
                   for a in recent)
    body = (f'<div id="pending" data-src="/console/approvals/fragment">{pending_fragment(rows, csrf, now)}</div>'
            f'<h2>Recent</h2><table><tr><th>id</th><th>status</th><th>time (UTC)</th><th>order</th></tr>{done}'
            '</table>')
    return page("Pending approvals", body, active="approvals", csrf=csrf, message=message)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def today(t: dict, csrf: str, flatten_note: str | None, message: str | None) -> str:
    kill = t["kill"]
    state = (f'<span class="bad" id="kill-state">ON</span> (set by {_e(kill.set_by)} at {iso(kill.set_at)})'
             if kill.on else '<span class="ok" id="kill-state">off</span>')
    to = "off" if kill.on else "on"
    kill_form = (f'<form method="post" action="/console/kill" class="inline">{hidden(csrf)}'
                 f'<input type="hidden" name="to" value="{to}"><button id="kill-button" class="'
                 f'{"go" if kill.on else "stop"}">Turn the kill switch {to}</button></form>')
    file_line = (f"<p>Kill-switch file: <code>{_e(t['kill_file'])}</code> (present or not, each server checks it on "
                 "every call).</p>" if t["kill_file"] else "")
    caps = "".join(f"<tr><td>{_e(c['scope'])}</td><td>{_e(c['rule'])}</td><td>{c['used']:.2f}</td>"
                   f"<td>{c['limit']}</td></tr>" for c in t["caps"]) or '<tr><td colspan="4">none</td></tr>'
    rates = "".join(f"<tr><td>{_e(r['scope'])}</td><td>{_e(r['rule'])}</td><td>{r['used']}</td>"
                    f"<td>{r['rl'].max} per {r['rl'].window} s</td><td>{int(r['wait'] + 0.999)} s</td></tr>"
                    for r in t["rates"]) or '<tr><td colspan="5">none</td></tr>'
    prot = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v if not isinstance(v, dict | list) else json.dumps(v, default=str))}</td>"
                   f"<td>{_tripped(t['trips'], k)}</td></tr>" for k, v in t["protections"].items())
    extra = "".join(f"<tr><td>{_e(k)}</td><td>-</td><td class=\"bad\">tripped at {iso(v.get('at'))}: "
                    f"{_e(v.get('code'))}</td></tr>" for k, v in t["trips"].items() if k not in t["protections"])
    prot = prot + extra or '<tr><td colspan="3">none set</td></tr>'
    changes = "".join(_change(c, csrf) for c in t["changes"]) or '<p class="note">None waiting.</p>'
    flatten = (f'<form method="post" action="/console/flatten">{hidden(csrf)}<button class="stop" id="flatten-button">'
               'Flatten everything...</button></form><p class="note">Cancels every open order and closes every futures '
               'position with reduce-only market orders, after a confirmation.</p>' if flatten_note is None else
               f'<p class="note" id="flatten-unavailable">{_e(flatten_note)}</p>')
    problems = "".join(f'<p class="bad">{_e(p)}</p>' for p in t["problems"])
    policy = t["policy"]
    body = f"""{problems}<h2>Kill switch</h2><p>Kill flag in the state store: {state} {kill_form}</p>{file_line}
<h2>Flatten</h2>{flatten}
<h2>Daily caps (UTC day)</h2><table id="caps"><tr><th>scope</th><th>rule</th><th>used USD</th><th>limit USD</th></tr>
{caps}</table><h2>Rate limits</h2><table id="rates"><tr><th>scope</th><th>rule</th><th>used</th><th>limit</th>
<th>next free in</th></tr>{rates}</table><h2>Protections</h2><table id="protections"><tr><th>protection</th>
<th>setting</th><th>state</th></tr>{prot}</table><h2>Policy changes waiting for a human</h2>{changes}
<p class="note">Policy in force: {_e(policy.source)} ({_e(policy.sha256)}), mode {_e(policy.policy.mode)}; agents:
{_e(", ".join(t["agents"]) or "none (stdio)")}.</p>"""
    return page("Today", body, active="today", csrf=csrf, message=message)


def _tripped(trips: dict, name: str) -> str:
    hit = trips.get(name)
    if hit is None:
        return '<span class="ok">not tripped</span>'
    return f'<span class="bad">tripped at {iso(hit.get("at"))}: {_e(hit.get("code"))}</span>'


def _change(c: dict, csrf: str) -> str:
    lines = "".join(f"<li>{_e(line)}</li>" for line in c["lines"])
    sha = _e(c["sha256"])
    return (f'<div class="ticket" id="change-{sha}"><strong>{_e(c["path"])}</strong> <span class="note">{sha}, seen '
            f'{iso(c["seen_at"])}</span><p>It loosens the policy in force:</p><ul>{lines}</ul>'
            f'<form method="post" action="/console/policy/{sha}/confirm" class="inline">{hidden(csrf)}'
            f'<button class="go">Confirm: apply it</button></form> <form method="post" '
            f'action="/console/policy/{sha}/reject" class="inline">{hidden(csrf)}<button class="stop">Reject</button>'
            '</form></div>')


def flatten_confirm(csrf: str) -> str:
    return page("Flatten: are you sure?", f"""<p>This cancels <strong>every open order</strong> (spot, futures and
futures conditional orders) and closes <strong>every futures position</strong> with reduce-only market orders, now,
whatever the policy says. It is audited with your session.</p><form method="post" action="/console/flatten">
{hidden(csrf)}<input type="hidden" name="confirm" value="yes"><button class="stop" id="flatten-confirm">Yes, flatten
now</button> <a href="/console/today">No, back</a></form>""", active="today", csrf=csrf)


def flatten_done(steps: list[dict], csrf: str) -> str:
    rows = "".join(f"<tr><td>{_e(s['action'])}</td><td>{_e(s.get('symbol', ''))}</td><td>"
                   f"{'ok' if s['ok'] else _e(s.get('error'))}</td></tr>" for s in steps)
    return page("Flatten: done", f'<table id="flatten-steps"><tr><th>step</th><th>symbol</th><th>result</th></tr>'
                f'{rows or "<tr><td colspan=3>nothing was open</td></tr>"}</table>'
                '<p><a href="/console/today">Back to today</a></p>', active="today", csrf=csrf)


AUDIT_COLS = ("time", "agent", "tool", "event", "code", "outcome")


def audit(rows: list[tuple[int, dict]], filters: dict[str, str], csrf: str, error: str | None) -> str:
    inputs = "".join(f'<label>{k} <input name="{k}" value="{_e(filters.get(k, ""))}" size="14"></label> '
                     for k in ("agent", "tool", "code", "since", "until"))
    trs = "".join(
        f'<tr><td><a href="/console/audit/{n}">{_e(r.get("time"))}</a></td><td>{_e(r.get("agent"))}</td>'
        f'<td>{_e(r.get("tool"))}</td><td>{_e(r.get("event"))}</td>'
        f'<td>{_e((r.get("decision") or {}).get("code"))}</td>'
        f'<td>{_e((r.get("outcome") or {}).get("status"))}</td></tr>' for n, r in rows)
    bad = f'<p class="bad">{_e(error)}</p>' if error else ""
    head = "".join(f"<th>{c}</th>" for c in AUDIT_COLS)
    return page("Audit", f'{bad}<form method="get" action="/console/audit" id="audit-filter">{inputs}'
                '<button>Filter</button></form><p class="note">Times are UTC (ISO, e.g. 2026-11-25T00:00); the newest '
                f'200 matching records, newest first.</p><table id="audit">{head}{trs}</table>',
                active="audit", csrf=csrf)


def audit_record(n: int, record: dict, csrf: str) -> str:
    return page(f"Audit record {n}", f'<pre id="record">{_e(json.dumps(record, indent=2, default=str))}</pre>'
                '<p><a href="/console/audit">Back</a></p>', active="audit", csrf=csrf)


def message_page(title: str, text: str, csrf: str | None = None) -> str:
    return page(title, f"<p>{_e(text)}</p>", csrf=csrf)
