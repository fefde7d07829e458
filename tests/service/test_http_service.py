"""``binance-mcp serve --http`` end to end: a real service process trading the test's simulator (testnet mode with
its keys), real MCP clients over Streamable HTTP with agents' tokens from the real ``agents`` CLI. What reached the
exchange is read from the simulator's own request log, never from the service's answers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env, read_audit, write_policy
from tests.service.helpers import add_agent, agents, http_client, raw, running_service

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}  # ~97 USD
CAPS = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 250}
  binance_futures_change_leverage: {action: deny}
account:
  daily_notional_usd: 300
"""


def service_env(sim, tmp_path: Path, policy: str) -> dict[str, str]:
    sim.since = sim.control("state")["last_seq"]  # the exchange's request log before this test
    return clean_env(BINANCE_MCP_MODE="testnet", BINANCE_MCP_BASE_URL=sim.base_url, BINANCE_API_KEY=sim.api_key,
                     BINANCE_API_SECRET=sim.api_secret, BINANCE_MCP_STATE_DIR=str(tmp_path / "state"),
                     BINANCE_MCP_POLICY=str(write_policy(tmp_path / "policy.yaml", policy)))


def order_posts(sim) -> list[dict]:
    return [e for e in sim.control(f"requests?since={sim.since}") if e["path"] == "/api/v3/order"
            and e["method"] == "POST"]


def code(result) -> str:
    return result.content[0].text.split(":")[0] if result.is_error else "OK"


async def test_tool_sums_count_per_agent_and_account_caps_over_all(sim, tmp_path):
    env = service_env(sim, tmp_path, CAPS)
    a, b = add_agent(env, "alpha"), add_agent(env, "beta")
    with running_service(env, tmp_path / "service.log") as svc:
        async with http_client(svc.url, a) as ca, http_client(svc.url, b) as cb:
            got = [code(await ca.call_tool("binance_spot_place_order", ORDER, raise_on_error=False))
                   for _ in range(3)]
            assert got == ["OK", "OK", "DAILY_NOTIONAL_OVER_LIMIT"]  # alpha's own tool sum: 291 > 250
            first_b = await cb.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(first_b) == "OK"  # beta's tool sum is its own (97), the account's is 291 <= 300
            second_b = await cb.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(second_b) == "DAILY_NOTIONAL_OVER_LIMIT"
            assert "account.daily_notional_usd" in second_b.content[0].text  # the account counts both agents
            status = (await cb.call_tool("binance_policy_status", {})).structured_content
    assert len(order_posts(sim)) == 3
    denied = [r for r in read_audit(tmp_path / "state") if r.get("decision", {}).get("code") ==
              "DAILY_NOTIONAL_OVER_LIMIT"]
    assert [(r["agent"], r["decision"]["rule"]) for r in denied] == [
        ("alpha", "tools.binance_spot_place_order.limits.daily_notional_usd"),
        ("beta", "account.daily_notional_usd")]
    assert status["service"] == {"agent": "beta", "agent_policy": None}
    daily = {d["rule"]: d["used_usd"] for d in status["daily"]}
    assert daily["tools.binance_spot_place_order.limits.daily_notional_usd"].startswith("97.")  # beta's own
    assert daily["account.daily_notional_usd"].startswith("291.")


