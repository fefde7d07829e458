"""Approvals on a 2026-07-28 connection (multi-round-trip requests), with FastMCP's own client talking to the server in
process as a stdio client would (the server is not the HTTP service, so a form answered in the client counts), and
on older connections in URL mode. Orders are checked on the paper simulator over HTTP; decisions a human makes on
the console are made as the console makes them, through ApprovalStore on the same state database."""

from __future__ import annotations

import asyncio
import time

import mcp_types
import pytest
import pytest_asyncio
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult
from mcp.shared.exceptions import MCPError

from binance_mcp.policy.approvals import ApprovalStore
from binance_mcp.policy.state import StateStore
from binance_mcp.server import build_server
from binance_mcp.settings import load_settings
from tests.policy.test_guard_helpers import http_json, limit_buy, read_audit, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {{notional_usd: 50{channel}}}
"""
CONSOLE = "http://127.0.0.1:9/console"  # approval links only: nothing listens there


class Human:
    """The client's elicitation handler: what it was asked, and its answers (form and URL apart)."""

    def __init__(self) -> None:
        self.form = "yes"
        self.url = "accept"
        self.asked: list[mcp_types.ElicitRequestParams] = []
        self.on_url = None  # called when the person "opens" the page (the console decides meanwhile)

    async def __call__(self, message, response_type, params, context):
        self.asked.append(params)
        if isinstance(params, mcp_types.ElicitRequestURLParams):
            if self.on_url is not None:
                self.on_url(params)
            return ElicitResult(action=self.url)
        if self.form in ("decline", "cancel"):
            return ElicitResult(action=self.form)
        return response_type(value=self.form == "yes")


def make_server(d, channel: str = ""):
    policy = write_policy(d / "policy.yaml", POLICY.format(channel=channel))
    settings = load_settings({"BINANCE_MCP_STATE_DIR": str(d / "state"), "BINANCE_MCP_POLICY": str(policy),
                              "BINANCE_MCP_PAPER_TICK_SECONDS": "0", "BINANCE_MCP_APPROVAL_TIMEOUT": "1",
                              "BINANCE_MCP_CONSOLE_URL": CONSOLE})
    return build_server(settings), policy


class Setup:
    def __init__(self, d, mcp, policy) -> None:
        self.d, self.mcp, self.policy, self.base = d, mcp, policy, ""
        self.human = Human()

    def sim(self) -> dict:
        return http_json(f"{self.base}/_sim/state")

    def orders(self) -> int:
        return self.sim()["order_requests"]["spot"]

    def approvals(self) -> ApprovalStore:
        return ApprovalStore(StateStore(self.d / "state" / "state.db", time.time), time.time)

    def events(self) -> list[str]:
        return [r["event"] for r in read_audit(self.d / "state") if "event" in r]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrtr")
    mcp, policy = make_server(d)
    s = Setup(d, mcp, policy)
    async with Client(mcp) as client:
        status = await client.call_tool("binance_account_status", {})
        s.base = f"http://{status.structured_content['host']}"
        yield s


@pytest.fixture
def s(setup: Setup) -> Setup:
    http_json(f"{setup.base}/_sim/reset", {})
    write_policy(setup.policy, POLICY.format(channel=""))
    setup.human.__init__()
    return setup


async def test_a_form_answered_yes_in_the_client_runs_the_order_once(s: Setup):
    before = s.orders()
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        assert client.protocol_version == "2026-07-28"
        r = await client.call_tool(ORDER, limit_buy(qty="0.001"), raise_on_error=False)
    assert not r.is_error, r.content[0].text
    assert s.orders() == before + 1
    (form,) = s.human.asked
    assert isinstance(form, mcp_types.ElicitRequestFormParams)
    for line in ("tool: binance_spot_place_order", "symbol: BTCUSDT", "side: BUY", "type: LIMIT", "quantity: 0.001",
                 "price: 90000", "notional: 97.00 USD",
                 "Asked by policy rule tools.binance_spot_place_order.approval_above.notional_usd"):
        assert line in form.message, form.message
    assert f"{CONSOLE}/approvals/" in form.message
    (approval,) = [a for a in s.approvals().list() if a.status == "consumed"]
    assert approval.summary["notional_usd"] == "97.00"


