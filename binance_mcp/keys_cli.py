"""``binance-mcp keys store|delete``: the API secret in the OS keychain (the optional keyring extra), so that it need
not sit in the MCP client's config. The secret is read without echo (or from stdin when it is not a terminal) and
never printed; ``serve`` finds it under the API key when no secret is in the environment or a file."""

from __future__ import annotations

import argparse
import os
import sys

from binance_mcp.keys import KEYCHAIN_SERVICE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys", help="keep the API secret in the OS keychain (pip install 'binance-mcp-policy[keyring]')",
        description="Keep the API secret in the OS keychain (macOS Keychain, Windows Credential Locker, the Secret "
                    f"Service on Linux) under the service name {KEYCHAIN_SERVICE!r} and the API key as the user "
                    "name. `binance-mcp serve` reads it when BINANCE_API_KEY is set and neither BINANCE_API_SECRET "
                    "nor BINANCE_API_SECRET_FILE is. Needs the keyring extra.")
    actions = p.add_subparsers(dest="keys_command", required=True)
    for name, text in (("store", "store the API secret of an API key (asked without echo, or read from stdin)"),
                       ("delete", "remove the API secret of an API key from the keychain")):
        a = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("--api-key", help="the API key (default: BINANCE_API_KEY)")


def _say(text: str) -> None:
    print(f"binance-mcp keys: {text}", file=sys.stderr)


def _masked(api_key: str) -> str:
    return "****" + api_key[-4:] if len(api_key) > 12 else "****"


def _read_secret() -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass("API secret (not shown): ", stream=sys.stderr)
    return sys.stdin.read() if sys.stdin is not None else ""


def run(args: argparse.Namespace) -> int:
    from binance_mcp.keys import KeychainUnavailable, delete_from_keychain, store_in_keychain

    api_key = (args.api_key or os.environ.get("BINANCE_API_KEY", "")).strip()
    if not api_key:
        _say("no API key: set BINANCE_API_KEY or pass --api-key.")
        return 2
    try:
        if args.keys_command == "delete":
            if not delete_from_keychain(api_key):
                _say(f"the OS keychain has no secret for API key {_masked(api_key)}.")
                return 1
            _say(f"removed the API secret of API key {_masked(api_key)} from the OS keychain.")
            return 0
        secret = _read_secret().strip()
        if not secret or any(ch.isspace() for ch in secret):
            _say("the API secret is empty or has white space in it: nothing was stored. Give the secret alone.")
            return 2
        backend = store_in_keychain(api_key, secret)
    except KeychainUnavailable as exc:
        _say(str(exc))
        return 2
    _say(f"stored the API secret of API key {_masked(api_key)} in the OS keychain ({backend}), service "
         f"{KEYCHAIN_SERVICE!r}. `binance-mcp serve` uses it when BINANCE_API_KEY is set and no secret is given.")
    return 0
