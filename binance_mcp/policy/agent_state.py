"""The HTTP service's agents in the state store: a name, the SHA-256 of its bearer token (never the token), its own
policy file, and when it was added or revoked. A mixin of ``StateStore`` (same connection, lock and transactions).

``binance-mcp agents`` (service/agents_cli.py) writes here directly, so only the service's OS user (who owns the
state directory) can add or revoke an agent; the service reads the table on every request, so a revocation takes
effect on the next one."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AgentRow:
    name: str
    policy: str | None  # absolute path of its own policy file, or None: the service's policy alone
    created_at: str
    created_by: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class AgentState:
    COLS = "name, policy, created_at, created_by, revoked_at"

    def add_agent(self, name: str, token: str, policy: str | None, by: str) -> AgentRow:
        """A new agent (or a revoked one's name again, with a new token). Raises ValueError when an active agent
        has the name."""
        if not AGENT_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid agent name: use 1 to 40 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        now = _iso(self.clock())

        def go(db: Any) -> AgentRow:
            row = db.execute("SELECT revoked_at FROM agents WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise ValueError(f"an agent named {name!r} exists; revoke it first (binance-mcp agents revoke {name}) "
                                 "to give it a new token, or choose another name")
            db.execute("DELETE FROM agents WHERE name = ?", (name,))
            db.execute("INSERT INTO agents (name, token_sha256, policy, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                       (name, token_digest(token), policy, now, by))
            return AgentRow(name, policy, now, by)

        return self.transaction(go)

    def revoke_agent(self, name: str, by: str) -> bool:
        """False when no active agent has the name."""
        now = _iso(self.clock())

        def go(db: Any) -> bool:
            cur = db.execute("UPDATE agents SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL",
                             (now, by, name))
            return cur.rowcount == 1

        return self.transaction(go)

    def agents(self) -> list[AgentRow]:
        rows = self.transaction(lambda db: db.execute(f"SELECT {self.COLS} FROM agents ORDER BY name").fetchall(),
                                "read", write=False)
        return [AgentRow(*r) for r in rows]

    def agent_by_token(self, token: str) -> AgentRow | None:
        """The active agent whose token this is, or None (unknown or revoked)."""
        digest = token_digest(token)
        row = self.transaction(lambda db: db.execute(
            f"SELECT {self.COLS} FROM agents WHERE token_sha256 = ? AND revoked_at IS NULL", (digest,)).fetchone(),
            "read", write=False)
        return None if row is None else AgentRow(*row)
