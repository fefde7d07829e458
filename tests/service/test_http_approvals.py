"""Approvals on the HTTP service, on both protocol eras, with real processes: the service (paper mode) and FastMCP's
client over Streamable HTTP with an agent's token, and once through the stdio bridge. Over HTTP the agent may drive
its own client, so no answer of that client approves anything: the service asks for the console's page (URL mode),
and only the store's decision (the console, or the CLI as the service's user) runs an order. The console's decision
is made here as the console makes it, through ApprovalStore on the service's state database. What reached the
exchange is read from the service's paper simulator."""

from __future__ import annotations

import asyncio
import time

import mcp_types
import pytest
import pytest_asyncio
from fastmcp import Client
from fastmcp.client.auth.bearer import BearerAuth
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from binance_mcp.policy.approvals import ApprovalStore
from binance_mcp.policy.state import StateStore
from tests.helpers import PaperSimulator
from tests.policy.test_approvals_mrtr import Human
from tests.service.bridge_helpers import Service, bridge_client, new_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""


def buy(qty: str) -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": qty, "price": "90000"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("approvals"), POLICY)
    s.env["BINANCE_MCP_APPROVAL_TIMEOUT"] = "1"  # the bounded wait for a decision on the console
    s.start()
    yield s
    s.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def paper(service: Service) -> PaperSimulator:
    async with service.direct() as client:
        status = await client.call_tool("binance_account_status", {})
    return PaperSimulator(status.structured_content["host"])


def client(service: Service, human: Human, mode: str = "auto") -> Client:
    return Client(StreamableHttpTransport(service.url, auth=BearerAuth(service.token)), mode=mode,
                  elicitation_handler=human)


def store(service: Service) -> ApprovalStore:
    return ApprovalStore(StateStore(service.state_dir / "state.db", time.time), time.time)


def orders(paper: PaperSimulator) -> int:
    return paper.state()["order_requests"]["spot"]


def approve_soon(service: Service, after: float = 0.3):
    """The human approves on the console shortly after the page was opened (the id is the link's last part)."""
    approvals = store(service)
    return lambda page: asyncio.get_running_loop().call_later(after, approvals.decide, page.url[-8:], True)


async def test_the_service_asks_for_the_console_page_never_a_form(service: Service, paper: PaperSimulator):
    human = Human()
    before = orders(paper)
    async with client(service, human) as c:
        r = await c.call_tool(ORDER, buy("0.001"), raise_on_error=False)
    text = r.content[0].text
    assert r.is_error and text.startswith("APPROVAL_REQUIRED: ") and "No decision came within 1 s" in text, text
    (page,) = human.asked  # the person agreed to open the page; nobody decided: not sent
    assert isinstance(page, mcp_types.ElicitRequestURLParams)
    approval_id = page.url.rsplit("/", 1)[1]
    assert page.url == f"http://127.0.0.1:{service.port}/console/approvals/{approval_id}", page.url
    assert f"in the console at {page.url} " in text and "sudo -u " in text, text
    assert orders(paper) == before
    assert store(service).get(approval_id).status == "pending"


async def test_a_form_accepted_by_the_agents_own_client_runs_nothing(service: Service, paper: PaperSimulator):
    before = orders(paper)
    args = buy("0.002")
    forged = {"approve": mcp_types.ElicitResult(action="accept", content={"value": True}),
              "console": mcp_types.ElicitResult(action="accept")}
    async with client(service, Human()) as c:
        asked = await c.session.call_tool(ORDER, args, allow_input_required=True)
        assert list(asked.input_requests) == ["console"]
        state = asked.request_state
        r = await c.session.call_tool(ORDER, args, input_responses=forged, request_state=state)
        assert r.is_error and r.content[0].text.startswith("APPROVAL_REQUIRED: "), r.content
        assert orders(paper) == before
        approval_id = asked.input_requests["console"].params.url.rsplit("/", 1)[1]
        assert store(service).get(approval_id).status == "pending"  # the agent's "yes" decided nothing
        # The human approves on the console. Another agent that got hold of this state cannot use the approval.
        store(service).decide(approval_id, True)
        token = new_token()  # a second agent, added as `binance-mcp agents add` does
        StateStore(service.state_dir / "state.db", time.time).add_agent("other", token, None, "test")
        other = Client(StreamableHttpTransport(service.url, auth=BearerAuth(token)), elicitation_handler=Human())
        async with other:  # the state is bound to the agent that asked: refused before any tool runs
            with pytest.raises(MCPError, match="Invalid or expired requestState"):
                await other.session.call_tool(ORDER, args, input_responses=forged, request_state=state)
        assert orders(paper) == before and store(service).get(approval_id).status == "approved"
        # The agent's own retry runs the order, once; a replay runs nothing.
        done = await c.session.call_tool(ORDER, args, input_responses=forged, request_state=state)
        assert not done.is_error, done.content
        again = await c.session.call_tool(ORDER, args, input_responses=forged, request_state=state)
        assert again.is_error and "already used" in again.content[0].text, again.content
    assert orders(paper) == before + 1


async def test_url_mode_on_an_older_connection(service: Service, paper: PaperSimulator):
    human = Human()
    human.on_url = approve_soon(service)
    before = orders(paper)
    async with client(service, human, mode="legacy") as c:
        r = await c.call_tool(ORDER, buy("0.003"), raise_on_error=False)
        assert not r.is_error, r.content[0].text
    (page,) = human.asked
    assert isinstance(page, mcp_types.ElicitRequestURLParams) and "/console/approvals/" in page.url
    assert orders(paper) == before + 1


async def test_input_required_through_the_bridge(service: Service, paper: PaperSimulator, tmp_path):
    human = Human()
    human.on_url = approve_soon(service)
    before = orders(paper)
    async with bridge_client(service.url, service.token_file, tmp_path / "bridge.err", mode="auto",
                             elicitation_handler=human) as c:
        r = await c.call_tool(ORDER, buy("0.004"), raise_on_error=False)
        assert not r.is_error, r.content[0].text
    (page,) = human.asked
    assert isinstance(page, mcp_types.ElicitRequestURLParams) and "/console/approvals/" in page.url
    assert orders(paper) == before + 1
