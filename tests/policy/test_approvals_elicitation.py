"""Approval by MCP elicitation, with a real fastmcp client (legacy protocol era, where a server may send requests)
talking to the server in process; its paper simulator is observed over HTTP. Only an explicit yes runs a call,
once; everything else denies with APPROVAL_DENIED and sends nothing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import pytest_asyncio
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult

from binance_mcp.server import build_server
from binance_mcp.settings import load_settings
from tests.policy.test_guard_helpers import http_json, limit_buy, read_audit, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
LEVERAGE = "binance_futures_change_leverage"
RULE = "tools.binance_spot_place_order.approval_above.notional_usd"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {{notional_usd: 50}}
    limits: {{daily_notional_usd: 100000}}
  binance_futures_change_leverage:
    action: require_approval
    rate_limit: {{max: 1, window: 3600}}
account:
  kill_switch_file: {stop}
"""


class Human:
    """The client's elicitation handler: answers as the test says and records what it was asked."""

    def __init__(self) -> None:
        self.answer = "yes"
        self.asked: list[str] = []
        self.gate: asyncio.Event | None = None  # when set: wait for it before answering
        self.before_answer = None
        self.schemas: list[dict] = []  # the form each question came with (requestedSchema)

    async def __call__(self, message, response_type, params, context):
        self.asked.append(message)
        self.schemas.append(params.requested_schema)
        if self.gate is not None:
            await self.gate.wait()
        if self.before_answer is not None:
            self.before_answer()
        answer = self.answer
        if answer == "raise":
            raise RuntimeError("the approval dialog crashed")
        if answer in ("decline", "cancel"):
            return ElicitResult(action=answer)
        return response_type(value=answer == "yes")


class Session:
    def __init__(self, client: Client, human: Human, state_dir, policy, stop) -> None:
        self.client, self.human, self.state_dir, self.policy, self.stop = client, human, state_dir, policy, stop
        self.base = ""

    async def call(self, name: str, args: dict):
        return await self.client.call_tool(name, args, raise_on_error=False)

    def sim(self) -> dict:
        return http_json(f"{self.base}/_sim/state")

    def events(self, name: str) -> list[dict]:
        return [r for r in read_audit(self.state_dir) if r.get("event") == name]

    def calls(self, tool: str) -> list[dict]:
        return [r for r in read_audit(self.state_dir) if r.get("tool") == tool and "call_id" in r]


def make_server(tmp_path, **env):
    stop = tmp_path / "STOP"
    policy = write_policy(tmp_path / "policy.yaml", POLICY.format(stop=stop))
    settings = load_settings({"BINANCE_MCP_STATE_DIR": str(tmp_path / "state"), "BINANCE_MCP_POLICY": str(policy),
                              "BINANCE_MCP_PAPER_TICK_SECONDS": "0", "BINANCE_MCP_APPROVAL_TIMEOUT": "1", **env})
    return build_server(settings), policy, stop


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("elicitation")
    mcp, policy, stop = make_server(d)
    human = Human()
    async with Client(mcp, mode="legacy", elicitation_handler=human) as client:
        s = Session(client, human, d / "state", policy, stop)
        status = await s.call("binance_account_status", {})
        s.base = f"http://{status.structured_content['host']}"
        yield s


@pytest.fixture
def s(session: Session) -> Session:
    http_json(f"{session.base}/_sim/reset", {})
    write_policy(session.policy, POLICY.format(stop=session.stop))
    session.human.__init__()
    return session


