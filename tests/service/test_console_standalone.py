"""``binance-mcp console`` for stdio users: a process of its own on a paper server's state directory, reached over
real HTTP on 127.0.0.1 (http.client, no browser: tests/service/test_console_browser.py drives one). The one-time login
link, the login rate limit, its own Host/Origin/bearer checks, and flatten refused in paper mode with the reason."""

from __future__ import annotations

import contextlib
import http.client
import io
import re
import subprocess
import sys
from urllib.parse import urlencode, urlsplit

import pytest

from tests.helpers import clean_env, read_audit

PASSWORD = "a long console password"


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    from binance_mcp.cli import main

    out, err, saved = io.StringIO(), io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


class Browserless:
    """Requests as a browser would send them to the console, with its cookie jar."""

    def __init__(self, base: str) -> None:
        self.parts = urlsplit(base)
        self.cookies: dict[str, str] = {}

    def go(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=30)
        h = {"Host": self.parts.netloc, **(headers or {})}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            text = resp.read().decode()
            set_cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
            for c in set_cookies:
                name, _, rest = c.partition("=")
                value = rest.split(";", 1)[0].strip('"')
                if "max-age=0" in c.lower() or "expires=thu, 01 jan 1970" in c.lower():
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
            return resp.status, text, resp.getheader("location"), set_cookies
        finally:
            conn.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    state = tmp_path_factory.mktemp("console-standalone") / "state"
    env = clean_env(BINANCE_MCP_STATE_DIR=str(state))  # no keys: paper mode
    assert cli("console", "set-password", "--state-dir", str(state), stdin=PASSWORD + "\n")[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "console", "--listen", "127.0.0.1:0"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)/console", line)
        assert m, line + proc.stderr.read()
        yield m.group(1), state
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_login_link_works_once_and_the_page_says_why_flatten_is_not_here(standalone):
    base, state = standalone
    b = Browserless(base)
    status, _, location, _ = b.go("GET", "/console/approvals/abc123")
    assert status == 303 and location == "/console/login?next=/console/approvals/abc123"
    code, out, err = cli("console", "login-link", "--state-dir", str(state), "--url", base, "--next",
                         "/console/today")
    assert code == 0, err
    link = out.strip()
    assert link.startswith(f"{base}/console/link/") and link.endswith("?next=/console/today")
    path = link[len(base):]
    status, html, _, _ = b.go("GET", path)  # a page with a button: a link prefetcher does not use it up
    assert status == 200 and "bmcp_console" not in b.cookies
    token = path.split("/console/link/")[1].split("?")[0]
    form = {"csrf": csrf_of(html), "token": token, "next": "/console/today"}
    status, _, location, cookies = b.go("POST", "/console/link", form)
    assert status == 303 and location == "/console/today"
    session = next(c for c in cookies if c.startswith("bmcp_console="))
    assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict")
    assert "Path=/console" in session and "Secure" not in session  # plain http on loopback
    status, html, _, _ = b.go("GET", "/console/today")
    assert status == 200
    assert 'id="flatten-unavailable"' in html and "paper mode" in html and 'id="flatten-button"' not in html
    status, _, _, _ = b.go("POST", "/console/flatten", {"csrf": csrf_of(html), "confirm": "yes"})
    assert status == 409
    again = Browserless(base)
    status, html, _, _ = again.go("GET", path)
    status, _, _, _ = again.go("POST", "/console/link", {"csrf": csrf_of(html), "token": token})
    assert status == 401 and "bmcp_console" not in again.cookies  # used up
    events = [r["event"] for r in read_audit(state) if r.get("channel") in ("console", "cli")]
    assert "console_login_link" in events and "console_login" in events and "console_login_failed" in events
    assert token not in (state / "audit.jsonl").read_text()


def test_the_standalone_console_serves_this_machine_only():
    code, _, err = cli("console", "--listen", "0.0.0.0:8766")
    assert code == 2 and "127.0.0.1" in err


