"""``binance-mcp policy confirm [SHA256]``: a human applies a policy change that loosens (service mode).

The service (``serve --http``) applies a new policy content at once only when it only tightens; any other change
waits in its state store (confirm_state.py). Without an argument this lists what waits, with the exact command to
confirm each (exit 1 when something waits, 0 when nothing does); with a sha256 (or a unique prefix of at least 8
hex digits) it confirms that change, and the service applies it on its next call. Run it as the service's OS user:
the state directory is the service's, so an agent's user cannot confirm its own loosening."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from binance_mcp.policy.approvals_cli import STATE_DIR_HELP, state_db_of

EXIT_PENDING = 1  # listed: something waits for a human
EXIT_ERROR = 2  # nothing confirmed: an unknown, superseded or ambiguous sha256, or no usable state store


def add_parser(psub: argparse._SubParsersAction) -> None:
    c = psub.add_parser("confirm", help="list policy changes that loosen and wait for a human, or confirm one",
                        description="In service mode (serve --http) a policy change that loosens the policy in force "
                                    "waits for a human. Without SHA256: list what waits and the command to confirm "
                                    "it (exit 1 when something waits, 0 when nothing does). With SHA256 (or a unique "
                                    "prefix of at least 8 hex digits): confirm it; the service applies it on its "
                                    "next call. Run it as the service's user, on its state directory.")
    c.add_argument("sha256", nargs="?", default=None, help="the sha256 the list shows (a unique prefix will do)")
    c.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def run(ns: argparse.Namespace) -> int:
    from binance_mcp.policy.audit import AuditLog
    from binance_mcp.policy.confirm_state import ConfirmError
    from binance_mcp.policy.state import StateError, StateStore

    db = state_db_of(ns.state_dir, "no service has run there, so no policy change waits", EXIT_ERROR)
    if isinstance(db, int):
        return db
    state_dir = db.parent
    state = StateStore(state_dir / "state.db", time.time)
    try:
        if ns.sha256 is None:
            return _list(state.policy_changes(), ns.state_dir)
        try:
            rows = state.confirm_policy_change(ns.sha256, getpass.getuser())
        except ConfirmError as exc:
            print(f"binance-mcp policy confirm: {exc}", file=sys.stderr)
            return 0 if exc.kind == "confirmed" else EXIT_ERROR
        audit = AuditLog(state_dir / "audit.jsonl")
        for row in rows:
            audit.append({"event": "policy_confirm", "path": row["path"], "sha256": row["sha256"],
                          "by": row["confirmed_by"], "lines": row["lines"], "channel": "cli"})
            print(f"confirmed {row['sha256']} for {row['path']} (by {row['confirmed_by']}); it loosened:")
            for line in row["lines"]:
                print(f"  - {line}")
        audit.close()
        print("The service applies it on its next call (audit event policy_change_confirmed); a later change of "
              "the file replaces it and needs a confirmation of its own if it loosens.")
        return 0
    except StateError as exc:
        print(f"the state database cannot be used: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        state.close()


def _list(rows: list[dict], given_dir: Path | None) -> int:
    if not rows:
        print("nothing pending: no policy change waits for a human")
        return 0
    extra = f" --state-dir {given_dir}" if given_dir is not None else ""
    print(f"{len(rows)} policy change(s) wait for a human; the policy in force stays until one is confirmed:")
    for row in rows:
        print()
        print(f"file:    {row['path']}")
        print(f"sha256:  {row['sha256']}")
        print(f"seen:    {_utc(row['seen_at'])}")
        print("loosens:")
        for line in row["lines"]:
            print(f"  - {line}")
        print(f"to apply it: binance-mcp policy confirm {row['sha256']}{extra}")
    return EXIT_PENDING
