"""``binance-mcp connect``: a stdio bridge to the service, tested with real processes. The service (a paper-mode
server over MCP Streamable HTTP on 127.0.0.1, see helpers.py) and the bridge are subprocesses; fastmcp's client
speaks to the bridge over stdio; what reached the exchange is read from the service's paper simulator (its
``/_sim/`` controls and REST endpoints), not from the bridge's answers."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from decimal import Decimal

import pytest
import pytest_asyncio

from tests.helpers import D, PaperSimulator, read_audit
from tests.service.bridge_helpers import (
    Service,
    bridge_client,
    bridge_env,
    connect_command,
    free_port,
    listing,
    new_token,
    write_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""
PRICE = {"symbol": "BTCUSDT"}
SMALL_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0005"}  # 48.50 USD at 97000
APPROVED_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}  # 97 USD


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("service"), POLICY).start()
    yield s
    s.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(service: Service) -> tuple[list[dict], PaperSimulator]:
    """The service's own tools/list (asked over HTTP, not through the bridge) and its paper simulator."""
    async with service.direct() as client:
        tools = listing(await client.list_tools())
        status = await client.call_tool("binance_account_status", {})
    return tools, PaperSimulator(status.structured_content["host"])


@pytest.fixture
def sim(served) -> PaperSimulator:
    served[1].reset()
    return served[1]


def text_of(result) -> str:
    return result.content[0].text


def assert_no_token(path, *tokens: str) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for token in tokens:
        assert token not in text, f"a token is in {path.name}"
        assert token[5:25] not in text, f"part of a token is in {path.name}"


async def test_tools_list_through_the_bridge_is_the_services(service: Service, served, tmp_path):
    tools, _ = served
    assert len(tools) == 36 and "binance_policy_status" in {t["name"] for t in tools}
    async with bridge_client(service.url, service.token_file, tmp_path / "bridge.err") as client:
        assert listing(await client.list_tools()) == tools
    assert_no_token(tmp_path / "bridge.err", service.token)


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # the handshake era (Claude Desktop) and 2026-07-28
async def test_calls_reach_the_exchange_through_the_bridge(service: Service, sim: PaperSimulator, tmp_path,
                                                           mode: str):
    sim.set_price("BTCUSDT", "96123.45")
    seq = sim.last_seq()
    async with bridge_client(service.url, service.token_file, tmp_path / "bridge.err", mode=mode) as client:
        assert (client.protocol_version == "2026-07-28") is (mode == "auto"), client.protocol_version
        price = await client.call_tool("binance_spot_price", PRICE)
        assert price.structured_content["prices"] == [{"symbol": "BTCUSDT", "price": "96123.45"}]
        order = await client.call_tool("binance_spot_place_order", SMALL_BUY, raise_on_error=False)
        assert not order.is_error, text_of(order)
    (placed,) = sim.spot_orders_since(seq)  # the exchange got exactly one order, and filled it
    assert sim.spot_balance("BTC")[0] == D("0.0005") * D("0.999")  # less the 0.1 % commission, in BTC
    assert sim.spot_balance("USDT")[0] < Decimal("10000")
    assert {k: placed["params"].get(k) for k in ("symbol", "side", "type", "quantity")} == SMALL_BUY, placed
    assert order.structured_content["status"] == "FILLED", order.structured_content
    assert_no_token(tmp_path / "bridge.err", service.token)


async def test_an_approval_asked_by_the_service_works_through_the_bridge(service: Service, sim: PaperSimulator,
                                                                        tmp_path):
    """The service asks a human out of band (no form to the agent's client): the bridge passes the request for
    approval on, the human approves as the service's user, and the same call again runs, once."""
    before = sim.state()["order_requests"]["spot"]
    async with bridge_client(service.url, service.token_file, tmp_path / "bridge.err") as client:
        first = await client.call_tool("binance_spot_place_order", APPROVED_BUY, raise_on_error=False)
        assert first.is_error and text_of(first).startswith("APPROVAL_REQUIRED: "), text_of(first)
        approval = re.search(r"Approval id (\w+)", text_of(first)).group(1)
        assert sim.state()["order_requests"]["spot"] == before
        service.approvals("approve", approval, "--yes")
        second = await client.call_tool("binance_spot_place_order", APPROVED_BUY, raise_on_error=False)
        assert not second.is_error, text_of(second)
    assert sim.state()["order_requests"]["spot"] == before + 1


