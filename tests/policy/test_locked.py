"""A server never trades on a policy or a configuration it could not load: over stdio it starts *locked* (a client
would show only "Connection closed" for a server that exits). tools/list offers only binance_policy_status, which
returns the load error (file, line, key); any other call, whatever its name or arguments, is POLICY_ERROR with the
same text, audited, and nothing reaches the exchange. ``serve --check`` keeps the old fail-fast (exit 2) for
scripts.

Every server here is ``binance-mcp serve`` as a subprocess over stdio. The strong check that nothing reached the
exchange points the server at a simulator the test runs itself (``BINANCE_MCP_BASE_URL`` with its keys) and reads
that simulator's request log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from binance_mcp.catalog import ALL_TOOLS
from tests.helpers import SERVE, clean_env, read_audit, stdio_client, write_policy
from tests.policy.test_guard_helpers import limit_buy

STATUS = "binance_policy_status"
# Calls a locked server refuses: a trade, a read, the diagnostics, arguments that do not even validate, a tool
# name the server does not have. Each must be POLICY_ERROR with the load error's text.
REFUSED = [
    ("binance_spot_place_order", limit_buy()),
    ("binance_spot_price", {"symbol": "BTCUSDT"}),
    ("binance_account_status", {}),
    ("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 3}),
    ("binance_spot_price", {"symbol": "no way"}),
    ("binance_spot_place_order", {"symbol": "BTCUSDT", "bogus": True}),
    ("binance_no_such_tool", {"x": 1}),
]
# (policy text, the line the error names, the key it names or None): a YAML error, an unknown key, a bad value, a
# limit that cannot apply to its tool.
BROKEN = {
    "yaml-error": ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    limits: {max_notional_usd: [\n",
                   6, None),
    "unknown-key": ("version: 1\ndefault: allow\nallow_everything: true\n", 3, "allow_everything"),
    "bad-value": ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    limits:\n"
                  "      max_notional_usd: -5\n", 6, "tools.binance_spot_place_order.limits.max_notional_usd"),
    "wrong-tool": ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    limits: {max_leverage: 5}\n",
                   5, "tools.binance_spot_place_order.limits.max_leverage"),
}


def sim_env(sim, state_dir: Path, policy: Path | str, **extra: str) -> dict[str, str]:
    """A server pointed at the test's own simulator (its key and secret): every request it sends is in that log."""
    return clean_env(**{"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret,
                        "BINANCE_MCP_BASE_URL": sim.base_url, "BINANCE_MCP_STATE_DIR": str(state_dir),
                        "BINANCE_MCP_POLICY": str(policy), "BINANCE_MCP_TIMEOUT": "2", **extra})


async def assert_locked(env: dict[str, str], stderr: Path, *fragments: str) -> str:
    """Start the server, check it is locked and refuses everything with the status's text; that text."""
    async with stdio_client(env, stderr=stderr, timeout=60) as client:
        assert [t.name for t in await client.list_tools()] == [STATUS]
        status = await client.call_tool(STATUS, {}, raise_on_error=False)
        assert not status.is_error, status.content[0].text
        s = status.structured_content
        assert s["locked"] is True and s["mode"] == "locked", s
        assert [t["tool"] for t in s["tools"]] == [STATUS] and s["denied"] == len(ALL_TOOLS) - 1
        assert s["daily"] == [] and s["rate_limits"] == []
        text = s["load_error"]
        for fragment in fragments:
            assert fragment in text, (fragment, text)
        assert "restart the server" in text, text
        for name, args in REFUSED:
            r = await client.call_tool(name, args, raise_on_error=False)
            assert r.is_error, (name, r.structured_content)
            assert r.content[0].text == f"POLICY_ERROR: {text}", (name, r.content[0].text)
    return text


def assert_refusals_audited(state_dir: Path, text: str) -> None:
    records = read_audit(state_dir)
    assert [r["event"] for r in records if "event" in r] == ["server_locked"]
    calls = [r for r in records if "call_id" in r]
    refused = [(r["tool"], r["args"]) for r in calls if r["decision"]["code"] == "POLICY_ERROR"]
    assert refused == [(name, args) for name, args in REFUSED]
    assert all(r["decision"]["reason"] == text and r["outcome"] == {"status": "not_run"} for r in calls
               if r["decision"]["code"] == "POLICY_ERROR")
    assert [r["tool"] for r in calls if r["decision"]["code"] == "ALLOWED"] == [STATUS]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(BROKEN))
async def test_a_broken_policy_locks_the_server_and_nothing_reaches_the_exchange(sim, tmp_path, kind):
    text, line, key = BROKEN[kind]
    policy = write_policy(tmp_path / f"{kind}.yaml", text)
    before = sim.control("state")["last_seq"]
    state, err = tmp_path / "state", tmp_path / "stderr.txt"
    shown = await assert_locked(sim_env(sim, state, policy), err, f"{policy}:{line}:", *([key] if key else []))
    assert "the policy cannot be loaded" in shown
    assert sim.control(f"requests?since={before}") == []  # not one request: not even the time or exchangeInfo
    assert_refusals_audited(state, shown)
    log = err.read_text()
    assert "the policy cannot be loaded" in log and f"{policy}:{line}:" in log and "starting LOCKED" in log, log
    assert "Traceback" not in log, log
    assert sim.api_secret not in log and sim.api_secret not in (state / "audit.jsonl").read_text()


