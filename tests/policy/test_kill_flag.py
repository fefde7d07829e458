"""The kill flag in the state store, seen by a server in process (a real fastmcp client, its paper simulator observed
over HTTP): read once per call, and read again after a human's approval, so a flag pulled while the human was
answering stops the order that the answer would have let through."""

from __future__ import annotations

import time

import pytest
from fastmcp import Client

from binance_mcp.policy.state import StateStore
from binance_mcp.server import build_server
from binance_mcp.settings import load_settings
from tests.policy.test_approvals_elicitation import Human
from tests.policy.test_guard_helpers import http_json, limit_buy, write_policy

ORDER = "binance_spot_place_order"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""


@pytest.mark.asyncio
async def test_one_read_per_call_and_again_after_an_approval(tmp_path):
    settings = load_settings({"BINANCE_MCP_STATE_DIR": str(tmp_path / "state"), "BINANCE_MCP_PAPER_TICK_SECONDS": "0",
                              "BINANCE_MCP_POLICY": str(write_policy(tmp_path / "policy.yaml", POLICY))})
    mcp = build_server(settings)
    guard = mcp.binance_guard
    reads = []
    real = guard.state.kill_flag
    guard.state.kill_flag = lambda: reads.append(1) or real()  # type: ignore[method-assign]
    other = StateStore(tmp_path / "state" / "state.db", time.time)  # as `binance-mcp kill` or a console would
    human = Human()
    async with Client(mcp, mode="legacy", elicitation_handler=human) as client:
        host = (await client.call_tool("binance_account_status", {})).structured_content["host"]
        orders = lambda: http_json(f"http://{host}/_sim/state")["order_requests"]["spot"]  # noqa: E731
        assert not (await client.call_tool(ORDER, limit_buy(qty="0.0005"))).is_error  # 48.5 USD: nobody asked
        assert len(reads) == 1  # the guard asks for the kill switch three times in a call; the store is read once
        assert orders() == 1
        human.before_answer = lambda: other.set_kill_flag(True, "a human, while the prompt was open")
        answered = await client.call_tool(ORDER, limit_buy(qty="0.001"), raise_on_error=False)  # 97 USD: asked
        assert human.asked and answered.is_error
        assert answered.content[0].text.startswith("KILL_SWITCH")
        assert "a human, while the prompt was open" in answered.content[0].text
        assert orders() == 1  # the yes did not send it
        other.set_kill_flag(False, "test")
        reads.clear()
        assert not (await client.call_tool("binance_spot_balances", {})).is_error
        assert reads == []  # a read tool never reads the flag
    other.close()