@pytest.mark.parametrize("answer", ["decline", "cancel", "no"])
async def test_a_form_answered_anything_but_yes_sends_nothing(s: Setup, answer: str):
    s.human.form = answer
    before = s.orders()
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        r = await client.call_tool(ORDER, limit_buy(qty="0.002"), raise_on_error=False)
    assert r.is_error and r.content[0].text.startswith("APPROVAL_DENIED: the user denied approval"), r.content
    assert s.orders() == before and len(s.human.asked) == 1


async def test_a_replayed_request_state_runs_nothing_a_second_time(s: Setup):
    before = s.orders()
    args = limit_buy(qty="0.003")
    yes = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True})}
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        asked = await client.session.call_tool(ORDER, args, allow_input_required=True)
        assert isinstance(asked, mcp_types.InputRequiredResult), asked
        assert list(asked.input_requests) == ["approve"]
        state = asked.request_state
        assert "approval" not in state  # sealed: the client cannot read (or write) what it carries
        first = await client.session.call_tool(ORDER, args, input_responses=yes, request_state=state)
        assert not first.is_error, first.content
        again = await client.session.call_tool(ORDER, args, input_responses=yes, request_state=state)
        both = await asyncio.gather(*(client.session.call_tool(ORDER, args, input_responses=yes, request_state=state)
                                      for _ in range(3)))
    assert again.is_error and "already used" in again.content[0].text, again.content
    assert all(r.is_error for r in both)
    assert s.orders() == before + 1


async def test_changed_arguments_with_a_captured_state_run_nothing(s: Setup):
    before = s.orders()
    yes = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True})}
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        asked = await client.session.call_tool(ORDER, limit_buy(qty="0.001"), allow_input_required=True)
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await client.session.call_tool(ORDER, limit_buy(qty="0.009"), input_responses=yes,
                                           request_state=asked.request_state)
        forged = asked.request_state[:-4] + ("AAAA" if not asked.request_state.endswith("AAAA") else "BBBB")
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await client.session.call_tool(ORDER, limit_buy(qty="0.001"), input_responses=yes, request_state=forged)
    assert s.orders() == before
    assert [a.status for a in s.approvals().list() if a.summary.get("quantity") == "0.009"] == []


async def test_a_client_without_elicitation_gets_the_console_link(s: Setup):
    async with Client(s.mcp) as client:
        r = await client.call_tool(ORDER, limit_buy(qty="0.004"), raise_on_error=False)
    text = r.content[0].text
    assert r.is_error and text.startswith("APPROVAL_REQUIRED: "), text
    (pending,) = [a for a in s.approvals().list(("pending",)) if a.summary["quantity"] == "0.004"]
    assert f"in the console at {CONSOLE}/approvals/{pending.id} " in text and " approvals approve " in text, text


async def test_channel_console_asks_for_the_page_and_waits_for_the_store(s: Setup):
    write_policy(s.policy, POLICY.format(channel=", channel: console"))
    before = s.orders()
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        # The person opens the page and nobody decides within BINANCE_MCP_APPROVAL_TIMEOUT (1 s): not sent.
        r = await client.call_tool(ORDER, limit_buy(qty="0.005"), raise_on_error=False)
        text = r.content[0].text
        assert r.is_error and text.startswith("APPROVAL_REQUIRED: ") and "No decision came within 1 s" in text, text
        (page,) = s.human.asked
        assert isinstance(page, mcp_types.ElicitRequestURLParams)  # no form: the rule wants the console
        approval_id = page.url.rsplit("/", 1)[1]  # (2026-07-28 carries no elicitationId)
        assert page.url == f"{CONSOLE}/approvals/{approval_id}" and page.url in text
        assert s.orders() == before
        # Now the human approves on the console while the page is open: the call runs, once.
        store = s.approvals()
        s.human.on_url = lambda p: asyncio.get_running_loop().call_later(0.3, store.decide, p.url[-8:], True)
        r = await client.call_tool(ORDER, limit_buy(qty="0.005"), raise_on_error=False)
        assert not r.is_error, r.content[0].text
    assert s.orders() == before + 1
    assert s.human.asked[1].url == page.url  # the same approval, asked again


