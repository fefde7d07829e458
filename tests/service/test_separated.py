"""The guard in its own trust domain, end to end, with two real OS users (issue 15's "Done when").

The service's user runs a simulator and ``binance-mcp serve --http`` in testnet mode against it, with its state
directory (0700), its policy (0600) and its secret file (0600). The agent's user runs the bridge ``binance-mcp
connect``, which fastmcp's stdio client drives from here. Tools work through the bridge (the order is checked on
the simulator, with a signed request of the test's own); as the agent's user, the state directory, the policy and
the secret cannot be read or changed, and ``approvals approve`` and ``agents add`` fail.

It needs root (CI runs as root): without it the test is skipped, unless BINANCE_MCP_SEPARATED_REQUIRED is set, as
CI sets it, and then it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from binance import Client as BinanceClient

from tests.helpers import http_json, point_at
from tests.service.separation import (
    SYSTEM_PYTHON,
    Background,
    OsUser,
    binance_mcp_as,
    build_runtime,
    free_port,
    not_root_reason,
    os_user,
    run_as,
    user_env,
)

ONE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the tests that share the module's bridge
REQUIRED = "BINANCE_MCP_SEPARATED_REQUIRED"
PRICE = Decimal("50000")
POLICY = """\
version: 1
default: deny
classes:
  read: allow
tools:
  binance_spot_place_order:
    action: allow
    approval_above: {notional_usd: 250}
    limits:
      symbols: [BTCUSDT]
      order_types: [LIMIT]
      max_notional_usd: 500
"""


SIMULATOR = ("import os, sys; from binance_mcp.cli import main; secret = open(os.environ['SIM_SECRET_FILE']).read()"
             ".strip(); sys.exit(main(['simulator', *sys.argv[1:], '--api-secret', secret]))")


def _can_run() -> None:
    reason = not_root_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRED):
        pytest.fail(f"{reason}; {REQUIRED} is set, so this test must run here")
    pytest.skip(reason)


@dataclass
class Separated:
    svc: OsUser
    agent: OsUser
    runtime: Path
    state: Path
    policy: Path
    secret: Path
    token_file: Path
    sim_url: str
    api_key: str
    api_secret: str
    service_env: dict[str, str]
    mcp_url: str
    logs: Path
    service_pid: int

    def agent_env(self, **settings: str) -> dict[str, str]:
        return user_env(self.agent, self.runtime, **settings)

    def as_agent(self, *argv: str) -> tuple[int, str]:
        r = run_as(self.agent, self.agent_env(BINANCE_MCP_STATE_DIR=str(self.state)), *argv)
        return r.returncode, r.stdout + r.stderr

    def binance_mcp_as_agent(self, *args: str) -> tuple[int, str]:
        return self.as_agent(SYSTEM_PYTHON, "-m", "binance_mcp", *args)

    def binance_mcp_as_service(self, *args: str) -> tuple[int, str]:
        r = run_as(self.svc, self.service_env, SYSTEM_PYTHON, "-m", "binance_mcp", *args)
        return r.returncode, r.stdout + r.stderr

    def exchange(self) -> BinanceClient:
        """The test's own signed client on the simulator: what reached the exchange, not what the server says."""
        return point_at(BinanceClient(self.api_key, self.api_secret, ping=False), self.sim_url)


