"""``binance-mcp approvals list | show | approve | deny``: a human answers, from a terminal, the orders an agent
asked for (the out-of-band channel of ``approvals.py``). Works on the server's state directory; no FastMCP.

The command to approve comes to the human from the agent, so ``approve`` first shows the order and asks y/N on a
terminal; without a terminal it approves nothing unless ``--yes`` is given. Approval is by id only: there is no
"approve the latest" that could be run without reading the order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from binance_mcp.paths import state_dir_access, state_dir_of

STATE_DIR_HELP = "the server's state directory (default: BINANCE_MCP_STATE_DIR, else ~/.local/state/binance-mcp)"
VERBS = {"show": "show one approval: the order in full and the rule that asked",
         "approve": "show the order and, after a yes on the terminal (or --yes), approve it for one call",
         "deny": "refuse one approval; the agent is told"}


def state_db_of(given: Path | None, nothing_there: str, missing_exit: int = 1) -> Path | int:
    """For the commands that read a server's state database: its path, or (after saying why on stderr) the exit
    code: 2 when this user may not use the directory, ``missing_exit`` when there is no database there yet
    (``nothing_there`` says what that means for the command)."""
    state_dir = state_dir_of(given)
    problem = state_dir_access(state_dir, create=False)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from binance_mcp.store import state_url

    if state_url() is None and not (state_dir / "state.db").exists():  # (on PostgreSQL: BINANCE_MCP_STATE_URL)
        print(f"no state database in {state_dir}: {nothing_there} (set --state-dir or BINANCE_MCP_STATE_DIR to the "
              "server's, or BINANCE_MCP_STATE_URL to its PostgreSQL store)", file=sys.stderr)
        return missing_exit
    return state_dir / "state.db"


def add_parser(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser("approvals", help="list, show, approve or deny orders waiting for a human",
                        description="Approve or deny, from a terminal, the orders an agent asked for. Works on the "
                                    "same state directory as the server (BINANCE_MCP_STATE_DIR).")
    ap.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)
    apsub = ap.add_subparsers(dest="approvals_command", required=True)
    lst = apsub.add_parser("list", help="pending approvals (--all: every status)")
    lst.add_argument("--all", action="store_true")
    lst.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=STATE_DIR_HELP)
    for verb, text in VERBS.items():
        v = apsub.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        v.add_argument("id")
        # Also after the id, as the APPROVAL_REQUIRED text writes it (SUPPRESS keeps the value given before).
        v.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=STATE_DIR_HELP)
        if verb == "approve":
            v.add_argument("--yes", action="store_true",
                           help="approve without the question (required when there is no terminal to ask on); "
                                "the order is shown all the same")


def run(ns: argparse.Namespace) -> int:
    import time

    from binance_mcp.policy.approvals import ApprovalStore, describe
    from binance_mcp.policy.audit import AuditLog
    from binance_mcp.policy.state import StateError, StateStore

    db = state_db_of(ns.state_dir, "the server has not asked for any approval there")
    if isinstance(db, int):
        return db
    state_dir = db.parent
    store = ApprovalStore(StateStore(state_dir / "state.db", time.time), time.time)
    try:
        expired = store.expire_old()
        audit = AuditLog(state_dir / "audit.jsonl")
        for e in expired:
            audit.append({"event": "approval_expired", "tool": e.tool, "approval_id": e.id, "summary": e.summary})
        if ns.approvals_command == "list":
            rows = store.list(None if ns.all else ("pending",))
            if not rows:
                print("no pending approvals" if not ns.all else "no approvals")
                return 0
            print(f"{'id':<10} {'status':<17} {'expires (UTC)':<21} order")
            for a in rows:
                print(f"{a.id:<10} {a.status:<17} {a.expires_at:<21} {describe(a.summary)}")
            return 0
        a = store.get(ns.id)
        if a is None:
            print(f"no approval with id {ns.id!r}; `binance-mcp approvals list` shows the pending ones",
                  file=sys.stderr)
            return 1
        if ns.approvals_command == "show":
            print(f"approval {a.id}: {a.status}")
            print(f"  order:    {describe(a.summary)}")
            for k, v in a.summary.items():
                print(f"    {k:<14} {v}")
            print(f"  rule:     {a.rule}")
            print(f"  created:  {a.created_at}   expires: {a.expires_at}")
            return 0
        if ns.approvals_command == "approve":
            if a.status != "pending":
                print(f"approval {a.id} is {a.status}, not pending", file=sys.stderr)
                return 1
            review(a)
            if not confirmed(a, ns.yes):
                return 1
        try:
            decided = store.decide(ns.id, ns.approvals_command == "approve")
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        audit.append({"event": "approval_" + ("approved" if decided.status == "approved" else "denied"),
                      "tool": decided.tool, "approval_id": decided.id, "summary": decided.summary,
                      "channel": "cli"})
        audit.close()
        if decided.status == "approved":
            print(f"approved {decided.id}: {describe(decided.summary)}. The agent's next identical call runs it "
                  f"once (until {decided.expires_at}).")
        else:
            print(f"denied {decided.id}: {describe(decided.summary)}. The agent will be told.")
        return 0
    except StateError as exc:
        print(str(exc), file=sys.stderr)
        return 1


def review(a) -> None:
    """What the human approves: the order, field by field, the rule that asked and the expiry."""
    from binance_mcp.policy.approvals import describe, order_lines

    print(f"Approval {a.id} asks to send this order once: {describe(a.summary)}")
    for line in order_lines(a.summary):
        print(line)
    print(f"  asked by policy rule: {a.rule}")
    print(f"  expires: {a.expires_at} (the agent must repeat the exact call before then)")
    sys.stdout.flush()


def confirmed(a, yes: bool) -> bool:
    """--yes, or a y on the terminal. Without a terminal and without --yes nothing is approved."""
    if yes:
        return True
    if not sys.stdin.isatty():
        print(f"binance-mcp approvals approve: approval {a.id} was NOT approved: there is no terminal to ask on. "
              "Read the order above; to approve it without the question, run the same command with --yes.",
              file=sys.stderr)
        return False
    try:
        answer = input("Approve it? Type y to approve, anything else to leave it pending [y/N]: ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print(f"Not approved: approval {a.id} is still pending (`approvals deny {a.id}` refuses it).")
    return False