def assert_unreachable(result, url: str, sent_nothing: bool = True) -> str:
    assert result.is_error and result.structured_content is None, result
    text = text_of(result)
    assert text.startswith("SERVICE_UNREACHABLE: "), text
    assert f"the binance-mcp service at {url} cannot be reached" in text, text
    assert "nothing was sent to the exchange" in text and "Ask the user to start the service" in text, text
    assert "check the URL" in text, text
    return text


async def test_service_down_at_start_and_later_then_back(served, tmp_path):
    """Started before the service, the bridge lists the catalogue (equal to the service's list) and each call says
    the service cannot be reached; once the service runs, calls work, with no restart of the bridge; and again
    after the service stops and starts."""
    tools, _ = served
    svc = Service(tmp_path, POLICY)
    try:
        async with bridge_client(svc.url, svc.token_file, tmp_path / "bridge.err") as client:
            assert listing(await client.list_tools()) == tools
            assert_unreachable(await client.call_tool("binance_spot_price", PRICE, raise_on_error=False), svc.url)
            svc.start()
            assert not (await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)).is_error
            status = await client.call_tool("binance_account_status", {})
            paper = PaperSimulator(status.structured_content["host"])
            assert paper.state()["order_requests"]["spot"] == 0
            svc.stop()
            assert listing(await client.list_tools()) == tools
            assert_unreachable(await client.call_tool("binance_spot_place_order", SMALL_BUY, raise_on_error=False),
                               svc.url)
            svc.start()
            order = await client.call_tool("binance_spot_place_order", SMALL_BUY, raise_on_error=False)
            assert not order.is_error, text_of(order)
            status = await client.call_tool("binance_account_status", {})
            paper = PaperSimulator(status.structured_content["host"])  # the new service's exchange
            assert paper.state()["order_requests"]["spot"] == 1  # the one order, placed after the restart
    finally:
        svc.stop()
    assert_no_token(tmp_path / "bridge.err", svc.token)


async def test_a_service_lost_during_an_order_says_the_order_may_have_reached_it(tmp_path):
    """The service dies while an order is on its way to the exchange (held there by a slow exchange): the call
    reached the service, so the text must not say that nothing was sent; it says to check orders first."""
    svc = Service(tmp_path, POLICY).start()
    try:
        async with bridge_client(svc.url, svc.token_file, tmp_path / "bridge.err") as client:
            status = await client.call_tool("binance_account_status", {})
            paper = PaperSimulator(status.structured_content["host"])
            paper.sim("faults", {"kind": "latency", "path": "/api/v3/order", "method": "POST", "latency_ms": 60000})
            call = asyncio.create_task(client.call_tool("binance_spot_place_order", SMALL_BUY, raise_on_error=False))
            while not [r for r in read_audit(svc.state_dir) if r.get("tool") == "binance_spot_place_order"
                       and r.get("outcome", {}).get("status") == "sending"]:  # on its way to the exchange, held
                await asyncio.sleep(0.05)
            svc.process.kill()
            svc.process.wait(30)
            result = await asyncio.wait_for(call, 120)
    finally:
        svc.stop()
    assert result.is_error
    text = text_of(result)
    assert text.startswith(f"SERVICE_UNREACHABLE: the connection to the binance-mcp service at {svc.url} failed "
                           "during the call to binance_spot_place_order"), text
    assert "the exchange may or may not have acted" in text and "check open orders" in text, text
    assert "nothing was sent" not in text


async def test_a_wrong_token_is_refused_with_a_clear_text(service: Service, served, tmp_path):
    wrong = write_token(tmp_path / "wrong-token", new_token())
    wrong_token = wrong.read_text().strip()
    async with bridge_client(service.url, wrong, tmp_path / "bridge.err") as client:
        assert listing(await client.list_tools()) == served[0]  # the catalogue: the service would not list
        result = await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)
    assert result.is_error
    text = text_of(result)
    assert text.startswith("SERVICE_REFUSED_TOKEN: "), text
    assert f"the binance-mcp service at {service.url} refused this bridge's token" in text, text
    assert "revoked or the token is wrong" in text and "nothing was sent to the exchange" in text, text
    assert "Ask the user for a new token: `binance-mcp agents add NAME`" in text and str(wrong) in text, text
    assert wrong_token not in text
    assert_no_token(tmp_path / "bridge.err", wrong_token, service.token)


