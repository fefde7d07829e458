"""The human console's credentials, sessions and one-time login links, and the kill flag, in the state store: a
mixin of ``StateStore`` (the same connection, lock and transactions), so that every server and console on one
store shares them (a password set once works on every replica; the kill flag stops every server).

Nothing secret is stored in the clear: the password as a scrypt hash (with its salt and cost), session ids and login
tokens as their SHA-256. ``binance-mcp console`` and ``binance-mcp kill`` write here directly, as the service's OS
user (who owns the state directory)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from dataclasses import dataclass

from binance_mcp.policy.agent_state import (
    token_digest,  # a secret stored as its SHA-256, as agents' tokens are
)

# scrypt cost: 2^15 x 8 x 1 (32 MiB, about 0.1 s): a stolen hash costs an attacker as much per guess
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
SESSION_TTL_S = 8 * 3600.0
LINK_TTL_S = 600.0
KILL_FLAG = "kill_switch"


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 << 20, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 << 20, dklen=len(bytes.fromhex(digest)))
    except (ValueError, MemoryError):  # a damaged hash never matches (fail closed)
        return False
    return hmac.compare_digest(got.hex(), digest)


@dataclass(frozen=True)
class ConsoleSession:
    id_sha256: str
    csrf: str
    via: str  # password or link
    client: str
    created_at: float
    expires_at: float

    @property
    def label(self) -> str:
        """Who acted, in the audit log and in decided_by: the session, never its secret."""
        return f"console session {self.id_sha256[:12]} ({self.via}, {self.client})"


@dataclass(frozen=True)
class KillFlag:
    on: bool
    set_at: float | None = None
    set_by: str | None = None


class ConsoleState:
    # -- the password -------------------------------------------------------------------------
    def set_console_password(self, hashed: str, by: str) -> None:
        now = self.clock()

        def go(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO console_credentials (name, hash, set_at, set_by) VALUES ('password', ?, ?, ?) ON "
                       "CONFLICT (name) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at, "
                       "set_by = excluded.set_by", (hashed, now, by))
            # a new password ends every session opened with the old one
            db.execute("UPDATE console_sessions SET ended_at = ? WHERE ended_at IS NULL", (now,))

        self.transaction(go)

    def console_password(self) -> str | None:
        row = self.transaction(lambda db: db.execute(
            "SELECT hash FROM console_credentials WHERE name = 'password'").fetchone(), "read", write=False)
        return None if row is None else row[0]

    # -- one-time login links -------------------------------------------------------------------
    def add_login_link(self, token: str, by: str, ttl: float = LINK_TTL_S) -> float:
        now = self.clock()
        self.transaction(lambda db: db.execute(
            "INSERT INTO console_links (token_sha256, created_at, expires_at, created_by) VALUES (?, ?, ?, ?)",
            (token_digest(token), now, now + ttl, by)))
        return now + ttl

    def use_login_link(self, token: str) -> bool:
        """True once for a link that is unused and unexpired (atomically: two tabs cannot both use it)."""
        now = self.clock()
        return self.transaction(lambda db: db.execute(
            "UPDATE console_links SET used_at = ? WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?",
            (now, token_digest(token), now)).rowcount == 1)

    # -- sessions -----------------------------------------------------------------------------------
    def open_session(self, session_id: str, via: str, client: str, ttl: float = SESSION_TTL_S) -> ConsoleSession:
        now = self.clock()
        s = ConsoleSession(token_digest(session_id), secrets.token_urlsafe(32), via, client, now, now + ttl)

        def go(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM console_sessions WHERE expires_at < ? OR ended_at IS NOT NULL", (now - 86400,))
            db.execute("INSERT INTO console_sessions (id_sha256, csrf, via, client, created_at, expires_at) VALUES "
                       "(?, ?, ?, ?, ?, ?)", (s.id_sha256, s.csrf, s.via, s.client, s.created_at, s.expires_at))

        self.transaction(go)
        return s

    def console_session(self, session_id: str) -> ConsoleSession | None:
        now = self.clock()
        row = self.transaction(lambda db: db.execute(
            "SELECT id_sha256, csrf, via, client, created_at, expires_at FROM console_sessions WHERE id_sha256 = ? "
            "AND ended_at IS NULL AND expires_at > ?", (token_digest(session_id), now)).fetchone(), "read", write=False)
        return None if row is None else ConsoleSession(*row)

    def end_session(self, id_sha256: str) -> None:
        now = self.clock()
        self.transaction(lambda db: db.execute("UPDATE console_sessions SET ended_at = ? WHERE id_sha256 = ?",
                                               (now, id_sha256)))

    # -- login attempts (shared by every console on the store) ------------------------------------------
    def login_attempt(self, keys: list[str], limits: dict[str, tuple[int, float]]) -> str | None:
        """Count one attempt under each key; returns the first key over its (max, window) limit (nothing is
        counted then), or None."""
        now = self.clock()

        def go(db: sqlite3.Connection) -> str | None:
            for key in keys:
                most, window = limits[key.split(":")[1]]
                n = db.execute("SELECT COUNT(*) FROM rate_hits WHERE key = ? AND at > ?", (key, now - window))
                if int(n.fetchone()[0]) >= most:
                    return key
            for key in keys:
                db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
            return None

        return self.transaction(go)

    # -- policy changes --------------------------------------------------------------------------------
    def reject_policy_change(self, sha256_: str, by: str) -> int:
        """A human rejects a pending loosening change (the console): it is never applied; the policy in force
        stays. A change of the file afterwards is a new change to confirm or reject. Returns how many rows."""
        now = self.clock()
        return self.transaction(lambda db: db.execute(
            "UPDATE policy_changes SET status = 'rejected', confirmed_at = ?, confirmed_by = ? WHERE sha256 = ? AND "
            "status = 'pending'", (now, by, sha256_)).rowcount)

    # -- the kill flag --------------------------------------------------------------------------------
    def kill_flag(self) -> KillFlag:
        row = self.transaction(lambda db: db.execute(
            "SELECT value, set_at, set_by FROM flags WHERE name = ?", (KILL_FLAG,)).fetchone(), "read", write=False)
        if row is None:
            return KillFlag(False)
        return KillFlag(json.loads(row[0]) is True, row[1], row[2])

    def set_kill_flag(self, on: bool, by: str) -> KillFlag:
        now = self.clock()
        self.transaction(lambda db: db.execute(
            "INSERT INTO flags (name, value, set_at, set_by) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "value = excluded.value, set_at = excluded.set_at, set_by = excluded.set_by",
            (KILL_FLAG, json.dumps(on), now, by)))
        return KillFlag(on, now, by)
