"""The guard's persistent state and its failure modes: daily sums across a restart, a state database or audit log
that cannot be written (fail closed for orders, reads keep working), a policy that cannot be loaded at start-up
(the server starts locked), and every registered tool wrapped by the guard."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from decimal import Decimal

import pytest

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.errors import ExchangeRejected
from binance_mcp.exchange.codes import definitely_not_executed as _definitely_not_executed
from binance_mcp.server import OpenGuard, build_server
from binance_mcp.settings import load_settings
from tests.helpers import stdio_client
from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, SERVE, limit_buy, serve, server_env, write_policy

ORDER = "binance_spot_place_order"
CAPPED = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 300}
account:
  daily_notional_usd: 1000
"""


@pytest.mark.asyncio
async def test_daily_sums_survive_a_restart(tmp_path, store_backend):
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", CAPPED)
    async with serve(state, policy) as first:
        for _ in range(3):
            await first.ok(ORDER, limit_buy())  # 97.00001 USD each
        await first.denied(ORDER, limit_buy(), "DAILY_NOTIONAL_OVER_LIMIT")
        used = await first.daily_used()
        account = await first.daily_used("account.daily_notional_usd")
    assert used == account == 3 * LIMIT_NOTIONAL

    async with serve(state, policy) as second:  # a new process (and a fresh paper exchange), the same state dir
        assert await second.daily_used() == used
        assert await second.daily_used("account.daily_notional_usd") == account
        text = await second.denied(ORDER, limit_buy(), "DAILY_NOTIONAL_OVER_LIMIT")
        assert "9.00 USD remain today" in text, text
        await second.ok(ORDER, limit_buy(qty="0.00009"))  # 8.73 USD still fits
        assert await second.daily_used() == 3 * LIMIT_NOTIONAL + Decimal("0.00009") * Decimal("97000.01")


@pytest.mark.asyncio
async def test_a_locked_state_database_denies_orders_and_reads_keep_working(tmp_path):
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", CAPPED)
    async with serve(state, policy) as paper:
        await paper.ok(ORDER, limit_buy())
        lock = sqlite3.connect(state / "state.db", timeout=0, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            text = await paper.denied(ORDER, limit_buy(), "POLICY_ERROR")
            assert "state database" in text and "denied to be safe" in text, text
            assert (await paper.ok("binance_spot_balances"))["balances"]
            await paper.ok("binance_spot_price", {"symbol": "BTCUSDT"})
            assert paper.calls(ORDER)[-1]["decision"]["code"] == "POLICY_ERROR"
            assert paper.calls(ORDER)[-1]["outcome"] == {"status": "not_run"}
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        await paper.ok(ORDER, limit_buy())  # the lock is gone: orders run again, and were counted right
        assert await paper.daily_used() == 2 * LIMIT_NOTIONAL


@pytest.mark.asyncio
async def test_a_state_database_that_cannot_be_opened_fails_closed(tmp_path):
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", CAPPED)
    (state / "state.db").mkdir(parents=True)  # not a database
    async with serve(state, policy) as paper:
        text = await paper.denied(ORDER, limit_buy(), "POLICY_ERROR")
        assert "state.db" in text, text
        await paper.ok("binance_spot_balances")
        status = await paper.status()  # a read tool: it answers, and says the store is away
        assert status["state_error"].startswith("the state store cannot be read"), status
        assert "calls that trade are denied" in status["state_error"] and status["daily"] == []
        assert paper.calls(ORDER)[-1]["outcome"] == {"status": "not_run"}


@pytest.mark.asyncio
async def test_an_audit_log_that_cannot_be_written_stops_orders_not_reads(tmp_path):
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", "version: 1\ndefault: allow\n")
    (state / "audit.jsonl").mkdir(parents=True)  # nothing can be appended to it
    async with serve(state, policy) as paper:
        text = await paper.denied(ORDER, limit_buy(), "POLICY_ERROR")
        assert "audit log" in text, text
        await paper.denied("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"}, "POLICY_ERROR")
        assert (await paper.ok("binance_spot_balances"))["balances"]