@pytest.mark.asyncio
async def test_a_missing_policy_file_locks_in_paper_mode_without_starting_the_simulator(tmp_path):
    missing = tmp_path / "missing.yaml"
    env = clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state"), BINANCE_MCP_POLICY=str(missing))
    text = await assert_locked(env, tmp_path / "stderr.txt", str(missing), "no such policy file")
    assert_refusals_audited(tmp_path / "state", text)
    assert "simulator on" not in (tmp_path / "stderr.txt").read_text()  # the paper exchange never started


@pytest.mark.asyncio
async def test_a_configuration_error_locks_the_server_too(sim, tmp_path):
    """BINANCE_MCP_MODE=bogus: there are no settings at all, so the locked server runs on safe defaults (the state
    directory asked for is still used for the audit log) and the keys it was given are never shown."""
    policy = write_policy(tmp_path / "policy.yaml", "version: 1\ndefault: allow\n")
    before = sim.control("state")["last_seq"]
    state, err = tmp_path / "state", tmp_path / "stderr.txt"
    env = sim_env(sim, state, policy, BINANCE_MCP_MODE="bogus")
    text = await assert_locked(env, err, "BINANCE_MCP_MODE='bogus' is not valid", "paper, testnet or live")
    assert "the configuration cannot be loaded" in text
    assert sim.control(f"requests?since={before}") == []
    assert_refusals_audited(state, text)
    log = err.read_text()
    assert "BINANCE_MCP_MODE='bogus'" in log and "starting LOCKED" in log and "Traceback" not in log, log
    for secret in (sim.api_key, sim.api_secret):
        assert secret not in log and secret not in (state / "audit.jsonl").read_text()


@pytest.mark.asyncio
async def test_a_locked_server_shows_an_unwritable_state_directory_as_well(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    state = tmp_path / "file" / "state"
    env = clean_env(BINANCE_MCP_STATE_DIR=str(state), BINANCE_MCP_MODE="bogus")
    async with stdio_client(env, stderr=tmp_path / "stderr.txt", timeout=60) as client:
        s = (await client.call_tool(STATUS, {})).structured_content
        assert s["locked"] is True and "BINANCE_MCP_MODE" in s["load_error"]
        assert s["state_error"] and str(state) in s["state_error"], s
        r = await client.call_tool("binance_spot_balances", {}, raise_on_error=False)
        assert r.is_error and r.content[0].text == f"POLICY_ERROR: {s['load_error']}"


# -- serve --check: the old fail-fast, for scripts ---------------------------------------------------------------
def check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *SERVE, "--check"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_serve_check_exits_2_on_a_broken_policy(tmp_path, kind):
    text, line, key = BROKEN[kind]
    policy = write_policy(tmp_path / f"{kind}.yaml", text)
    proc = check(clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state"), BINANCE_MCP_POLICY=str(policy)))
    assert proc.returncode == 2, proc.stderr
    assert "the policy cannot be loaded" in proc.stderr and f"{policy}:{line}:" in proc.stderr, proc.stderr
    if key:
        assert key in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_serve_check_exits_0_on_a_good_setup(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", "version: 1\ndefault: allow\n")
    proc = check(clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state"), BINANCE_MCP_POLICY=str(policy)))
    assert proc.returncode == 0, proc.stderr
    assert "ready" in proc.stderr and str(policy) in proc.stderr and "paper mode" in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert [p.name for p in (tmp_path / "state").iterdir()] == []  # the write test leaves nothing behind
    builtin = check(clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state")))
    assert builtin.returncode == 0 and "built-in read-only" in builtin.stderr, builtin.stderr


def test_serve_check_exits_2_on_a_configuration_error_and_an_unwritable_state_directory(tmp_path):
    bad = check(clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state"), BINANCE_MCP_MODE="bogus"))
    assert bad.returncode == 2 and "BINANCE_MCP_MODE='bogus' is not valid" in bad.stderr, bad.stderr
    (tmp_path / "file").write_text("x")
    unwritable = check(clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "file" / "state")))
    assert unwritable.returncode == 2, unwritable.stderr
    assert "cannot be written" in unwritable.stderr and str(tmp_path / "file" / "state") in unwritable.stderr


# -- the locked guard itself, in process -------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_the_locked_guard_refuses_even_where_the_middleware_is_skipped(tmp_path):
    """Defence in depth: the middleware refuses before arguments are validated, and the guard's wrapper of every
    registered tool refuses too (a path that skipped the middleware still trades on nothing). The exchange client is
    never even created."""
    from fastmcp.exceptions import ToolError

    from binance_mcp.server import build_locked_server
    from binance_mcp.settings import load_settings

    settings = load_settings({"BINANCE_MCP_STATE_DIR": str(tmp_path / "state")})
    mcp = build_locked_server(settings, "the reason", policy="p.yaml (not loaded)", exchange="paper")
    registered = await mcp.list_tools(run_middleware=False)
    assert {t.name for t in registered} == {s.name for s in ALL_TOOLS}
    assert mcp.binance_guard.wrapped == {s.name for s in ALL_TOOLS}
    assert all(getattr(t.runner, "__binance_guarded__", False) for t in registered)
    for name, args in REFUSED[:4]:
        with pytest.raises(ToolError) as info:
            await mcp.call_tool(name, args, run_middleware=False)
        assert str(info.value) == "POLICY_ERROR: the reason", name
    status = await mcp.call_tool(STATUS, {}, run_middleware=False)
    assert status.structured_content["load_error"] == "the reason"
    assert mcp.binance_deps.exchange._client is None and mcp.binance_deps.exchange._paper is None
    records = read_audit(tmp_path / "state")
    assert [r["tool"] for r in records if r.get("decision", {}).get("code") == "POLICY_ERROR"] == [n for n, _ in REFUSED[:4]]
