"""Every call is audited, also those refused before the policy sees them: arguments that do not validate
(INVALID_INPUT, from the tool itself) and tool names the server does not have (UNKNOWN_TOOL, answered by the
server's middleware instead of FastMCP). Nothing reaches the exchange for them, and no secret is written."""

from __future__ import annotations

import json

import pytest

from tests.helpers import clean_env, read_audit, stdio_client
from tests.policy.test_guard_helpers import cli, serve, write_policy

ALLOW_ALL = "version: 1\ndefault: allow\n"


def refused(state_dir) -> list[dict]:
    return [r for r in read_audit(state_dir) if r.get("decision", {}).get("rule") == "input"]


@pytest.mark.asyncio
async def test_invalid_input_and_unknown_tool_names_leave_an_audit_record(tmp_path):
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", ALLOW_ALL)
    async with serve(state, policy) as paper:
        before = paper.state()
        bad = await paper.error("binance_spot_price", {"symbol": "no way"})
        extra = await paper.error("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                              "quantity": "0.001", "bogus": 1})
        unknown = await paper.error("binance_no_such_tool", {"x": 1})
        huge = await paper.error("binance_spot_price", {"symbol": "A" * 50_000})
        after = paper.state()
    assert bad.startswith("INVALID_INPUT: binance_spot_price") and extra.startswith("INVALID_INPUT: "), (bad, extra)
    assert huge.startswith("INVALID_INPUT: ")
    assert unknown.startswith("UNKNOWN_TOOL: 'binance_no_such_tool' is not a tool of this server"), unknown
    assert "tools/list" in unknown
    assert (after["requests"], after["last_seq"]) == (before["requests"], before["last_seq"])  # nothing was sent

    records = refused(state)
    assert [(r["tool"], r["decision"]["code"]) for r in records] == [
        ("binance_spot_price", "INVALID_INPUT"), ("binance_spot_place_order", "INVALID_INPUT"),
        ("binance_no_such_tool", "UNKNOWN_TOOL"), ("binance_spot_price", "INVALID_INPUT")]
    first, second, third, fourth = records
    assert first["args"] == {"symbol": "no way"} and first["outcome"] == {"status": "not_run"}
    assert f"INVALID_INPUT: {first['decision']['reason']}" == bad  # the record has the text the agent got
    assert second["args"]["bogus"] == 1 and "bogus" in second["decision"]["reason"]
    assert third["args"] == {"x": 1} and f"UNKNOWN_TOOL: {third['decision']['reason']}" == unknown
    assert fourth["args"]["length"] > 50_000 and len(json.dumps(fourth)) < 5_000  # cut short, not 50 kB
    assert all(r["decision"]["effect"] == "deny" and r["call_id"] and r["time"] for r in records)
    assert all(r["policy"]["source"] == str(policy) for r in records)

    code, out, err = await cli(state, "audit", "--code", "INVALID_INPUT")
    rows = [line.split()[1] for line in out.splitlines()[1:]]
    assert code == 0 and rows == ["binance_spot_price", "binance_spot_place_order", "binance_spot_price"], out + err
    code, out, _ = await cli(state, "audit", "--code", "UNKNOWN_TOOL")
    assert code == 0 and "binance_no_such_tool" in out, out


@pytest.mark.asyncio
async def test_a_refused_call_never_writes_a_secret(sim, tmp_path):
    """Arguments that carry the API secret (an agent pasting it, a hostile prompt) are redacted like every
    record: in a refused call's arguments, and in an unknown tool's name."""
    state, policy = tmp_path / "state", write_policy(tmp_path / "policy.yaml", ALLOW_ALL)
    env = clean_env(BINANCE_API_KEY=sim.api_key, BINANCE_API_SECRET=sim.api_secret,
                    BINANCE_MCP_BASE_URL=sim.base_url, BINANCE_MCP_STATE_DIR=str(state),
                    BINANCE_MCP_POLICY=str(policy))
    async with stdio_client(env, timeout=60) as client:
        r = await client.call_tool("binance_spot_price", {"symbol": sim.api_secret}, raise_on_error=False)
        assert r.is_error and r.content[0].text.startswith("INVALID_INPUT: ")
        r = await client.call_tool("binance_spot_balances", {"note": f"key {sim.api_key}"}, raise_on_error=False)
        assert r.is_error and r.content[0].text.startswith("INVALID_INPUT: ")
        r = await client.call_tool(f"x{sim.api_secret}", {}, raise_on_error=False)
        assert r.is_error and r.content[0].text.startswith("UNKNOWN_TOOL: ")
    text = (state / "audit.jsonl").read_text()
    assert len(refused(state)) == 3
    assert sim.api_secret not in text and sim.api_key not in text and "****" in text