async def test_an_agents_policy_only_tightens(sim, tmp_path):
    env = service_env(sim, tmp_path, CAPS)
    own = write_policy(tmp_path / "gamma.yaml", """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            limits: {max_notional_usd: 50}
          binance_spot_cancel_all_orders: {action: deny}
        """)
    g = add_agent(env, "gamma", "--policy", str(own))
    plain = add_agent(env, "plain")
    with running_service(env, tmp_path / "service.log") as svc:
        async with http_client(svc.url, g) as cg, http_client(svc.url, plain) as cp:
            listed_g = {t.name for t in await cg.list_tools()}
            listed_p = {t.name for t in await cp.list_tools()}
            big = await cg.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            small = await cg.call_tool("binance_spot_place_order", {**ORDER, "quantity": "0.0005"},
                                       raise_on_error=False)
            lev = await cg.call_tool("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 2},
                                     raise_on_error=False)
            status = (await cg.call_tool("binance_policy_status", {})).structured_content
    # the agent's own deny hides the tool from it only; the service's deny hides it from everyone
    assert "binance_spot_cancel_all_orders" not in listed_g and "binance_spot_cancel_all_orders" in listed_p
    assert "binance_futures_change_leverage" not in listed_g | listed_p
    assert code(big) == "NOTIONAL_OVER_LIMIT"
    assert "(the policy of agent gamma)" in big.content[0].text
    assert code(small) == "OK"
    assert code(lev) == "TOOL_DENIED"  # the agent's `default: allow` cannot loosen the service's deny
    assert len(order_posts(sim)) == 1
    denied = next(r for r in read_audit(tmp_path / "state") if r.get("decision", {}).get("code") ==
                  "NOTIONAL_OVER_LIMIT")
    assert denied["decision"]["rule"] == "agent_policy.tools.binance_spot_place_order.limits.max_notional_usd"
    assert denied["agent"] == "gamma" and denied["policy"]["agent_policy"]["source"] == str(own)
    assert status["service"]["agent"] == "gamma" and status["service"]["agent_policy"].startswith(str(own))
    rules = {t["rule"] for t in status["tools"]}
    assert "agent_policy.tools.binance_spot_place_order" in rules


async def test_approvals_bind_the_agent_that_asked(sim, tmp_path):
    env = service_env(sim, tmp_path, "version: 1\ndefault: allow\ntools:\n  binance_spot_place_order: "
                                     "{action: require_approval}\n")
    a, b = add_agent(env, "asker"), add_agent(env, "other")
    with running_service(env, tmp_path / "service.log") as svc:
        async with http_client(svc.url, a) as ca, http_client(svc.url, b) as cb:
            asked = await ca.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(asked) == "APPROVAL_REQUIRED"
            approval = asked.content[0].text.split("Approval id ")[1].split(":")[0]
            approve = subprocess.run([sys.executable, "-m", "binance_mcp", "approvals", "approve", approval,
                                      "--yes"], env=env, capture_output=True, text=True, timeout=60)
            assert approve.returncode == 0, approve.stderr
            assert "agent: asker" in approve.stdout  # the human sees whose order it is
            stolen = await cb.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(stolen) == "APPROVAL_REQUIRED"
            assert approval not in stolen.content[0].text  # a request of its own, not the approved one
            assert len(order_posts(sim)) == 0
            used = await ca.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(used) == "OK"
    assert len(order_posts(sim)) == 1


async def test_tokens(sim, tmp_path):
    env = service_env(sim, tmp_path, CAPS)
    added = agents(env, "add", "bot")
    assert added.returncode == 0
    token = added.stdout.splitlines()[-1]
    assert token.startswith("bmcp_") and len(token) == 48 and token not in added.stdout.splitlines()[0]
    assert agents(env, "add", "bot").returncode == 2  # one active agent per name
    assert agents(env, "add", "no spaces").returncode == 2
    with running_service(env, tmp_path / "service.log") as svc:
        for bad in (None, "bmcp_" + "x" * 43, token[:-1], "not-a-token"):
            refused = raw(svc.url, bad)
            assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
            assert "mcp-session-id" not in refused.headers  # nothing else: no session, no server information
        opened = raw(svc.url, token)
        assert opened.status_code == 200
        session = opened.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert raw(svc.url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                   session=session).status_code == 202
        assert raw(svc.url, token, listing, session=session).status_code == 200
        async with http_client(svc.url, token) as c:
            assert len(await c.list_tools()) > 1
            revoke = agents(env, "revoke", "bot")
            assert revoke.returncode == 0, revoke.stderr
            with pytest.raises(Exception):  # noqa: B017 - the client reports the 401 as a generic error
                await c.call_tool("binance_spot_price", {"symbol": "BTCUSDT"})
        assert raw(svc.url, token, listing, session=session).status_code == 401  # the open session too
        listed = agents(env, "list").stdout
    assert "bot" in listed and "revoked" in listed
    db = (tmp_path / "state" / "state.db").read_bytes()
    assert token.encode() not in db  # only its hash is stored
    rows = sqlite3.connect(tmp_path / "state" / "state.db").execute("SELECT token_sha256 FROM agents").fetchall()
    import hashlib

    assert rows == [(hashlib.sha256(token.encode()).hexdigest(),)]
    for path in (tmp_path / "state" / "audit.jsonl", svc.log):
        assert token not in path.read_text()
    events = [r["event"] for r in read_audit(tmp_path / "state") if "event" in r]
    assert "agent_added" in events and "agent_revoked" in events


