"""`binance-mcp approvals approve ID` as a human meets it: the command comes from the agent, so it shows the order
first and asks y/N on a terminal (a real pseudo-terminal here); without a terminal it approves nothing unless --yes
is given. Approvals are made by the real store in a real state database; the CLI runs as a subprocess."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from binance_mcp.policy.approvals import ApprovalStore
from binance_mcp.policy.engine import DENY, Call, Decision
from binance_mcp.policy.state import StateStore
from tests.helpers import clean_env

RULE = "tools.binance_spot_place_order.approval_above.notional_usd"
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.003", "price": "96000",
         "timeInForce": "GTC"}
SHOWN = ["Approval {id} asks to send this order once: BUY 0.003 BTCUSDT LIMIT @ 96000 (~288.00 USD) via "
         "binance_spot_place_order", "  tool: binance_spot_place_order", "  symbol: BTCUSDT", "  side: BUY",
         "  type: LIMIT", "  quantity: 0.003", "  price: 96000", "  notional: 288.00 USD (computed by the server)",
         f"  asked by policy rule: {RULE}"]


def ask(state_dir: Path) -> str:
    """An approval request, as the guard makes one for a 288 USD order; its id."""
    store = ApprovalStore(StateStore(state_dir / "state.db", time.time), time.time)
    decision = Decision(DENY, "APPROVAL_REQUIRED", RULE, "above the threshold", {"notional_usd": "288.0003"})
    return store.create(Call("binance_spot_place_order", ORDER), decision).id


def status(state_dir: Path, approval_id: str) -> str:
    return ApprovalStore(StateStore(state_dir / "state.db", time.time), time.time).get(approval_id).status


def approvals(state_dir: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "approvals", *args, "--state-dir", str(state_dir)],
                          env=clean_env(), stdin=stdin, capture_output=True, text=True, timeout=60)


def on_a_terminal(state_dir: Path, approval_id: str, answer: str) -> tuple[int, str]:
    """``approvals approve ID`` with a pseudo-terminal as stdin, stdout and stderr; ``answer`` is typed once the
    question is on the screen. (exit code, everything the terminal showed)"""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "approvals", "approve", approval_id,
                             "--state-dir", str(state_dir)], env=clean_env(), stdin=follower, stdout=follower,
                            stderr=follower, close_fds=True)
    os.close(follower)
    screen, typed = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the process closed the terminal (Linux: EIO)
                    break
                if not chunk:
                    break
                screen += chunk
            if not typed and b"[y/N]: " in screen:
                os.write(leader, answer.encode() + b"\n")
                typed = True
            if proc.poll() is not None and not ready:
                break
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert typed, f"the question never came:\n{screen.decode(errors='replace')}"
    return rc, screen.decode(errors="replace").replace("\r\n", "\n")


def shows_the_order(text: str, approval_id: str) -> None:
    lines = text.splitlines()
    for line in SHOWN:
        assert line.format(id=approval_id) in lines, text
    assert any(line.startswith("  expires: ") for line in lines), text


@pytest.mark.parametrize("answer", ["n", "", "maybe"])
def test_anything_but_y_on_the_terminal_approves_nothing(tmp_path, answer, store_backend):
    approval_id = ask(tmp_path)
    rc, screen = on_a_terminal(tmp_path, approval_id, answer)
    assert rc == 1, screen
    question = screen.index("[y/N]: ")
    shows_the_order(screen[:question], approval_id)  # the order comes before the question
    assert f"Not approved: approval {approval_id} is still pending" in screen[question:], screen
    assert status(tmp_path, approval_id) == "pending"


@pytest.mark.parametrize("answer", ["y", "YES"])
def test_y_on_the_terminal_approves_it(tmp_path, answer, store_backend):
    approval_id = ask(tmp_path)
    rc, screen = on_a_terminal(tmp_path, approval_id, answer)
    assert rc == 0, screen
    shows_the_order(screen[:screen.index("[y/N]: ")], approval_id)
    assert f"approved {approval_id}: BUY 0.003 BTCUSDT LIMIT @ 96000 (~288.00 USD)" in screen, screen
    assert status(tmp_path, approval_id) == "approved"


def test_without_a_terminal_it_refuses_unless_yes_is_given(tmp_path):
    approval_id = ask(tmp_path)
    refused = approvals(tmp_path, "approve", approval_id)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    shows_the_order(refused.stdout, approval_id)
    assert f"approval {approval_id} was NOT approved: there is no terminal to ask on" in refused.stderr
    assert "--yes" in refused.stderr and "[y/N]" not in refused.stdout
    assert status(tmp_path, approval_id) == "pending"

    piped = approvals(tmp_path, "approve", approval_id, stdin=subprocess.PIPE)  # a pipe is no terminal either
    assert piped.returncode == 1 and status(tmp_path, approval_id) == "pending"

    approved = approvals(tmp_path, "approve", approval_id, "--yes")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    shows_the_order(approved.stdout, approval_id)  # shown all the same
    assert approved.stdout.splitlines()[-1].startswith(f"approved {approval_id}: BUY 0.003 BTCUSDT")
    assert status(tmp_path, approval_id) == "approved"
    again = approvals(tmp_path, "approve", approval_id, "--yes")
    assert again.returncode == 1 and f"approval {approval_id} is approved, not pending" in again.stderr


def test_approval_is_by_id_only(tmp_path):
    approval_id = ask(tmp_path)
    for args in (["approve"], ["approve", "--yes"], ["approve", "latest", "--yes"], ["approve", "--all", "--yes"]):
        r = approvals(tmp_path, *args)
        assert r.returncode != 0, (args, r.stdout)
    assert status(tmp_path, approval_id) == "pending"


def test_state_dir_works_before_and_after_the_verb(tmp_path):
    approval_id = ask(tmp_path)
    before = subprocess.run([sys.executable, "-m", "binance_mcp", "approvals", "--state-dir", str(tmp_path), "show",
                             approval_id], env=clean_env(), capture_output=True, text=True, timeout=60)
    after = approvals(tmp_path, "show", approval_id)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout and f"approval {approval_id}: pending" in after.stdout
