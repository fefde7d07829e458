"""``binance-mcp console [--listen 127.0.0.1:8766] | set-password | login-link`` and ``binance-mcp kill on|off|status``.

Run as the service's OS user: these write the state directory directly (the password's scrypt hash, a login link's
SHA-256, the kill flag), so only a user who can write it -- the service's own -- can set the console's credential or
pull the kill switch from a terminal. Each change is audited."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys
import time
from pathlib import Path

from binance_mcp.paths import state_dir_access, state_dir_of
from binance_mcp.policy.approvals_cli import STATE_DIR_HELP
from binance_mcp.service.agents_cli import _audit, _user  # the CLIs that act on a state directory share them

MIN_PASSWORD = 12


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from binance_mcp.service.console import DEFAULT_LISTEN

    cp = sub.add_parser("console", help="the human console in a browser (approvals, caps, kill switch, audit)",
                        description="Serve the console on 127.0.0.1 for the state directory of a stdio server (the "
                                    "HTTP service serves it itself at /console), or set its credential. Run as the "
                                    "service's OS user. See docs/console.md.")
    cp.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)
    cp.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                    help=f"where to serve it (default {DEFAULT_LISTEN}; loopback only)")
    csub = cp.add_subparsers(dest="console_command")
    pw = csub.add_parser("set-password", help="set the console's password (asked twice on the terminal; read from "
                                              "stdin when it is not a terminal); ends every open session")
    link = csub.add_parser("login-link", help="print a one-time login link (valid 10 minutes)")
    link.add_argument("--url", default=f"http://{DEFAULT_LISTEN}",
                      help=f"the console's base URL (default http://{DEFAULT_LISTEN}, the standalone console's); the "
                           "service's, e.g. http://127.0.0.1:8765 or https://trading.example.com")
    link.add_argument("--next", default=None, metavar="PATH", help="where to go after login, e.g. "
                                                                   "/console/approvals/ID")
    for p in (pw, link):
        p.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=STATE_DIR_HELP)
    kp = sub.add_parser("kill", help="turn the kill flag in the state store on or off, or show it",
                        description="The kill flag stops every call that adds exposure on every server using this "
                                    "state store (kill_switch_scope: all stops every trading call), like the "
                                    "kill-switch file. Audited.")
    kp.add_argument("what", choices=("on", "off", "status"))
    kp.add_argument("--state-dir", type=Path, default=None, help=STATE_DIR_HELP)


def _store(ns: argparse.Namespace):
    from binance_mcp.policy.state import StateStore

    state_dir = state_dir_of(ns.state_dir)
    problem = state_dir_access(state_dir)
    if problem:
        print(problem, file=sys.stderr)
        return None, state_dir
    return StateStore(state_dir / "state.db", time.time), state_dir


def run_kill(ns: argparse.Namespace) -> int:
    from binance_mcp.policy.state import StateError

    store, state_dir = _store(ns)
    if store is None:
        return 2
    try:
        if ns.what == "status":
            flag = store.kill_flag()
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(flag.set_at)) if flag.set_at else "-"
            print(f"kill flag: {'ON' if flag.on else 'off'} (last set by {flag.set_by or '-'} at {when})")
            return 0
        by = f"{_user()} (binance-mcp kill)"
        store.set_kill_flag(ns.what == "on", by)
        _audit(state_dir, {"event": f"kill_flag_{ns.what}", "by": by, "channel": "cli"})
        print(f"kill flag {ns.what}: " + ("every server on this state store now denies calls that add exposure "
                                          "(KILL_SWITCH)" if ns.what == "on" else "trading may resume"))
        return 0
    except StateError as exc:
        print(f"binance-mcp kill: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def run(ns: argparse.Namespace) -> int:
    if ns.console_command is None:
        return serve(ns)
    from binance_mcp.policy.state import StateError

    store, state_dir = _store(ns)
    if store is None:
        return 2
    try:
        if ns.console_command == "set-password":
            return _set_password(store, state_dir)
        return _login_link(store, state_dir, ns)
    except StateError as exc:
        print(f"binance-mcp console: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _set_password(store, state_dir: Path) -> int:
    from binance_mcp.policy.console_state import hash_password

    if sys.stdin.isatty():
        first = getpass.getpass("New console password: ")
        if getpass.getpass("The same again: ") != first:
            print("binance-mcp console set-password: the two passwords differ; nothing was changed", file=sys.stderr)
            return 2
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if len(first) < MIN_PASSWORD:
        print(f"binance-mcp console set-password: use at least {MIN_PASSWORD} characters; nothing was changed",
              file=sys.stderr)
        return 2
    by = _user()
    store.set_console_password(hash_password(first), by)
    _audit(state_dir, {"event": "console_password_set", "by": by, "channel": "cli"})
    print("console password set (scrypt hash in the state store); every open console session was ended")
    return 0


def _login_link(store, state_dir: Path, ns: argparse.Namespace) -> int:
    from binance_mcp.service.console.auth import safe_next

    base = ns.url.rstrip("/").removesuffix("/console")
    token = secrets.token_urlsafe(32)
    by = _user()
    expires = store.add_login_link(token, by)
    _audit(state_dir, {"event": "console_login_link", "by": by, "channel": "cli"})
    nxt = f"?next={safe_next(ns.next)}" if ns.next else ""
    until = time.strftime("%H:%M:%SZ", time.gmtime(expires))
    print(f"a one-time console login link, valid until {until} (UTC); open it in your browser:", file=sys.stderr)
    print(f"{base}/console/link/{token}{nxt}")
    return 0


def serve(ns: argparse.Namespace) -> int:
    """The standalone console: 127.0.0.1 only, on the settings' state directory (BINANCE_MCP_STATE_DIR)."""
    from binance_mcp.service.http import is_loopback, parse_bind

    try:
        host, port = parse_bind(ns.listen)
    except ValueError as exc:
        print(f"binance-mcp console: {str(exc).replace('--http', '--listen')}", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(f"binance-mcp console: refusing to listen on {host}: the standalone console serves this machine only "
              "(127.0.0.1). To reach it from elsewhere, use the HTTP service's /console behind TLS "
              "(docs/deployment.md)", file=sys.stderr)
        return 2
    from binance_mcp.errors import ConfigError
    from binance_mcp.settings import load_settings

    try:
        settings = load_settings(**({"state_dir": str(ns.state_dir)} if ns.state_dir else {}))
    except ConfigError as exc:
        print(f"binance-mcp console: {exc}", file=sys.stderr)
        return 2
    problem = state_dir_access(settings.state_dir)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from binance_mcp.service.console.standalone import serve_standalone

    return asyncio.run(serve_standalone(settings, host, port))