def test_refuses_to_listen_beyond_loopback_without_tls(tmp_path, monkeypatch, capsys):
    """Each refusal comes before the server is built or anything listens (in process: the checks are the CLI's)."""
    import logging

    from binance_mcp.cli import main

    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)  # main() sets the root level
    for name in [k for k in os.environ if k.startswith("BINANCE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BINANCE_MCP_STATE_DIR", str(tmp_path / "state"))

    def serve(*args: str) -> tuple[int, str]:
        code = main(["serve", *args])
        out, err = capsys.readouterr()
        assert out == ""  # nothing on stdout, ever
        return code, err

    code, err = serve("--http", "0.0.0.0:0")
    assert code == 2 and "not a loopback address" in err and "--allow-remote" in err
    code, err = serve("--http", "0.0.0.0:0", "--allow-remote")
    assert code == 2 and "needs TLS" in err
    code, err = serve("--http", "127.0.0.1:0", "--tls-cert", str(tmp_path / "c.pem"))
    assert code == 2 and "--tls-key" in err
    code, err = serve("--http", "localhost")
    assert code == 2 and "HOST:PORT" in err
    monkeypatch.setenv("BINANCE_MCP_POLICY", str(write_policy(tmp_path / "p.yaml", "version: 1\ndefault: sometimes\n")))
    code, err = serve("--http", "127.0.0.1:0")
    assert code == 2 and "p.yaml" in err  # no locked service: it does not start


async def test_bad_requests_get_their_status_and_change_nothing(sim, tmp_path):
    env = service_env(sim, tmp_path, CAPS)
    token, other = add_agent(env, "bot"), add_agent(env, "other")
    with running_service(env, tmp_path / "service.log") as svc:
        before = read_audit(tmp_path / "state")
        host = svc.url.split("/")[2]
        session = raw(svc.url, token).headers["mcp-session-id"]  # bot's session
        cases = {
            "oversized body": (raw(svc.url, token, content=b'{"a": "' + b"x" * (1 << 20) + b'"}'), 413),
            "unknown path": (raw(svc.base + "/admin", token, body=None, method="GET"), 404),
            "wrong method": (raw(svc.url, token, method="PUT"), 405),
            "malformed JSON": (raw(svc.url, token, content=b'{"jsonrpc": "2.0", "id": 1, "meth'), 400),
            "unknown session": (raw(svc.url, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "binance_spot_place_order", "arguments": ORDER}}, session="0" * 32), 404),
            "foreign Host": (raw(svc.url, token, headers={"Host": "rebound.example:80"}), 421),
            "foreign Origin": (raw(svc.url, token, headers={"Origin": "http://evil.example"}), 403),
            "own Origin": (raw(svc.url, token, headers={"Origin": f"http://{host}"}), 200),
            "no token, big body": (raw(svc.url, None, content=b"x" * (2 << 20)), 401),
            "another agent's session": (raw(svc.url, other, {"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
                                            session=session), 404),
            "its own session": (raw(svc.url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                                    session=session), 202),
            "revoked agent's order": (None, None),
        }
        agents(env, "revoke", "bot")
        cases["revoked agent's order"] = (raw(svc.url, token, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                               "params": {"name": "binance_spot_place_order",
                                                                          "arguments": ORDER}}), 401)
        got = {name: answer.status_code for name, (answer, _) in cases.items()}
        assert got == {name: status for name, (_, status) in cases.items()}
        for name, (answer, status) in cases.items():
            if status not in (200, 202):  # a short JSON error, nothing else
                assert len(answer.body) < 200 and "error" in answer.json(), name
        after = read_audit(tmp_path / "state")
    assert order_posts(sim) == []
    # no call was audited (one agent event for the revocation); the two failed authentications are summarised
    new = after[len(before):]
    assert [r.get("event") for r in new] == ["agent_revoked"]
    summary = [r for r in read_audit(tmp_path / "state") if r.get("event") == "auth_failures"]
    assert [(s["count"], s["reasons"]) for s in summary] == [(2, {"no token": 1, "unknown or revoked token": 1})]


