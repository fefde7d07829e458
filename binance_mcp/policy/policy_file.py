"""The policy in force: reloaded when its file changes (hot reload), kept when the new file fails to load.

Called from a worker thread (``PolicyGuard.current``), never on the event loop. The file's size and modification
time are compared on every call; since they can stay the same while the content changes, a hash of the content is
compared too, at most once a second. A reload and a failed reload are audited and logged.

In service mode (``confirm_loosening``: the state store's ``StoreConfirmer``) a new content applies at once only when
it only tightens (tighten.py); one that loosens is recorded as pending, audited and logged once, and the policy in
force stays until a human confirms that content (``binance-mcp policy confirm``): the next call after that applies
it. While a change waits, each call asks the store whether it was confirmed; otherwise the store is not read."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError, load_file
from binance_mcp.policy.tighten import loosenings

log = logging.getLogger("binance_mcp.policy")
RELOAD_HASH_S = 1.0  # the policy file's content is compared by hash at most once a second


class Confirmer(Protocol):
    """Where loosening changes wait for a human (confirm_state.StoreConfirmer)."""

    def pending(self, path: Path, loaded: LoadedPolicy, lines: list[str]) -> Any: ...

    def confirmed(self, path: Path, sha256: str) -> bool: ...

    def superseded(self, path: Path, keep: str | None) -> None: ...


class PolicyFile:
    def __init__(self, loaded: LoadedPolicy, path: Path | None, clock: Callable[[], float],
                 audit: Callable[[dict], None], *, confirm_loosening: Confirmer | None = None) -> None:
        self.loaded = loaded
        self.policy_path = path
        self.clock = clock
        self.audit = audit
        self.reload_error: str | None = None
        self._stamp = self._file_stamp()
        self._failed_stamp: tuple | None = None
        self._reload_lock = threading.Lock()
        self._hashed_at = clock()
        self._failed_digest: str | None = None
        self.confirmer = confirm_loosening
        self.pending: dict | None = None  # the change waiting for a human: source, sha256, lines, since (UTC)
        self._waiting: LoadedPolicy | None = None
        self._recorded = False  # the waiting change is in the store (else recording is retried on the next call)
        self._started = confirm_loosening is None or path is None  # what an earlier run left pending: settled once
        self._store_failing = False

    def _file_stamp(self) -> tuple | None:
        if self.policy_path is None:
            return None
        try:
            st = os.stat(self.policy_path)
        except OSError:
            return ("missing",)
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> LoadedPolicy:
        """The policy in force, reloaded when its file changed; a file that fails to load keeps the previous."""
        with self._reload_lock:
            return self._reload_locked()

    def _reload_locked(self) -> LoadedPolicy:
        if not self._started:
            self._started = True
            self._store("settle what an earlier run left pending", self.confirmer.superseded, self.policy_path,
                        self.loaded.sha256)
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp == self._failed_stamp:
            if self._waiting is not None and self._is_confirmed(self._waiting):
                return self._apply(self._waiting, self._stamp, self.pending["lines"])
            # Size and modification time can be kept while the content changes: compare a hash of the content,
            # at most once a second.
            now = self.clock()
            if now - self._hashed_at < RELOAD_HASH_S or not self._content_changed():
                if now - self._hashed_at >= RELOAD_HASH_S:
                    self._hashed_at = now
                return self.loaded
            self._hashed_at = now
        try:
            new = load_file(self.policy_path)
        except PolicyLoadError as exc:
            self._failed_stamp = stamp
            self._failed_digest = self._digest()
            self.reload_error = str(exc)
            log.error("policy reload failed; the previous policy stays in force:\n%s", exc)
            self.audit({"event": "policy_reload_failed", "errors": exc.errors,
                        "kept": {"source": self.loaded.source, "sha256": self.loaded.sha256}})
            if self._waiting is not None:  # the waiting content is gone from the file: it can no longer be confirmed
                self._drop_waiting(None)
            return self.loaded
        lines = loosenings(self.loaded.policy, new.policy) if self.confirmer is not None else []
        if lines and not self._is_confirmed(new):
            return self._hold(new, stamp, lines)
        return self._apply(new, stamp, lines)

    def _apply(self, new: LoadedPolicy, stamp: tuple | None, lines: list[str]) -> LoadedPolicy:
        """``new`` is in force from now on (it only tightens, or a human confirmed it)."""
        old = self.loaded
        self.loaded, self._stamp, self._failed_stamp, self.reload_error = new, stamp, None, None
        self._waiting, self.pending, self._recorded = None, None, False
        policy = {"source": new.source, "sha256": new.sha256}
        if lines:
            log.warning("policy change confirmed by a human; now in force from %s (%s)", new.source, new.sha256)
            self.audit({"event": "policy_change_confirmed", "policy": policy, "lines": lines,
                        "replaced": {"source": old.source, "sha256": old.sha256}})
        else:
            log.warning("policy reloaded from %s (%s)", new.source, new.sha256)
            self.audit({"event": "policy_reload", "policy": policy})
        if self.confirmer is not None:
            self._store("supersede older pending changes", self.confirmer.superseded, self.policy_path, new.sha256)
        return new

    def _hold(self, new: LoadedPolicy, stamp: tuple | None, lines: list[str]) -> LoadedPolicy:
        """``new`` loosens the policy in force: it waits for a human; the policy in force stays."""
        self._stamp, self._failed_stamp, self.reload_error = stamp, None, None
        if self._waiting is not None and self._waiting.sha256 == new.sha256:
            return self.loaded  # the same content saved again: already waiting, already said
        self._waiting, self._recorded = new, False
        self.pending = {"source": new.source, "sha256": new.sha256, "lines": lines,
                        "since": datetime.fromtimestamp(self.clock(), tz=timezone.utc).isoformat(timespec="seconds")}
        self._record()
        log.warning("policy change in %s (%s) loosens the policy in force, so it waits for a human; %s (%s) stays "
                    "in force. It loosens:\n  %s\nTo apply it, run as the service's user: binance-mcp policy "
                    "confirm %s", new.source, new.sha256, self.loaded.source, self.loaded.sha256,
                    "\n  ".join(lines), new.sha256)
        self.audit({"event": "policy_change_pending", "policy": {"source": new.source, "sha256": new.sha256},
                    "lines": lines, "kept": {"source": self.loaded.source, "sha256": self.loaded.sha256}})
        return self.loaded

    def _record(self) -> None:
        self._recorded = self._store("record the pending policy change", self.confirmer.pending, self.policy_path,
                                     self._waiting, self.pending["lines"]) is not None

    def _drop_waiting(self, keep: str | None) -> None:
        self._waiting, self.pending, self._recorded = None, None, False
        self._store("supersede the pending policy change", self.confirmer.superseded, self.policy_path, keep)

    def _is_confirmed(self, new: LoadedPolicy) -> bool:
        """Has a human confirmed this content? (a store that cannot be read says no: the policy in force stays)"""
        if self.confirmer is None:
            return False
        if new is self._waiting and not self._recorded:
            self._record()  # recording failed before: the human cannot confirm what the store does not have
            if not self._recorded:
                return False
        return bool(self._store("read the policy confirmations", self.confirmer.confirmed, self.policy_path,
                                new.sha256))

    def _store(self, doing: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A confirmer call; a failure is logged (once until one succeeds again) and returns None."""
        try:
            out = fn(*args)
        except Exception as exc:  # the state store: locked, unreadable, read-only; fail closed, never raise here
            if not self._store_failing:
                log.error("cannot %s in the state store (%s); a loosening policy change stays pending", doing, exc)
            self._store_failing = True
            return None
        self._store_failing = False
        return True if out is None else out

    def _digest(self) -> str | None:
        """The policy file's content hash, as the loader computes it (None when it cannot be read)."""
        try:
            text = Path(self.policy_path).read_bytes().decode("utf-8", "replace")
        except OSError:
            return None
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _content_changed(self) -> bool:
        digest = self._digest()
        waiting = self._waiting.sha256 if self._waiting is not None else None
        return digest is not None and digest not in (self.loaded.sha256, self._failed_digest, waiting)
