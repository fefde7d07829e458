"""Policy changes waiting for a human, in the state store: a mixin of ``StateStore`` (the same connection, lock and
transactions), and ``StoreConfirmer``, what ``PolicyFile`` asks (``confirm_loosening``) in service mode.

A policy file's new content that loosens the policy in force is recorded ``pending``; ``binance-mcp policy confirm
SHA256`` (a human, as the service's OS user) makes it ``confirmed``; the service applies it on its next call. Any
other content of the same file replacing it (applied, pending, or failing to load) makes it ``superseded``: only the
newest content can be confirmed, and a confirmation is never reused for a content that came back later."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MIN_PREFIX = 8
COLS = "path, sha256, source, lines, status, seen_at, confirmed_at, confirmed_by"


class ConfirmError(ValueError):
    """``policy confirm`` cannot confirm what it was given; the text says why and what to do. ``kind``: invalid,
    unknown, ambiguous, superseded or confirmed (already)."""

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        super().__init__(text)


def _row(row: tuple) -> dict[str, Any]:
    return {"path": row[0], "sha256": row[1], "source": row[2], "lines": json.loads(row[3]), "status": row[4],
            "seen_at": row[5], "confirmed_at": row[6], "confirmed_by": row[7]}


class ConfirmState:
    def record_policy_change(self, path: str, sha256: str, source: str, lines: list[str]) -> str:
        """A loosening content of ``path`` is waiting: every other content of it waiting (or confirmed and not yet
        applied) is superseded. Returns its status: ``pending``, or ``confirmed`` when a human already confirmed
        it (another process on this store recorded it first)."""
        now = self.clock()

        def go(db: Any) -> str:
            db.execute("UPDATE policy_changes SET status = 'superseded' WHERE path = ? AND sha256 != ? AND status IN "
                       "('pending', 'confirmed')", (path, sha256))
            row = db.execute("SELECT status FROM policy_changes WHERE path = ? AND sha256 = ?",
                             (path, sha256)).fetchone()
            if row is None:
                db.execute(f"INSERT INTO policy_changes ({COLS}) VALUES (?, ?, ?, ?, 'pending', ?, NULL, NULL)",
                           (path, sha256, source, json.dumps(lines), now))
                return "pending"
            if row[0] == "superseded":  # the content came back: a new change, a new confirmation
                db.execute("UPDATE policy_changes SET status = 'pending', source = ?, lines = ?, seen_at = ?, "
                           "confirmed_at = NULL, confirmed_by = NULL WHERE path = ? AND sha256 = ?",
                           (source, json.dumps(lines), now, path, sha256))
                return "pending"
            return row[0]

        return self.transaction(go)

    def policy_change_status(self, path: str, sha256: str) -> str | None:
        row = self.transaction(lambda db: db.execute(
            "SELECT status FROM policy_changes WHERE path = ? AND sha256 = ?", (path, sha256)).fetchone(),
            "read", write=False)
        return None if row is None else row[0]

    def supersede_policy_changes(self, path: str, keep: str | None) -> int:
        """Every change of ``path`` still waiting or confirmed, except the content ``keep``, is superseded (that
        content is in force now, or, with None, the file's content does not load). Returns how many."""
        return self.transaction(lambda db: db.execute(
            "UPDATE policy_changes SET status = 'superseded' WHERE path = ? AND sha256 != ? AND status IN "
            "('pending', 'confirmed')", (path, keep or "")).rowcount)

    def policy_changes(self, statuses: tuple[str, ...] = ("pending",)) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(statuses))
        rows = self.transaction(lambda db: db.execute(
            f"SELECT {COLS} FROM policy_changes WHERE status IN ({marks}) ORDER BY seen_at, path",
            statuses).fetchall(), "read", write=False)
        return [_row(r) for r in rows]

    def confirm_policy_change(self, prefix: str, by: str) -> list[dict[str, Any]]:
        """A human confirms the pending change whose sha256 starts with ``prefix`` (at least 8 hex digits; the same
        content pending for several files is confirmed for each). Returns the rows as they are now; raises
        ConfirmError when nothing pending matches, or more than one content does."""
        prefix = prefix.strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{MIN_PREFIX},64}}", prefix):
            raise ConfirmError("invalid", f"{prefix!r} is not a policy sha256: give at least {MIN_PREFIX} hex digits of the "
                               "sha256 that `binance-mcp policy confirm` lists")
        now = self.clock()

        def go(db: Any) -> list[dict[str, Any]]:
            rows = [_row(r) for r in db.execute(f"SELECT {COLS} FROM policy_changes WHERE substr(sha256, 1, CAST(? AS INTEGER)) = ?",
                                                (len(prefix), prefix)).fetchall()]
            pending = [r for r in rows if r["status"] == "pending"]
            shas = sorted({r["sha256"] for r in pending})
            if len(shas) > 1:
                raise ConfirmError("ambiguous", f"{prefix} matches {len(shas)} pending changes ({', '.join(shas)}); give more of "
                                   "the sha256")
            if not shas:
                raise ConfirmError(*_not_pending(prefix, rows))
            db.execute("UPDATE policy_changes SET status = 'confirmed', confirmed_at = ?, confirmed_by = ? WHERE "
                       "sha256 = ? AND status = 'pending'", (now, by, shas[0]))
            return [{**r, "status": "confirmed", "confirmed_at": now, "confirmed_by": by} for r in pending]

        return self.transaction(go)


def _not_pending(prefix: str, rows: list[dict[str, Any]]) -> tuple[str, str]:
    if not rows:
        return "unknown", (f"no policy change with sha256 {prefix}: `binance-mcp policy confirm` (no argument) lists the "
                "pending ones")
    statuses = {r["status"] for r in rows}
    if statuses == {"confirmed"}:
        return "confirmed", f"the policy change {rows[0]['sha256']} is already confirmed (by {rows[0]['confirmed_by']})"
    return "superseded", (f"the policy change {rows[0]['sha256']} is no longer pending: the file was changed again since, and only "
            "its newest content can be confirmed; `binance-mcp policy confirm` lists what is pending")


class StoreConfirmer:
    """What ``PolicyFile(confirm_loosening=...)`` asks, on a state store (called from the reload's worker thread;
    the store has its own lock)."""

    def __init__(self, state: ConfirmState) -> None:
        self.state = state

    def pending(self, path: Path | str, loaded: Any, lines: list[str]) -> str:
        return self.state.record_policy_change(str(path), loaded.sha256, loaded.source, lines)

    def confirmed(self, path: Path | str, sha256: str) -> bool:
        return self.state.policy_change_status(str(path), sha256) == "confirmed"

    def superseded(self, path: Path | str, keep: str | None) -> None:
        self.state.supersede_policy_changes(str(path), keep)
