"""The human console in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by Selenium
against a real ``serve --http`` on the test's simulator, with a real agent over MCP. What reached the exchange is read
from the simulator (python-binance against it), never from the console's or the service's answers. The same run
writes the screenshots docs/console.md shows (docs/console-*.png).

In CI (.ci/run sets BINANCE_MCP_BROWSER_REQUIRED=1) a missing browser fails the module instead of skipping it."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import clean_env, point_at, read_audit, write_policy
from tests.service.helpers import http_client, raw, running_service

DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "correct horse battery staple"
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order: {action: require_approval}
  binance_futures_place_order:
    rate_limit: {max: 30, window: 60}
    limits: {daily_notional_usd: 2000}
account:
  daily_notional_usd: 5000
  protections: {max_daily_loss_usd: 1000}
"""


def _browser_paths() -> tuple[str, str] | None:
    found = shutil.which("chromium"), shutil.which("chromedriver")
    return found if all(found) else None


@pytest.fixture(scope="module")
def console(shared_sim, tmp_path_factory):
    paths = _browser_paths()
    if paths is None:
        if os.environ.get("BINANCE_MCP_BROWSER_REQUIRED") == "1":
            pytest.fail("chromium and chromedriver are required here (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver on this machine (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    sim = shared_sim
    sim.control("reset", {})
    tmp = tmp_path_factory.mktemp("console")
    env = clean_env(BINANCE_MCP_MODE="testnet", BINANCE_MCP_BASE_URL=sim.base_url, BINANCE_API_KEY=sim.api_key,
                    BINANCE_API_SECRET=sim.api_secret, BINANCE_MCP_STATE_DIR=str(tmp / "state"),
                    BINANCE_MCP_POLICY=str(write_policy(tmp / "policy.yaml", POLICY)))
    token = cli("agents", "add", "bot", "--state-dir", env["BINANCE_MCP_STATE_DIR"]).splitlines()[-1]
    cli("console", "set-password", "--state-dir", env["BINANCE_MCP_STATE_DIR"], stdin=PASSWORD + "\n")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    with running_service(env, tmp / "service.log") as svc:
        driver = webdriver.Chrome(service=DriverService(executable_path=paths[1]), options=options)
        try:
            yield {"svc": svc, "env": env, "token": token, "driver": driver, "sim": sim, "state": tmp / "state"}
        finally:
            driver.quit()


def cli(*argv: str, stdin: str = "") -> str:
    """The CLI in this process (a new interpreter costs seconds on a loaded machine); its stdout."""
    from binance_mcp.cli import main

    out, saved = io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(stdin)  # not a terminal: set-password reads one line
    try:
        with contextlib.redirect_stdout(out):
            assert main(list(argv)) == 0
    finally:
        sys.stdin = saved
    return out.getvalue()


def shot(driver, name: str) -> None:
    """The whole page: the viewport made as tall as the page for the shot (Chrome's device metrics)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": min(height, 2400),
                                                                  "deviceScaleFactor": 1, "mobile": False})
    driver.save_screenshot(str(DOCS / f"console-{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def navigate(driver, element) -> None:
    """Click what submits a form or follows a link, and wait for the next page to have loaded (the old one gone)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait = WebDriverWait(driver, 10)
    wait.until(ec.staleness_of(old))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def code(result) -> str:
    return result.content[0].text.split(":")[0] if result.is_error else "OK"


def exchange(sim):
    from binance.client import Client

    return point_at(Client(sim.api_key, sim.api_secret, ping=False), sim.base_url)


def post(base: str, path: str, body: str, cookie: str | None = None, headers: dict | None = None):
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if cookie:
        h["Cookie"] = cookie
    try:
        conn.request("POST", path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


async def test_the_console_in_a_browser(console):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc, sim, env = console["driver"], console["svc"], console["sim"], console["env"]
    base = svc.base
    wait = WebDriverWait(d, 10)
    client = exchange(sim)
    spot_before = len(sim.sim.spot.orders)

    # An approval link before login: the login page, and back to the approval after it.
    d.get(f"{base}/console/today")
    assert "/console/login" in d.current_url
    d.find_element(By.ID, "password").send_keys("not the password")
    navigate(d, d.find_element(By.ID, "login-button"))
    assert "Wrong password" in d.find_element(By.ID, "login-error").text  # refused
    shot(d, "login")
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    navigate(d, d.find_element(By.ID, "login-button"))
    wait.until(ec.url_contains("/console/today"))

    # The approvals page is open; an agent's order asks for approval: its ticket appears without a reload.
    d.get(f"{base}/console/approvals")
    d.execute_script("window.__same_page = 1")
    async with http_client(svc.url, console["token"]) as agent:
        asked = await agent.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert code(asked) == "APPROVAL_REQUIRED"
        first = asked.content[0].text.split("Approval id ")[1].split(":")[0]
        ticket = wait.until(ec.presence_of_element_located((By.ID, f"ticket-{first}")))
        assert d.execute_script("return window.__same_page") == 1  # polled in, not reloaded
        text = ticket.text
        for shown in ("bot", "binance_spot_place_order", "BTCUSDT", "BUY", "LIMIT", "0.001", "90000", "USD",
                      "tools.binance_spot_place_order", "s left"):
            assert shown in text, shown
        shot(d, "approvals")
        navigate(d, d.find_element(By.ID, f"approve-{first}"))
        wait.until(ec.url_contains(f"/console/approvals/{first}"))
        assert "approved" in d.find_element(By.ID, "message").text
        ran = await agent.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert code(ran) == "OK"
        again = await agent.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert code(again) == "APPROVAL_REQUIRED"  # the approval ran once; the same order asks anew
        assert len(sim.sim.spot.orders) == spot_before + 1
        second = again.content[0].text.split("Approval id ")[1].split(":")[0]

        # The one-approval page (the link agents' users get) denies the second.
        d.get(f"{base}/console/approvals/{second}")
        shot(d, "approval")
        navigate(d, d.find_element(By.ID, f"deny-{second}"))
        wait.until(ec.url_contains(f"/console/approvals/{second}"))
        assert d.find_element(By.ID, f"ticket-{second}").get_attribute("data-status") == "denied"
        denied = await agent.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert code(denied) == "APPROVAL_DENIED"
        assert len(sim.sim.spot.orders) == spot_before + 1

        # The kill switch: on from the today page, the next order is denied; off again, it runs.
        futures_order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
        d.get(f"{base}/console/today")
        navigate(d, d.find_element(By.ID, "kill-button"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "kill-state"), "ON"))
        killed = await agent.call_tool("binance_futures_place_order", futures_order, raise_on_error=False)
        assert code(killed) == "KILL_SWITCH"
        assert "kill flag" in killed.content[0].text
        assert not client.futures_get_open_orders() and not any(
            float(p["positionAmt"]) for p in client.futures_position_information())

        # A policy change that loosens waits for a human: the today page shows what loosens; confirm applies it.
        write_policy(Path(env["BINANCE_MCP_POLICY"]), POLICY.replace("5000", "6000"))
        held = (await agent.call_tool("binance_policy_status", {})).structured_content
        assert {x["cap_usd"] for x in held["daily"]} == {"2000", "5000"}
        d.get(f"{base}/console/today")
        assert "not tripped" in d.find_element(By.ID, "protections").text
        change = d.find_element(By.CSS_SELECTOR, "[id^=change-]")
        assert "daily_notional_usd" in change.text and "6000" in change.text
        shot(d, "today")
        navigate(d, change.find_element(By.CSS_SELECTOR, "button.go"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "confirmed"))
        applied = (await agent.call_tool("binance_policy_status", {})).structured_content
        assert {x["cap_usd"] for x in applied["daily"]} == {"2000", "6000"}

        navigate(d, d.find_element(By.ID, "kill-button"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "kill-state"), "off"))
        opened = await agent.call_tool("binance_futures_place_order", futures_order, raise_on_error=False)
        assert code(opened) == "OK"
        resting = await agent.call_tool("binance_futures_place_order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "50000",
            "timeInForce": "GTC"}, raise_on_error=False)
        assert code(resting) == "OK", resting.content[0].text

    # Flatten, after a confirmation: no open order and no position left on the exchange.
    assert client.futures_get_open_orders()
    d.get(f"{base}/console/today")
    caps = d.find_element(By.ID, "caps").text
    assert "account" in caps and "6000" in caps
    assert "bot tools.binance_futures_place_order.limits.daily_notional_usd" in caps and "2000" in caps
    navigate(d, d.find_element(By.ID, "flatten-button"))
    navigate(d, d.find_element(By.ID, "flatten-confirm"))
    steps = wait.until(ec.presence_of_element_located((By.ID, "flatten-steps"))).text
    assert "close futures position" in steps
    assert client.futures_get_open_orders() == []
    assert not any(float(p["positionAmt"]) for p in client.futures_position_information())
    assert not client.get_open_orders()

    # The audit page: filtered by code, one record in full.
    d.get(f"{base}/console/audit?agent=bot")
    assert len(d.find_elements(By.CSS_SELECTOR, "#audit tr")) > 5
    shot(d, "audit")
    d.get(f"{base}/console/audit?code=KILL_SWITCH")
    rows = d.find_elements(By.CSS_SELECTOR, "#audit tr")
    assert len(rows) == 2 and "binance_futures_place_order" in rows[1].text  # the header and the one denial
    navigate(d, rows[1].find_element(By.TAG_NAME, "a"))
    assert '"KILL_SWITCH"' in d.find_element(By.ID, "record").text

    # What the audit log holds: the human's session on each decision, the kill flag, the flatten.
    records = read_audit(console["state"])
    events = {r.get("event"): r for r in records if r.get("channel") == "console"}
    for event in ("console_login", "console_login_failed", "approval_approved", "approval_denied", "kill_flag_on",
                  "kill_flag_off", "flatten_started", "flatten_done", "policy_confirm"):
        assert event in events, event
    assert events["approval_approved"]["by"].startswith("console session ")
    assert PASSWORD not in (console["state"] / "audit.jsonl").read_text()

    # What the state store holds: who decided each approval; the session only as its hash.
    db = sqlite3.connect(console["state"] / "state.db")
    try:
        decided = dict(db.execute("SELECT id, decided_by FROM approvals WHERE id IN (?, ?)", (first, second)))
        sessions = [r[0] for r in db.execute("SELECT id_sha256 FROM console_sessions")]
    finally:
        db.close()
    assert decided[first].startswith("console session ") and decided[second] == decided[first]
    sid = d.get_cookie("bmcp_console")["value"]
    assert hashlib.sha256(sid.encode()).hexdigest() in sessions and sid not in sessions

    # A form posted without its CSRF token: 403 and nothing changes (here: with the browser's session cookie).
    cookie = f"bmcp_console={d.get_cookie('bmcp_console')['value']}"
    assert d.get_cookie("bmcp_console")["httpOnly"] and d.get_cookie("bmcp_console")["sameSite"] == "Strict"
    status, _ = post(base, "/console/kill", "to=on", cookie)
    assert status == 403
    status, _ = post(base, "/console/kill", "to=on&csrf=forged", cookie)
    assert status == 403
    d.get(f"{base}/console/today")
    assert d.find_element(By.ID, "kill-state").text == "off"
    status, _ = post(base, "/console/login", f"password={PASSWORD.replace(' ', '+')}")  # no CSRF cookie or field
    assert status == 403

    # An agent's bearer token opens nothing on the console; the console's cookie opens nothing on /mcp.
    bearer = raw(f"{base}/console/approvals", console["token"], body=None, method="GET")
    assert bearer.status_code == 401
    on_mcp = raw(svc.url, None, headers={"Cookie": cookie})
    assert on_mcp.status_code == 401