async def test_yes_runs_the_order_once_and_the_prompt_shows_it(s: Session):
    before = s.sim()["order_requests"]["spot"]
    r = await s.call(ORDER, limit_buy(qty="0.001", price="90000"))  # 90 USD: above the 50 USD threshold
    assert not r.is_error, r.content[0].text
    assert s.sim()["order_requests"]["spot"] == before + 1
    (message,) = s.human.asked
    for line in ("tool: binance_spot_place_order", "symbol: BTCUSDT", "side: BUY", "type: LIMIT", "quantity: 0.001",
                 "price: 90000", "notional: 97.00 USD", f"Asked by policy rule {RULE}"):
        assert line in message, message
    assert s.events("approval_requested")[-1]["channel"] == "elicitation"
    assert s.events("approval_granted")[-1]["summary"]["notional_usd"] == "97.00"
    record = s.calls(ORDER)[-1]
    assert record["decision"]["code"] == "ALLOWED" and record["outcome"]["status"] == "ok"
    # A yes is for one call: the same order again asks again.
    assert not (await s.call(ORDER, limit_buy(qty="0.001", price="90000"))).is_error
    assert len(s.human.asked) == 2 and s.sim()["order_requests"]["spot"] == before + 2
    # Under the threshold nobody is asked.
    assert not (await s.call(ORDER, limit_buy(qty="0.0005", price="90000"))).is_error
    assert len(s.human.asked) == 2


async def test_the_checkbox_says_what_ticking_it_approves(s: Session):
    assert not (await s.call(ORDER, limit_buy(qty="0.001", price="90000"))).is_error
    (schema,) = s.human.schemas
    assert schema["type"] == "object" and schema["required"] == ["value"] and "title" not in schema, schema
    box = schema["properties"]["value"]
    assert box["type"] == "boolean"
    assert box["title"] == ("Yes, send this once: BUY 0.001 BTCUSDT LIMIT @ 90000 (~97.00 USD) via "
                            "binance_spot_place_order"), box
    assert "approve" in box["description"]


@pytest.mark.parametrize("answer, why", [("decline", "the user declined"), ("cancel", "the user cancelled"),
                                         ("no", "the user did not tick yes"),
                                         ("raise", "the approval prompt failed")])
async def test_anything_but_yes_denies_and_sends_nothing(s: Session, answer: str, why: str):
    s.human.answer = answer
    before = s.sim()
    r = await s.call(ORDER, limit_buy(qty="0.002", price="90000"))
    text = r.content[0].text
    assert r.is_error and text.startswith(f"APPROVAL_DENIED: {why}"), text
    assert "not sent" in text
    after = s.sim()
    assert (after["order_requests"], after["orders"]) == (before["order_requests"], before["orders"])
    assert len(s.human.asked) == 1
    record = s.calls(ORDER)[-1]
    assert record["decision"]["code"] == "APPROVAL_DENIED" and record["outcome"] == {"status": "not_run"}
    assert record["decision"]["rule"] == RULE
    assert s.events("approval_denied")[-1]["channel"] == "elicitation"