@pytest.mark.asyncio
async def test_an_unwritable_state_directory_is_reported_at_start_up_and_reads_still_work(tmp_path):
    """Root ignores file modes, so the directory is made impossible: its parent is a regular file. The problem is
    on stderr at start-up (before any call) and in binance_policy_status; reads work, an order is denied."""
    (tmp_path / "file").write_text("a regular file, not a directory")
    state = tmp_path / "file" / "state"
    policy = write_policy(tmp_path / "policy.yaml", "version: 1\ndefault: allow\n")
    err = tmp_path / "stderr.txt"
    async with stdio_client(server_env(state, policy), stderr=err, timeout=60) as client:
        await client.list_tools()  # initialised: start-up is over, no tool has been called yet
        startup = err.read_text()
        assert f"the state directory {state} cannot be written" in startup, startup
        assert "read tools still work" in startup
        status = (await client.call_tool("binance_policy_status", {})).structured_content
        assert status["locked"] is False and status["mode"] == "enforce"
        assert status["state_error"] and str(state) in status["state_error"], status
        assert "Not a directory" in status["state_error"]
        price = await client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"}, raise_on_error=False)
        assert not price.is_error and price.structured_content["prices"][0]["symbol"] == "BTCUSDT"
        balances = await client.call_tool("binance_spot_balances", {}, raise_on_error=False)
        assert not balances.is_error and balances.structured_content["balances"]
        order = await client.call_tool(ORDER, limit_buy(), raise_on_error=False)
        assert order.is_error and order.content[0].text.startswith("POLICY_ERROR: "), order.content[0].text


@pytest.mark.asyncio
async def test_a_writable_state_directory_reports_no_state_error(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", "version: 1\ndefault: allow\n")
    async with serve(tmp_path / "state", policy) as paper:
        assert "state_error" not in await paper.status()  # a field that is not set is left out
        assert sorted(p.name for p in (tmp_path / "state").iterdir() if p.name.startswith(".write-test")) == []


@pytest.mark.asyncio
async def test_a_server_never_trades_on_a_policy_it_cannot_load(tmp_path):
    """Over stdio it starts locked (tests/policy/test_locked.py has the whole contract); ``serve --check`` exits 2."""
    broken = write_policy(tmp_path / "broken.yaml", """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            limits: {max_leverage: 5}
        """)
    for policy, where in ((broken, f"{broken}:5"), (tmp_path / "missing.yaml", "no such policy file")):
        env = server_env(tmp_path / "state", policy)
        async with stdio_client(env, timeout=60) as client:
            assert [t.name for t in await client.list_tools()] == ["binance_policy_status"]
            status = (await client.call_tool("binance_policy_status", {})).structured_content
            assert status["locked"] is True and where in status["load_error"], status
            r = await client.call_tool(ORDER, limit_buy(), raise_on_error=False)
            assert r.is_error and r.content[0].text == f"POLICY_ERROR: {status['load_error']}"
        proc = subprocess.run([sys.executable, *SERVE, "--check"], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "the policy cannot be loaded" in proc.stderr and where in proc.stderr, proc.stderr
        assert proc.stdout == ""


def guard_gaps(tools) -> list[str]:
    """Names of registered tools whose runner the guard did not wrap."""
    return [t.name for t in tools if not getattr(getattr(t, "runner", None), "__binance_guarded__", False)]


@pytest.mark.asyncio
async def test_every_registered_tool_is_guarded(tmp_path):
    settings = load_settings({"BINANCE_MCP_STATE_DIR": str(tmp_path), "BINANCE_MCP_PAPER_TICK_SECONDS": "0"})
    mcp = build_server(settings)
    registered = await mcp.list_tools(run_middleware=False)  # everything, hidden tools included
    names = [t.name for t in registered]
    assert len(names) == len(set(names)) == 36 == len(ALL_TOOLS)
    assert set(names) == {s.name for s in ALL_TOOLS}
    assert guard_gaps(registered) == []
    assert mcp.binance_guard.wrapped == set(names)
    # The built-in read-only policy hides tools from the list, but they are still registered and guarded.
    assert len(await mcp.list_tools()) < 36

    # The check can fail: the same server without the guard is caught.
    bare = build_server(settings, guard=OpenGuard())
    assert len(guard_gaps(await bare.list_tools(run_middleware=False))) == 35


def test_only_a_definite_refusal_counts_as_not_executed():
    """An order refused with HTTP 4xx released its reservation; a 5xx or an "execution status unknown" code may
    have been executed and keeps it."""
    def refused(status, code):
        return _definitely_not_executed(ExchangeRejected("x", binance_code=code, http_status=status))

    assert refused(400, -2010) and refused(400, -1013) and refused(429, -1015)
    assert not refused(503, -1008) and not refused(500, -1001) and not refused(400, -1007)
    assert not refused(None, -1006) and not refused(408, -1)