def test_set_password_refuses_a_short_one_and_kill_status_says_who(tmp_path):
    state = str(tmp_path / "s")
    code, _, err = cli("console", "set-password", "--state-dir", state, stdin="short\n")
    assert code == 2 and "at least 12" in err
    assert cli("kill", "status", "--state-dir", state)[1].startswith("kill flag: off (last set by - at -)")
    assert cli("kill", "on", "--state-dir", state)[0] == 0
    out = cli("kill", "status", "--state-dir", state)[1]
    assert out.startswith("kill flag: ON (last set by ") and "(binance-mcp kill)" in out


def test_a_rejected_policy_change_is_never_applied(standalone):
    """Reject on the today page: the change is rejected in the store, so the policy file's holder (what every server
    runs) keeps the policy in force, also on a later reload of the same content."""
    import time as clock

    from binance_mcp.policy.confirm_state import StoreConfirmer
    from binance_mcp.policy.loader import load_file
    from binance_mcp.policy.policy_file import PolicyFile
    from binance_mcp.policy.state import StateStore
    from tests.helpers import write_policy

    base, state = standalone
    policy = write_policy(state.parent / "policy.yaml", "version: 1\ndefault: allow\naccount:\n  "
                                                        "daily_notional_usd: 100\n")
    store = StateStore(state / "state.db", clock.time)
    held = PolicyFile(load_file(policy), policy, clock.time, lambda record: None,
                      confirm_loosening=StoreConfirmer(store))
    write_policy(policy, "version: 1\ndefault: allow\naccount:\n  daily_notional_usd: 900\n")
    assert held.reload().policy.account.daily_notional_usd == 100  # waits for a human
    sha = held.pending["sha256"]
    b = Browserless(base)
    code, out, _ = cli("console", "login-link", "--state-dir", str(state), "--url", base)
    path = out.strip()[len(base):]
    status, html, _, _ = b.go("GET", path)
    b.go("POST", "/console/link", {"csrf": csrf_of(html), "token": path.rsplit("/", 1)[1]})
    status, html, _, _ = b.go("GET", "/console/today")
    assert f'id="change-{sha}"' in html and "100 -&gt; 900" in html
    status, _, location, _ = b.go("POST", f"/console/policy/{sha}/reject", {"csrf": csrf_of(html)})
    assert status == 303 and "rejected" in location
    assert store.policy_change_status(str(policy), sha) == "rejected"
    assert held.reload().policy.account.daily_notional_usd == 100
    assert held.reload().policy.account.daily_notional_usd == 100  # the same content again: still not applied
    status, _, _, _ = b.go("POST", f"/console/policy/{sha}/confirm", {"csrf": csrf_of(html)})
    assert status == 409  # a rejected change cannot be confirmed afterwards: a new edit is a new change
    store.close()


def test_its_own_gate_and_the_login_rate_limit(standalone):  # last: it uses up this client's login attempts
    base, state = standalone
    b = Browserless(base)
    assert b.go("GET", "/console/login", headers={"Host": "rebound.example:8766"})[0] == 421
    assert b.go("GET", "/console/login", headers={"Authorization": "Bearer bmcp_" + "x" * 43})[0] == 401
    assert b.go("POST", "/console/login", {"password": PASSWORD},
                headers={"Origin": "http://evil.example"})[0] == 403
    assert b.go("GET", "/mcp")[0] == 404
    status, html, _, _ = b.go("GET", "/console/login")
    csrf = csrf_of(html)
    # every attempt counts (10 per client in 5 minutes): those of the test before too, one audit record each
    before = sum(1 for r in read_audit(state) if r.get("event") in ("console_login", "console_login_failed"))
    assert before < 10
    got = [b.go("POST", "/console/login", {"csrf": csrf, "password": f"wrong {n}"})[0] for n in range(10 - before)]
    assert got == [401] * (10 - before)
    status, _, _, _ = b.go("POST", "/console/login", {"csrf": csrf, "password": PASSWORD})
    assert status == 429 and "bmcp_console" not in b.cookies  # even the right password: not checked now
    assert any(r.get("event") == "console_login_limited" for r in read_audit(state))
