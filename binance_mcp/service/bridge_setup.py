"""What ``binance-mcp connect`` checks before it starts: the service's URL and the token file.

Each problem is a ``BridgeSetupError`` whose text says what to change; the command prints it on stderr and exits 2
(a bridge that cannot work should not start and then fail every call). No message ever contains the token.
This module does not import FastMCP, so the checks are quick.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TOKEN = re.compile(r"bmcp_[A-Za-z0-9_-]{43}")  # what `binance-mcp agents add` prints
EXAMPLE_URL = "http://127.0.0.1:8765/mcp"


class BridgeSetupError(Exception):
    """The bridge cannot start: the URL or the token file is wrong; the message says how to fix it."""


@dataclass(frozen=True)
class Token:
    """The token, read once; ``repr`` and ``str`` never show it."""

    _value: str
    warning: str | None = None  # the file can be read by other users

    def secret(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Token(****)"

    __str__ = __repr__


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The service's MCP endpoint: ``http(s)://HOST[:PORT]/.../mcp``; plain http only to this machine."""
    parts = urlsplit(url.strip())
    where = f"the service URL {url!r}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BridgeSetupError(f"{where} is not an http:// or https:// URL: give the service's MCP endpoint, e.g. "
                               f"{EXAMPLE_URL} (what `binance-mcp serve --http` listens on).")
    if parts.username is not None or parts.password is not None:
        raise BridgeSetupError(f"{where} has a user name or password in it: remove it; the bridge authenticates "
                               "with the token in --token-file only.")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise BridgeSetupError(f"{where} has a port that is not a number between 0 and 65535.") from None
    host = parts.hostname or ""
    if not host:
        raise BridgeSetupError(f"{where} has no host name: e.g. {EXAMPLE_URL}.")
    if parts.query or parts.fragment:
        raise BridgeSetupError(f"{where} has a query or fragment (?... or #...): remove it.")
    if not parts.path.rstrip("/").endswith("/mcp"):
        raise BridgeSetupError(f"{where} does not end in /mcp: the service serves MCP at the path /mcp (e.g. "
                               f"{EXAMPLE_URL}; behind a TLS proxy, whatever path the proxy forwards to /mcp).")
    if parts.scheme == "http" and not is_loopback(host):
        raise BridgeSetupError(f"{where} is plain http to another machine ({host}): the token and every call would "
                               "cross the network unencrypted. Use https:// (the service with --tls-cert/--tls-key, "
                               "or a TLS proxy in front of it); plain http is only for 127.0.0.1, ::1 or localhost.")
    return url.strip()


def read_token(path: str | os.PathLike) -> Token:
    """The one token in the file at ``path`` (surrounding whitespace and a final newline are fine)."""
    file = Path(path).expanduser()
    where = f"the token file {file}"
    try:
        st = file.stat()
        if stat.S_ISDIR(st.st_mode):
            raise BridgeSetupError(f"{where} is a directory: give the file that holds the token.")
        raw = file.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BridgeSetupError(f"{where} cannot be read ({reason}): check the path given to --token-file and that "
                               "this user may read it.") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BridgeSetupError(f"{where} is not plain text: it must hold only the token that `binance-mcp agents "
                               "add NAME` printed (bmcp_...).") from None
    words = text.split()
    if not words:
        raise BridgeSetupError(f"{where} is empty: write into it the token that `binance-mcp agents add NAME` "
                               "printed on the service (one line, bmcp_...).")
    if len(words) > 1:
        raise BridgeSetupError(f"{where} holds {len(words)} words, not one token: keep only the token of this "
                               "agent (one line, bmcp_...); each agent's token goes in a file of its own.")
    if not TOKEN.fullmatch(words[0]):
        raise BridgeSetupError(f"{where} does not hold a binance-mcp agent token (bmcp_ followed by 43 letters, "
                               "digits, - or _): put in it the token `binance-mcp agents add NAME` printed on the "
                               "service; not a Binance API key.")
    warning = None
    if os.name == "posix" and st.st_mode & 0o077:
        warning = (f"warning: {where} can be read by other users of this machine (mode "
                   f"{stat.S_IMODE(st.st_mode):04o}); anyone who reads it can trade as this agent: chmod 600 {file}")
    return Token(words[0], warning)