async def test_failed_authentications_are_summarised_once_a_minute():
    from binance_mcp.service.http import AuthFailures

    now = [1000.0]
    records: list[dict] = []

    async def audit(record: dict) -> None:
        records.append(record)

    failures = AuthFailures(audit, clock=lambda: now[0])
    for i in range(5000):  # a flood within one minute: counted, not recorded one by one
        now[0] += 0.01
        await failures.note("malformed token" if i % 2 else "no token", f"10.0.0.{i % 3}")
    assert records == []
    now[0] = 1061.0
    await failures.note("no token", "10.0.0.9")
    assert len(records) == 1
    assert records[0]["count"] == 5001 and records[0]["reasons"] == {"no token": 2501, "malformed token": 2500}
    assert set(records[0]["clients"]) == {"10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.9"}
    await failures.flush()
    await failures.flush()  # nothing new: nothing written
    assert len(records) == 1 and failures.total == 5001


async def test_a_policy_change_that_loosens_waits_for_a_human(sim, tmp_path):
    strict = "version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    limits: {max_notional_usd: 150}\n"
    env = service_env(sim, tmp_path, strict)
    token = add_agent(env, "bot")
    two = {**ORDER, "quantity": "0.002"}  # ~194 USD
    with running_service(env, tmp_path / "service.log") as svc:
        async with http_client(svc.url, token) as c:
            write_policy(tmp_path / "policy.yaml", strict.replace("150", "1000"))
            held = await c.call_tool("binance_spot_place_order", two, raise_on_error=False)
            assert code(held) == "NOTIONAL_OVER_LIMIT"  # the old, stricter policy is still in force
            pending = (await c.call_tool("binance_policy_status", {})).structured_content["service"][
                "pending_policy_changes"]
            assert len(pending) == 1 and "150 -> 1000" in " ".join(pending[0]["lines"])
            listed = subprocess.run([sys.executable, "-m", "binance_mcp", "policy", "confirm"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert listed.returncode == 1 and pending[0]["sha256"] in listed.stdout
            confirm = subprocess.run([sys.executable, "-m", "binance_mcp", "policy", "confirm", pending[0]["sha256"]],
                                     env=env, capture_output=True, text=True, timeout=60)
            assert confirm.returncode == 0, confirm.stderr
            ran = await c.call_tool("binance_spot_place_order", two, raise_on_error=False)
            assert code(ran) == "OK"
            write_policy(tmp_path / "policy.yaml", strict.replace("150", "50"))  # tighter: at once
            small = await c.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            assert code(small) == "NOTIONAL_OVER_LIMIT"
    assert len(order_posts(sim)) == 1
    events = [r["event"] for r in read_audit(tmp_path / "state") if r.get("event", "").startswith("policy")]
    assert events == ["policy_change_pending", "policy_confirm", "policy_change_confirmed", "policy_reload"]


async def test_a_token_store_that_cannot_be_read_refuses_everyone_and_logs_once_a_minute(caplog):
    from binance_mcp.service.http import AuthFailures, ServiceGate

    now = [0.0]
    records: list[dict] = []

    async def audit(record: dict) -> None:
        records.append(record)

    async def broken(token: str):
        raise OSError("disk I/O error")

    reached: list[dict] = []

    async def app(scope, receive, send):  # what would run behind the gate: never reached here
        reached.append(scope)

    gate = ServiceGate(app, authenticate=broken, failures=AuthFailures(audit, clock=lambda: now[0]),
                       hosts=("127.0.0.1",), origins=())
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/mcp", "client": ("127.0.0.1", 1),
             "headers": [(b"host", b"127.0.0.1:8765"), (b"authorization", b"Bearer bmcp_" + b"a" * 43)]}
    with caplog.at_level("ERROR", logger="binance_mcp.service"):
        for _ in range(50):
            now[0] += 0.5
            await gate(dict(scope), receive, send)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [401] * 50 and reached == []
    assert len([r for r in caplog.records if "cannot be checked" in r.getMessage()]) == 1  # 25 s: one line
    assert len(records) == 0  # the summary comes with the minute
