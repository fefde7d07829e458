"""What the state store raises, whichever backend holds it: the guard denies a trading call on any of these."""

from __future__ import annotations


class StateError(Exception):
    """The state store cannot be read or written: financial calls are denied (fail closed)."""


class StateBusy(StateError):
    """Another connection holds the write lock; worth retrying shortly."""


class SchemaTooNew(StateError):
    """The store's schema was migrated by a newer binance-mcp than this one: this server must not use it."""
