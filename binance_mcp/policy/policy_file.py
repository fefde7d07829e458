"""The policy in force: reloaded when its file changes (hot reload), kept when the new file fails to load.

Called from a worker thread (``PolicyGuard.current``), never on the event loop. The file's size and modification
time are compared on every call; since they can stay the same while the content changes, a hash of the content is
compared too, at most once a second. A reload and a failed reload are audited and logged."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError, load_file

log = logging.getLogger("binance_mcp.policy")
RELOAD_HASH_S = 1.0  # the policy file's content is compared by hash at most once a second


class PolicyFile:
    def __init__(self, loaded: LoadedPolicy, path: Path | None, clock: Callable[[], float],
                 audit: Callable[[dict], None]) -> None:
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
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp == self._failed_stamp:
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
            return self.loaded
        self.loaded, self._stamp, self._failed_stamp, self.reload_error = new, stamp, None, None
        log.warning("policy reloaded from %s (%s)", new.source, new.sha256)
        self.audit({"event": "policy_reload", "policy": {"source": new.source, "sha256": new.sha256}})
        return new

    def _digest(self) -> str | None:
        """The policy file's content hash, as the loader computes it (None when it cannot be read)."""
        try:
            text = Path(self.policy_path).read_bytes().decode("utf-8", "replace")
        except OSError:
            return None
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _content_changed(self) -> bool:
        digest = self._digest()
        return digest is not None and digest != self.loaded.sha256 and digest != self._failed_digest
