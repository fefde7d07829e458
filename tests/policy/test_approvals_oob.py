"""Out-of-band approval end to end: ``binance-mcp serve`` as a subprocess over stdio (a client without
elicitation), and ``binance-mcp approvals ...`` as separate processes on the same state directory. The exchange
(the server's paper simulator) must see nothing until an approval is consumed, and then exactly one order."""

from __future__ import annotations

import asyncio
import re
import shlex
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from tests.helpers import clean_env
from tests.policy.test_guard_helpers import Paper, cli, limit_buy, serve, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
RULE = "tools.binance_spot_place_order.approval_above.notional_usd"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("oob")
    async with serve(d / "state", write_policy(d / "policy.yaml", POLICY)) as p:
        yield p


@pytest.fixture
def paper(server: Paper) -> Paper:
    server.reset()
    return server


ASKED = re.compile(r"Approval id ([a-z0-9]{8}): ask the user to approve it in the console at "
                   r"http://127\.0\.0\.1:8766/console/approvals/\1 or to run this in a terminal, exactly as it is: "
                   r"`([^`]+ approvals approve ([a-z0-9]{8}) --state-dir [^`]+)` \(it shows them the order and asks "
                   r"them to confirm; `([^`]+ approvals deny ([a-z0-9]{8}) --state-dir [^`]+)` refuses it\)")
COMMANDS: dict[str, tuple[str, str]] = {}  # approval id -> (approve, deny) commands, as the text gave them


async def required(paper: Paper, args: dict) -> str:
    """A call that needs approval: APPROVAL_REQUIRED with an id and the commands to paste; returns the id."""
    text = await paper.denied(ORDER, args, "APPROVAL_REQUIRED")
    m = ASKED.search(text)
    assert m and m.group(1) == m.group(3) == m.group(5), text
    assert m.group(2).endswith(f"--state-dir {shlex.quote(str(paper.state_dir))}"), m.group(2)  # not the default
    record = paper.calls(ORDER)[-1]
    assert record["decision"]["code"] == "APPROVAL_REQUIRED" and record["outcome"] == {"status": "not_run"}
    assert record["decision"]["facts"]["approval_id"] == m.group(1)
    COMMANDS[m.group(1)] = (m.group(2), m.group(4))
    return m.group(1)


async def paste(command: str, *extra: str, tmp: Path | None = None) -> tuple[int, str, str]:
    """The command as a human pastes it into a shell: another directory, no BINANCE_MCP_STATE_DIR, no PYTHONPATH,
    no terminal (so ``approve`` needs --yes). (exit code, stdout, stderr)"""
    env = {k: v for k, v in clean_env().items() if k not in ("BINANCE_MCP_STATE_DIR", "PYTHONPATH")}
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", " ".join([command, *extra]), env=env, cwd=str(tmp or tempfile.gettempdir()),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def events(paper: Paper, approval_id: str) -> list[str]:
    return [r["event"] for r in paper.audit() if r.get("approval_id") == approval_id]


