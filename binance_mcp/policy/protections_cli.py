"""``binance-mcp protections show | reset``: a human looks at, and lifts, the account protections on the server's
state directory (a tool cannot: an agent that lost money must not be able to clear the protection that stopped it).

``reset`` lifts today's trips, starts the day's equity start and peak again from the next sample (after a deposit
or withdrawal moved the equity), and makes losing closes and closes before now stop counting. It is audited."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from binance_mcp.policy.approvals_cli import STATE_DIR_HELP, state_db_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    pp = sub.add_parser("protections", help="show or reset the account protections (daily loss, drawdown, streaks)",
                        description="Show the account protections' state, or reset them (a human's step, not a "
                                    "tool). Works on the server's state directory (BINANCE_MCP_STATE_DIR).")
    pp.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)
    psub = pp.add_subparsers(dest="protections_command", required=True)
    show = psub.add_parser("show", help="today's equity samples and the protections tripped, per account")
    show.add_argument("--json", action="store_true", help="one JSON document instead of text")
    reset = psub.add_parser("reset", help="lift today's trips and start the day's equity again from the next sample")
    reset.add_argument("--account", default=None, help="only this account id (default: every account on the store)")
    for p in (show, reset):
        p.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=STATE_DIR_HELP)


def _accounts(state) -> list[str]:
    def go(db):
        rows = db.execute("SELECT account FROM equity_days UNION SELECT account FROM protection_trips").fetchall()
        return sorted(r[0] for r in rows)

    return state.transaction(go, "read", write=False)


def run(ns: argparse.Namespace) -> int:
    from binance_mcp.policy.audit import AuditLog
    from binance_mcp.policy.state import StateError, StateStore

    db = state_db_of(ns.state_dir, "no server has run there")
    if isinstance(db, int):
        return db
    state_dir = db.parent
    state = StateStore(state_dir / "state.db", time.time)
    try:
        if ns.protections_command == "show":
            out = {}
            for account in _accounts(state):
                day = state.equity_day(account)
                out[account] = {"equity_today": None if day is None else {k: str(v) for k, v in day.items()},
                                "tripped": state.trips(account)}
            if ns.json:
                print(json.dumps(out, indent=2, default=str))
            elif not out:
                print("no equity samples today and nothing tripped")
            for account, row in ([] if ns.json else out.items()):
                day = row["equity_today"]
                print(f"account {account}")
                if day:
                    print(f"  equity today (UTC): first {day['first']} USD, peak {day['peak']} USD, last {day['last']} "
                          "USD")
                for name, trip in row["tripped"].items():
                    figures = ", ".join(f"{k}={v}" for k, v in trip.items() if k not in ("code", "at"))
                    print(f"  TRIPPED {name} ({trip['code']}): {figures}")
            return 0
        done = state.reset_protections(ns.account, by=f"cli:{getpass.getuser()}")
        AuditLog(state_dir / "audit.jsonl").append({"event": "protections_reset", "account": ns.account or "*",
                                                   **{k: v for k, v in done.items() if k != "at"}})
        print(f"protections reset ({'every account' if ns.account is None else ns.account}): "
              f"{done['trips_lifted']} trip(s) lifted; today's equity starts again from the next sample; losing "
              "closes and closes before now no longer count")
        return 0
    except StateError as exc:
        print(f"the state database cannot be used: {exc}", file=sys.stderr)
        return 1
    finally:
        state.close()
