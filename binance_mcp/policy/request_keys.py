"""Keys that seal the request state of 2026-07-28 approvals, kept in the state store.

On a 2026-07-28 connection an order that needs approval answers ``input_required`` with a request state the client
sends back on its retry (policy/mrtr.py). FastMCP seals that state (AES-256-GCM, ``RequestStateSecurity``); the
keys come from here so that every server on the same state store (a restart, a second replica behind a load
balancer, a stdio server next to the service) opens what another sealed. One row per key, 32 random bytes as hex,
created by the first server that asks for an approval through the client (``INSERT ... ON CONFLICT DO NOTHING``:
two servers asking together end with the same key). ``StoreKeyCodec`` is what FastMCP calls; it has no key until
the guard loaded them off the event loop (at start-up when the store has one, on the first approval, and at each
in-flight sweep while it has none), and until then it seals nothing and opens nothing (fail closed).

A mixin of ``StateStore`` (same connection, lock and transactions), like AgentState.
"""

from __future__ import annotations

import secrets
import sqlite3

from mcp.server.request_state import AESGCMRequestStateCodec, InvalidRequestState

KEY_BYTES = 32
CURRENT = "current"  # the key that seals; rows with another id (retired_at set) only open, for rotation


class RequestKeyState:
    def request_state_keys(self, create: bool = True) -> list[bytes]:
        """The key ring, the sealing key first (empty when there is none and ``create`` is false). ``create``: make
        the sealing key if there is none (the first approval asked through the client); start-up only reads, so a
        server that asks nobody writes nothing."""
        now = self.clock()  # type: ignore[attr-defined]

        def go(db: sqlite3.Connection) -> list[bytes]:
            if create:
                db.execute("INSERT INTO request_state_keys (id, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (id) "
                           "DO NOTHING", (CURRENT, secrets.token_hex(KEY_BYTES), now))
            rows = db.execute("SELECT id, secret FROM request_state_keys ORDER BY created_at DESC").fetchall()
            ring = sorted(rows, key=lambda r: r[0] != CURRENT)
            return [bytes.fromhex(secret) for _, secret in ring]

        return self.transaction(go, "read" if not create else "written", write=create)  # type: ignore[attr-defined]


class StoreKeyCodec:
    """FastMCP's request-state codec over the store's keys (``load`` them first; without keys it fails closed)."""

    def __init__(self) -> None:
        self._codec: AESGCMRequestStateCodec | None = None

    @property
    def ready(self) -> bool:
        return self._codec is not None

    def load(self, keys: list[bytes]) -> None:
        if keys:
            self._codec = AESGCMRequestStateCodec(keys)

    def seal(self, payload: bytes) -> str:
        if self._codec is None:
            raise RuntimeError("no request-state key loaded from the state store")
        return self._codec.seal(payload)

    def unseal(self, token: str) -> bytes:
        if self._codec is None:
            raise InvalidRequestState("no key")
        return self._codec.unseal(token)