async def test_no_answer_in_time_denies_and_a_late_yes_runs_nothing(s: Session):
    s.human.gate = asyncio.Event()  # the human walks away; BINANCE_MCP_APPROVAL_TIMEOUT is 1 s
    before = s.sim()["order_requests"]
    r = await s.call(ORDER, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"})
    assert r.is_error and r.content[0].text.startswith("APPROVAL_DENIED: no answer within 1 s"), r.content[0].text
    s.human.gate.set()  # ... and comes back to say yes, too late
    await asyncio.sleep(0.2)
    assert not (await s.call("binance_spot_price", {"symbol": "BTCUSDT"})).is_error
    assert s.sim()["order_requests"] == before
    (message,) = s.human.asked
    assert "type: MARKET" in message and "price: market" in message and "notional: 97.00 USD" in message, message
    assert s.events("approval_denied")[-1]["answer"] == "timeout"


async def test_require_approval_on_a_tool_without_notional(s: Session):
    r = await s.call(LEVERAGE, {"symbol": "ethusdt", "leverage": 3})
    assert not r.is_error, r.content[0].text
    (message,) = s.human.asked
    assert "symbol: ETHUSDT" in message and "leverage: 3" in message and LEVERAGE in message, message
    assert "Asked by policy rule tools.binance_futures_change_leverage" in message


async def test_the_kill_switch_thrown_while_the_human_decides_wins(s: Session):
    s.human.before_answer = lambda: s.stop.write_text("")
    before = s.sim()["order_requests"]
    try:
        r = await s.call(ORDER, limit_buy(qty="0.002", price="90000"))
    finally:
        s.stop.unlink(missing_ok=True)
    assert r.is_error and r.content[0].text.startswith("KILL_SWITCH: "), r.content[0].text
    assert len(s.human.asked) == 1 and s.sim()["order_requests"] == before


async def test_a_client_without_elicitation_gets_an_out_of_band_approval(tmp_path):
    mcp, _, _ = make_server(tmp_path)
    async with Client(mcp, mode="legacy") as client:  # no handler: no elicitation capability
        r = await client.call_tool(ORDER, limit_buy(qty="0.002", price="90000"), raise_on_error=False)
        text = r.content[0].text
        assert r.is_error and text.startswith("APPROVAL_REQUIRED: "), text
        assert " approvals approve " in text and " --state-dir " in text, text
    events = [e for e in read_audit(tmp_path / "state") if "event" in e]
    assert [e["event"] for e in events] == ["approval_requested"] and events[0]["channel"] == "out_of_band"
    assert Decimal(events[0]["summary"]["notional_usd"]) == Decimal("194.00")

    # A client on the 2026-07-28 protocol cannot be sent a request: it is asked through an input_required round
    # instead (tests/policy/test_approvals_mrtr.py), with the same prompt.
    human = Human()
    async with Client(mcp, elicitation_handler=human) as client:
        r = await client.call_tool(ORDER, limit_buy(qty="0.003", price="90000"), raise_on_error=False)
        assert not r.is_error, r.content[0].text
    (message,) = human.asked
    assert message.startswith("Approve this order? BUY 0.003 BTCUSDT LIMIT @ 90000"), message


async def two_slow_approvals(s: Session, extra: str) -> list[str]:
    """Two orders waiting for the human at once, under the test policy plus ``extra`` on the order rule; the
    human says yes to both once both are asked. Returns the outcome codes, sorted ("ok" for a run)."""
    text = POLICY.format(stop=s.stop)
    if extra.startswith("limits:"):  # replaces the rule's limits
        text = text.replace("    limits: {daily_notional_usd: 100000}\n", "")
    write_policy(s.policy, text.replace("approval_above: {notional_usd: 50}",
                                        "approval_above: {notional_usd: 50}\n    " + extra))
    s.human.gate = asyncio.Event()

    async def release():
        while len(s.human.asked) < 2:
            await asyncio.sleep(0.01)
        s.human.gate.set()

    calls = asyncio.gather(s.call(ORDER, limit_buy(qty="0.001")), s.call(ORDER, limit_buy(qty="0.0011")))
    results, _ = await asyncio.wait_for(asyncio.gather(calls, release()), 30)
    return sorted("ok" if not r.is_error else r.content[0].text.split(":")[0] for r in results)


async def test_limits_are_checked_again_after_a_slow_approval(s: Session):
    """Two approvals pending at once: a rate limit of one call lets one through, not both."""
    before = s.sim()["order_requests"]["spot"]
    assert await two_slow_approvals(s, "rate_limit: {max: 1, window: 3600}") == ["RATE_LIMITED", "ok"]
    assert s.sim()["order_requests"]["spot"] == before + 1


async def test_open_orders_are_checked_again_after_a_slow_approval(s: Session):
    """Under max_open_orders: 1 the facts are fetched again after the wait, so the order that finishes second
    sees the first one open on the exchange and is not sent."""
    before = s.sim()["order_requests"]["spot"]
    assert await two_slow_approvals(s, "limits: {daily_notional_usd: 100000, max_open_orders: 1}") == [
        "OPEN_ORDERS_OVER_LIMIT", "ok"]
    assert s.sim()["order_requests"]["spot"] == before + 1
