"""``binance-mcp approvals list | show | approve | deny``: a human answers, from a terminal, the orders an agent
asked for (the out-of-band channel of ``approvals.py``). Works on the server's state directory; no FastMCP."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from binance_mcp.paths import state_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser("approvals", help="list, show, approve or deny orders waiting for a human",
                        description="Approve or deny, from a terminal, the orders an agent asked for. Works on the "
                                    "same state directory as the server (BINANCE_MCP_STATE_DIR).")
    ap.add_argument("--state-dir", type=Path, default=None,
                    help="default: BINANCE_MCP_STATE_DIR or the user state dir")
    apsub = ap.add_subparsers(dest="approvals_command", required=True)
    lst = apsub.add_parser("list", help="pending approvals (--all: every status)")
    lst.add_argument("--all", action="store_true")
    for verb in ("show", "approve", "deny"):
        v = apsub.add_parser(verb, help=f"{verb} one approval")
        v.add_argument("id")


def run(ns: argparse.Namespace) -> int:
    import time

    from binance_mcp.policy.approvals import ApprovalStore, describe
    from binance_mcp.policy.audit import AuditLog
    from binance_mcp.policy.state import StateError, StateStore

    state_dir = state_dir_of(ns.state_dir)
    if not (state_dir / "state.db").exists():
        print(f"no state database in {state_dir}: the server has not asked for any approval there "
              "(set --state-dir or BINANCE_MCP_STATE_DIR to the server's)", file=sys.stderr)
        return 1
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