async def test_a_revoked_agent_is_refused_and_a_new_token_in_the_file_works_at_once(tmp_path):
    """Revoked on the service: the next call is refused. The user writes a new agent's token into the token file
    (a broken file first): the bridge reads it on the next call, without a restart."""
    svc = Service(tmp_path, POLICY).start()
    try:
        async with bridge_client(svc.url, svc.token_file, tmp_path / "bridge.err") as client:
            assert not (await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)).is_error
            svc.revoke()
            refused = await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)
            write_token(svc.token_file, "")
            broken = await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)
            new = svc.add_agent("agent-2")
            write_token(svc.token_file, new)
            again = await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)
    finally:
        svc.stop()
    assert refused.is_error and text_of(refused).startswith("SERVICE_REFUSED_TOKEN: "), text_of(refused)
    assert broken.is_error, broken
    assert text_of(broken) == (f"SERVICE_TOKEN_FILE: the token file {svc.token_file} is empty: write into it the "
                               "token that `binance-mcp agents add NAME` printed on the service (one line, bmcp_...). "
                               "Nothing was sent to the exchange. Ask the user to fix the bridge's token file; the "
                               "next call reads it again."), text_of(broken)
    assert not again.is_error, text_of(again)
    assert_no_token(tmp_path / "bridge.err", svc.token, new)


# -- stdout carries only MCP ---------------------------------------------------------------------------------
REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "binance_spot_price", "arguments": PRICE}},
]


@pytest.mark.parametrize("case", ["up", "down", "wrong token"])
async def test_stdout_is_only_json_rpc_and_no_token_is_anywhere(service: Service, tmp_path, case: str):
    """A raw client, line by line: every line the bridge writes on stdout is a JSON-RPC message (a client would
    break on anything else), whatever the service does; neither stream carries a token."""
    url = f"http://127.0.0.1:{free_port()}/mcp" if case == "down" else service.url
    token_file = write_token(tmp_path / "token", new_token()) if case == "wrong token" else service.token_file
    token = token_file.read_text().strip()
    proc = await asyncio.create_subprocess_exec(
        *connect_command(url, token_file), env=bridge_env(BINANCE_MCP_LOG_LEVEL="DEBUG"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    messages = []
    for request in REQUESTS:
        proc.stdin.write(json.dumps(request).encode() + b"\n")
    await proc.stdin.drain()
    while not any(m.get("id") == 3 for m in messages):
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line, f"the bridge closed stdout: {(await proc.stderr.read()).decode()}"
        messages.append(json.loads(line))
    proc.stdin.close()
    rest, stderr = await asyncio.wait_for(proc.communicate(), 60)
    messages += [json.loads(line) for line in rest.splitlines()]
    assert all(m.get("jsonrpc") == "2.0" for m in messages), messages
    (listed,) = [m for m in messages if m.get("id") == 2]
    assert len(listed["result"]["tools"]) == 36
    (called,) = [m for m in messages if m.get("id") == 3]
    assert called["result"].get("isError", False) is (case != "up"), called
    everything = (json.dumps(messages) + stderr.decode()).lower()
    assert token.lower() not in everything and token[5:25].lower() not in everything
    assert b"authorization" not in stderr.lower() and b"bearer bmcp" not in stderr.lower()  # not even at DEBUG


async def test_a_token_file_others_can_read_gives_a_warning(service: Service, tmp_path):
    readable = write_token(tmp_path / "token", service.token)
    readable.chmod(0o644)
    async with bridge_client(service.url, readable, tmp_path / "bridge.err") as client:
        assert not (await client.call_tool("binance_spot_price", PRICE, raise_on_error=False)).is_error
    err = (tmp_path / "bridge.err").read_text()
    assert f"warning: the token file {readable} can be read by other users of this machine (mode 0644)" in err, err
    assert f"chmod 600 {readable}" in err
    assert_no_token(tmp_path / "bridge.err", service.token)