async def test_an_approved_call_runs_exactly_once(paper: Paper):
    order = limit_buy(qty="0.001", price="90000")  # 90 USD: above the 50 USD threshold
    start = paper.state()["order_requests"]
    first = await required(paper, order)
    assert await required(paper, {**order, "symbol": "btcusdt"}) == first  # the same normalised call: same request

    (rc, listed, err), (rc2, shown, err2) = await asyncio.gather(cli(paper.state_dir, "approvals", "list"),
                                                                 cli(paper.state_dir, "approvals", "show", first))
    assert rc == 0 and rc2 == 0, err + err2
    (row,) = [line for line in listed.splitlines() if line.startswith(first)]
    assert "pending" in row and "BUY 0.001 BTCUSDT LIMIT @ 90000 (~97.00 USD) via binance_spot_place_order" in row
    assert f"approval {first}: pending" in shown
    for field in ("symbol         BTCUSDT", "side           BUY", "type           LIMIT", "quantity       0.001",
                  "price          90000", "notional_usd   97.00", f"rule:     {RULE}"):
        assert field in shown, shown

    # The command exactly as printed: without a terminal it shows the order and approves nothing ...
    approve, _ = COMMANDS[first]
    rc, out, err = await paste(approve)
    assert rc == 1 and "was NOT approved: there is no terminal to ask on" in err and "--yes" in err, out + err
    assert f"Approval {first} asks to send this order once: BUY 0.001 BTCUSDT LIMIT @ 90000" in out, out
    rc, shown, _ = await cli(paper.state_dir, "approvals", "show", first)
    assert f"approval {first}: pending" in shown
    assert events(paper, first) == ["approval_requested"]
    # ... and with --yes it approves, after showing the order.
    rc, out, err = await paste(approve, "--yes")
    assert rc == 0, out + err
    for line in ("  symbol: BTCUSDT", "  side: BUY", "  type: LIMIT", "  quantity: 0.001", "  price: 90000",
                 "  notional: 97.00 USD (computed by the server)", f"  asked by policy rule: {RULE}"):
        assert line in out.splitlines(), out
    assert out.splitlines()[-1].startswith(f"approved {first}: BUY 0.001 BTCUSDT LIMIT"), out
    assert paper.state()["order_requests"] == start  # approving sends nothing

    # Any change needs its own approval; the approved one stays for the exact call.
    changed = await required(paper, {**order, "quantity": "0.0011"})
    assert changed != first
    seq = paper.state()["last_seq"]
    placed = await paper.ok(ORDER, order)
    (sent,) = paper.spot_orders_since(seq)
    assert sent["params"]["quantity"] == "0.001" and sent["params"]["price"] == "90000"
    assert paper.state()["order_requests"]["spot"] == start["spot"] + 1
    record = paper.calls(ORDER)[-1]
    assert record["decision"]["code"] == "ALLOWED" and f"approval {first}" in record["decision"]["reason"]
    assert record["outcome"]["order_id"] == placed["orderId"]

    # Single use: the third identical call needs a new approval.
    third = await required(paper, order)
    assert third not in (first, changed)
    assert paper.state()["order_requests"]["spot"] == start["spot"] + 1
    assert events(paper, first) == ["approval_requested", "approval_approved", "approval_consumed"]
    assert events(paper, changed) == events(paper, third) == ["approval_requested"]
    assert [r for r in paper.audit() if r.get("approval_id") == first][1]["channel"] == "cli"
    rc, out, _ = await cli(paper.state_dir, "approvals", "list", "--all")
    assert re.search(rf"^{first} +consumed ", out, re.M) and re.search(rf"^{third} +pending ", out, re.M), out


async def test_a_denied_approval_is_refused(paper: Paper):
    order = limit_buy(qty="0.0013", price="90000")
    start = paper.state()["order_requests"]
    approval = await required(paper, order)
    approve, deny = COMMANDS[approval]
    rc, out, err = await paste(deny)  # denying asks nothing
    assert rc == 0 and out.startswith(f"denied {approval}: "), out + err
    (text, (rc, _, err)) = await asyncio.gather(paper.denied(ORDER, order, "APPROVAL_DENIED"),
                                                paste(approve, "--yes"))
    assert f"the user denied approval {approval}" in text, text
    assert rc == 1 and "not pending" in err, err  # a denial cannot be turned into an approval
    again = await required(paper, order)  # the denial was reported: a new request
    assert again != approval
    assert paper.state()["order_requests"] == start
    assert events(paper, approval) == ["approval_requested", "approval_denied", "approval_refused"]
    refused = paper.calls(ORDER)[-2]
    assert refused["decision"]["code"] == "APPROVAL_DENIED" and refused["outcome"] == {"status": "not_run"}


async def test_an_unknown_id_cannot_be_approved(paper: Paper):
    rc, out, err = await cli(paper.state_dir, "approvals", "approve", "zzzzzzzz")
    assert rc == 1 and "no approval with id 'zzzzzzzz'" in err, out + err


# Expiry runs on a fake clock, in process: tests/policy/test_approvals_clock.py.