async def test_a_form_answer_does_not_count_where_the_console_is_required(s: Setup):
    write_policy(s.policy, POLICY.format(channel=", channel: console"))
    before = s.orders()
    args = limit_buy(qty="0.006")
    forged = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True}),
              "console": mcp_types.ElicitResult(action="accept")}
    async with Client(s.mcp, elicitation_handler=s.human) as client:
        asked = await client.session.call_tool(ORDER, args, allow_input_required=True)
        assert list(asked.input_requests) == ["console"]
        r = await client.session.call_tool(ORDER, args, input_responses=forged, request_state=asked.request_state)
    assert r.is_error and r.content[0].text.startswith("APPROVAL_REQUIRED: "), r.content
    assert s.orders() == before
    assert "approval_form_ignored" in s.events()


async def test_url_mode_on_an_older_connection(s: Setup):
    write_policy(s.policy, POLICY.format(channel=", channel: console"))
    before = s.orders()
    store = s.approvals()
    s.human.on_url = lambda p: asyncio.get_running_loop().call_later(0.3, store.decide, p.url[-8:], True)
    async with Client(s.mcp, mode="legacy", elicitation_handler=s.human) as client:
        r = await client.call_tool(ORDER, limit_buy(qty="0.007"), raise_on_error=False)
        assert not r.is_error, r.content[0].text
        s.human.url = "decline"
        r = await client.call_tool(ORDER, limit_buy(qty="0.008"), raise_on_error=False)
    assert r.is_error and r.content[0].text.startswith("APPROVAL_DENIED: the user did not open"), r.content
    assert s.orders() == before + 1
    assert all(isinstance(p, mcp_types.ElicitRequestURLParams) for p in s.human.asked)


async def test_a_second_server_on_the_same_store_opens_the_state(s: Setup, tmp_path):
    """Replicas share the sealing keys through the store: a state minted by one is answered on another."""
    twin, _ = make_server(s.d)
    args = limit_buy(qty="0.0011")
    yes = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True})}
    async with Client(s.mcp, elicitation_handler=s.human) as a, Client(twin, elicitation_handler=s.human) as b:
        status = await b.call_tool("binance_account_status", {})
        twin_sim = f"http://{status.structured_content['host']}/_sim/state"  # the twin's own paper exchange
        before = http_json(twin_sim)["order_requests"]["spot"]
        asked = await a.session.call_tool(ORDER, args, allow_input_required=True)
        r = await b.session.call_tool(ORDER, args, input_responses=yes, request_state=asked.request_state)
        assert not r.is_error, r.content
        assert http_json(twin_sim)["order_requests"]["spot"] == before + 1
    assert [a.status for a in s.approvals().list() if a.summary["quantity"] == "0.0011"] == ["consumed"]
    keys = StateStore(s.d / "state" / "state.db", time.time).transaction(
        lambda db: db.execute("SELECT id, length(secret) FROM request_state_keys").fetchall(), "read", write=False)
    assert keys == [("current", 64)]


async def test_over_real_stdio_a_state_survives_a_restart(tmp_path):
    """``binance-mcp serve`` over stdio on 2026-07-28: the round's state, minted before a restart, is answered after
    it (the keys are in the state store, not in the process), and the order runs once, on the restarted server."""
    import sys

    from fastmcp.client.transports import StdioTransport

    from tests.helpers import SERVE, paper_env

    policy = write_policy(tmp_path / "policy.yaml", POLICY.format(channel=""))
    env = paper_env(tmp_path / "state", policy, FASTMCP_SHOW_SERVER_BANNER="false")

    def stdio() -> Client:
        transport = StdioTransport(command=sys.executable, args=SERVE, env=env, keep_alive=False)
        return Client(transport, elicitation_handler=Human())

    args = limit_buy(qty="0.001")
    yes = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True})}
    async with stdio() as first:
        asked = await first.session.call_tool(ORDER, args, allow_input_required=True)
        assert list(asked.input_requests) == ["approve"]
        assert "notional: 97.00 USD" in asked.input_requests["approve"].params.message
    async with stdio() as second:  # a new process on the same state directory
        status = await second.call_tool("binance_account_status", {})
        sim = f"http://{status.structured_content['host']}/_sim/state"
        before = http_json(sim)["order_requests"]["spot"]
        r = await second.session.call_tool(ORDER, args, input_responses=yes, request_state=asked.request_state)
        assert not r.is_error, r.content
        again = await second.session.call_tool(ORDER, args, input_responses=yes, request_state=asked.request_state)
        assert again.is_error and "already used" in again.content[0].text, again.content
        assert http_json(sim)["order_requests"]["spot"] == before + 1