@pytest.fixture(scope="module")
def separated() -> Iterator[Separated]:
    _can_run()
    top = Path(tempfile.mkdtemp(prefix="bmcp-separated-", dir="/tmp"))
    top.chmod(0o755)  # every user may pass through; what is inside decides the rest
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, top, ignore_errors=True)
        runtime = build_runtime(top / "runtime")
        svc = stack.enter_context(os_user("bmcp-svc", top))
        agent = stack.enter_context(os_user("bmcp-agent", top))
        logs = top / "logs"
        logs.mkdir(mode=0o700)  # root's: the processes' stderr, opened here and handed to them
        api_key, api_secret = secrets.token_hex(32), secrets.token_hex(32)
        state = svc.home / "state"
        state.mkdir()
        svc.own(state, 0o700)
        policy = svc.write(svc.home / "policy.yaml", POLICY)
        secret = svc.write(svc.home / "api-secret", api_secret + "\n")

        # The simulator gets its secret from the service user's file, not from its command line (which every
        # user can read in /proc): the secret appears in no process's arguments.
        sim = Background(svc, user_env(svc, runtime, SIM_SECRET_FILE=str(secret)), [
            SYSTEM_PYTHON, "-c", SIMULATOR, "--controls", "--tick-seconds", "0", "--api-key", api_key],
            logs / "simulator.txt")
        stack.callback(sim.stop)
        sim_url = sim.wait_for(r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        http_json(f"{sim_url}/_sim/price", {"symbol": "BTCUSDT", "price": str(PRICE)})

        service_env = user_env(svc, runtime, BINANCE_MCP_MODE="testnet", BINANCE_MCP_BASE_URL=sim_url,
                               BINANCE_API_KEY=api_key, BINANCE_API_SECRET_FILE=str(secret),
                               BINANCE_MCP_POLICY=str(policy), BINANCE_MCP_STATE_DIR=str(state))
        port = free_port()
        service = Background(svc, service_env, [SYSTEM_PYTHON, "-m", "binance_mcp", "serve", "--http",
                                                f"127.0.0.1:{port}"], logs / "service.txt")
        stack.callback(service.stop)
        service.wait_listening(port)

        done = run_as(svc, service_env, SYSTEM_PYTHON, "-m", "binance_mcp", "agents", "add", "agent-one")
        assert done.returncode == 0, done.stderr
        token = done.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"bmcp_[A-Za-z0-9_-]{43}", token), "agents add: no token on the last line"
        token_file = agent.write(agent.home / "token", token + "\n")
        yield Separated(svc, agent, runtime, state, policy, secret, token_file, sim_url, api_key, api_secret,
                        service_env, f"http://127.0.0.1:{port}/mcp", logs, service.proc.pid)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def agent(separated: Separated):
    """fastmcp's stdio client on the bridge ``binance-mcp connect``, run as the agent's user (one for the module:
    the bridge's start-up is most of this test's time)."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    s = separated
    argv = binance_mcp_as(s.agent, s.agent_env(), "connect", s.mcp_url, "--token-file", str(s.token_file))
    transport = StdioTransport(command=argv[0], args=argv[1:], env={}, cwd=str(s.agent.home),
                               log_file=s.logs / "bridge.txt", keep_alive=False)
    client = Client(transport, mode="legacy", timeout=60)
    try:
        await client.__aenter__()
    except Exception as exc:  # the bridge's own words, not only "Connection closed"
        log = (s.logs / "bridge.txt").read_text(errors="replace")[-3000:]
        raise AssertionError(f"the bridge did not start ({exc}); its stderr:\n{log}") from exc
    try:
        yield client
    finally:
        await client.__aexit__(None, None, None)


def order(quantity: str) -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": quantity, "price": str(PRICE)}


def sim_orders(s: Separated) -> list[dict]:
    client = s.exchange()
    try:
        return client.get_all_orders(symbol="BTCUSDT")
    finally:
        client.close_connection()


@ONE_LOOP
async def test_tools_work_through_the_bridge_with_the_service_run_as_another_user(separated: Separated, agent):
    status, owner = separated.as_agent("/usr/bin/ps", "-o", "user:32=", "-p", str(separated.service_pid))
    assert (status, owner.strip()) == (0, separated.svc.name)
    before = sim_orders(separated)
    price = await agent.call_tool("binance_spot_price", {"symbol": "BTCUSDT"})
    assert Decimal(price.structured_content["prices"][0]["price"]) == PRICE
    placed = await agent.call_tool("binance_spot_place_order", order("0.001"), raise_on_error=False)
    assert not placed.is_error, placed.content[0].text
    order_id = placed.structured_content["orderId"]
    over = await agent.call_tool("binance_spot_place_order", order("0.011"), raise_on_error=False)
    assert over.is_error and over.content[0].text.startswith("NOTIONAL_OVER_LIMIT"), over.content[0].text
    assert "max_notional_usd" in over.content[0].text
    after = sim_orders(separated)
    new = [o for o in after if o["orderId"] not in {b["orderId"] for b in before}]
    assert [(o["orderId"], Decimal(o["origQty"]), Decimal(o["price"]), o["side"]) for o in new] == \
        [(order_id, Decimal("0.001"), PRICE, "BUY")]  # the order over the cap never reached the exchange


PRIVATE = ("cat {policy}", "cat {secret}", "ls {state}", "cat {state}/state.db", "cat {state}/audit.jsonl",
           "touch {policy}", "touch {secret}", "touch {state}/new-file", "rm -f {policy}", "rm -f {secret}",
           "rm -f {state}/state.db", "rm -f {state}/audit.jsonl", "cat /proc/{pid}/environ")


def test_the_agent_user_can_neither_read_nor_change_the_state_the_policy_or_the_secret(separated: Separated):
    s = separated
    files = [s.policy, s.secret, s.state / "state.db", s.state / "audit.jsonl"]
    assert all(f.is_file() for f in files)  # as root: the service made its state database and audit log
    contents = [f.read_bytes() for f in files]
    for command in PRIVATE:
        argv = command.format(policy=s.policy, secret=s.secret, state=s.state, pid=s.service_pid).split()
        status, output = s.as_agent(f"/usr/bin/{argv[0]}", *argv[1:])
        assert status != 0, f"as {s.agent.name}: `{command}` succeeded: {output}"
        assert "Permission denied" in output, output
    assert [f.read_bytes() for f in files] == contents
    assert not (s.state / "new-file").exists()
    # Nor through the processes: the service's environment is its own (above), and no command line holds it.
    status, listed = s.as_agent("/usr/bin/ps", "-eo", "user:32,args", "--no-headers")
    assert status == 0 and s.svc.name in listed, listed
    assert s.api_secret not in listed


@ONE_LOOP
async def test_an_approval_the_agent_asked_for_cannot_be_given_by_the_agent_user(separated: Separated, agent):
    s = separated
    asked = await agent.call_tool("binance_spot_place_order", order("0.006"), raise_on_error=False)
    text = asked.content[0].text
    assert asked.is_error and text.startswith("APPROVAL_REQUIRED"), text
    approval_id = re.search(r"Approval id (\w+)", text).group(1)
    status, output = s.binance_mcp_as_agent("approvals", "approve", approval_id, "--yes")
    assert status != 0, output
    assert str(s.state) in output, output
    # The approval is real, and still pending: the service's user sees it.
    status, output = s.binance_mcp_as_service("approvals", "show", approval_id)
    assert status == 0 and f"approval {approval_id}: pending" in output, output


def test_the_agent_user_cannot_add_an_agent(separated: Separated):
    status, output = separated.binance_mcp_as_agent("agents", "add", "x")
    assert status != 0, output
    assert not re.search(r"bmcp_[A-Za-z0-9_-]{43}", output), "a token was printed"
    status, listed = separated.binance_mcp_as_service("agents", "list")
    assert status == 0, listed
    assert "agent-one" in listed and not re.search(r"^\s*x\b", listed, re.M), listed
