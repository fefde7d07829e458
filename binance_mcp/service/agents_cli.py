"""``binance-mcp agents add NAME [--policy FILE] | list | revoke NAME``: who may call the HTTP service.

These commands work on the state store directly (no service needed, none asked), so only a user who can write the
service's state directory -- its own OS user -- can add or revoke an agent. ``add`` prints the new token once, alone
on the last line of stdout (``TOKEN=$(binance-mcp agents add bot | tail -1)``); only its SHA-256 is stored."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
import time
from pathlib import Path

from binance_mcp.paths import state_dir_of
from binance_mcp.policy.approvals_cli import STATE_DIR_HELP

TOKEN_PREFIX = "bmcp_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 43 characters: 256 random bits


def add_parser(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser("agents", help="add, list or revoke the agents (bearer tokens) of the HTTP service",
                        description="Manage who may call `binance-mcp serve --http`. Run as the service's OS user: "
                                    "these commands write its state directory (BINANCE_MCP_STATE_DIR) directly.")
    ap.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)
    asub = ap.add_subparsers(dest="agents_command", required=True)
    add = asub.add_parser("add", help="add an agent and print its token once (last line of stdout)")
    add.add_argument("name", help="1-40 letters, digits, '.', '_' or '-'; shown in the audit log and the status")
    add.add_argument("--policy", type=Path, default=None,
                     help="a policy of the agent's own, applied on top of the service's: a call must pass both, so "
                          "it can only tighten")
    lst = asub.add_parser("list", help="every agent: name, policy, added, revoked")
    rev = asub.add_parser("revoke", help="revoke an agent's token (takes effect on its next request)")
    rev.add_argument("name")
    for p in (add, lst, rev):
        p.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=STATE_DIR_HELP)


def run(ns: argparse.Namespace) -> int:
    from binance_mcp.policy.state import StateError, StateStore

    state_dir = state_dir_of(ns.state_dir)
    problem = state_dir_access(state_dir)
    if problem:
        print(f"binance-mcp agents: {problem}", file=sys.stderr)
        return 2
    store = StateStore(state_dir / "state.db", time.time)
    try:
        if ns.agents_command == "add":
            return _add(store, ns, state_dir)
        if ns.agents_command == "list":
            rows = store.agents()
            if not rows:
                print("no agents yet: binance-mcp agents add NAME")
                return 0
            print(f"{'name':<20} {'status':<8} {'added (UTC)':<21} {'revoked (UTC)':<21} policy")
            for a in rows:
                print(f"{a.name:<20} {'active' if a.active else 'revoked':<8} {a.created_at:<21} "
                      f"{a.revoked_at or '-':<21} {a.policy or '(the service policy only)'}")
            return 0
        if store.revoke_agent(ns.name, _user()):
            _audit(state_dir, {"event": "agent_revoked", "agent": ns.name, "by": _user()})
            print(f"revoked {ns.name}: its token is refused from its next request on")
            return 0
        print(f"no active agent named {ns.name!r} (binance-mcp agents list)", file=sys.stderr)
        return 1
    except StateError as exc:
        print(f"binance-mcp agents: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _add(store, ns: argparse.Namespace, state_dir: Path) -> int:
    from binance_mcp.policy.layers import agent_policy_errors
    from binance_mcp.policy.loader import PolicyLoadError, load_file

    policy = None
    if ns.policy is not None:
        path = ns.policy.expanduser().absolute()
        try:
            errors = agent_policy_errors(load_file(path))
        except PolicyLoadError as exc:
            errors = exc.errors
        if errors:
            print("binance-mcp agents add: the agent's policy cannot be used:\n" + "\n".join(errors), file=sys.stderr)
            return 2
        policy = str(path)
    token = new_token()
    try:
        store.add_agent(ns.name, token, policy, _user())
    except ValueError as exc:
        print(f"binance-mcp agents add: {exc}", file=sys.stderr)
        return 2
    _audit(state_dir, {"event": "agent_added", "agent": ns.name, "policy": policy, "by": _user()})
    print(f"added agent {ns.name}{' with the policy ' + policy if policy else ''}. Its token, shown only now (keep it "
          "in a file only the agent's user can read; the service stores only its hash):")
    print(token)
    return 0


def state_dir_access(state_dir: Path, create: bool = True) -> str | None:
    """None when this user may use the state directory (created if missing, with ``create``), else why not and who
    may."""
    if not create and not os.path.lexists(state_dir):
        return None  # the caller says there is nothing there
    try:
        if create:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ok = os.access(state_dir, os.R_OK | os.W_OK | os.X_OK)
        why = "permission denied"
    except OSError as exc:
        ok, why = False, exc.strerror or type(exc).__name__
    if ok:
        return None
    return (f"the state directory {state_dir} cannot be used by this user ({why}). Run this as the service's OS "
            "user (e.g. sudo -u binance-mcp binance-mcp ...) with the service's BINANCE_MCP_STATE_DIR.")


def _audit(state_dir: Path, record: dict) -> None:
    from binance_mcp.policy.audit import AuditLog

    audit = AuditLog(state_dir / "audit.jsonl")
    try:
        audit.append(record)
    finally:
        audit.close()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        return f"uid {os.getuid()}"
