"""The paper account on disk: ``paper-account.json`` in the state directory, shared safely by every process.

Every request that can read or change the account is one transaction (``PaperStore.begin`` / ``commit``):

1. take the in-process lock (an ``asyncio.Lock``) and then ``paper-account.lock`` with ``flock`` (exclusive;
   on a platform without ``fcntl`` only one process may use a state directory at a time);
2. if the file changed since this process last read or wrote it, load it (another process wrote it);
3. run the request; 4. write the account if it changed (a temporary file, fsync, rename: a crash leaves the old
   or the new account, never half of one), then release the lock.

The file work runs in a worker thread: the event loop never waits on the disk or on the lock. The account is
JSON with decimals as strings (money never passes through a float).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("binance_mcp.simulator.store")
ACCOUNT_FILE = "paper-account.json"
LOCK_FILE = "paper-account.lock"
VERSION = 1
LOCK_TIMEOUT = 10.0


class StoreError(Exception):
    """The stored account cannot be read or written; the message says which file and what to do."""


# -- dataclasses <-> JSON ----------------------------------------------------------------------------------------------
def encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    return obj


def decode(cls: type, data: dict, **override: Any) -> Any:
    """``cls`` from ``encode``'s dict: Decimal fields from their strings; unknown keys ignored, missing ones default."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in override:
            kwargs[f.name] = override[f.name]
        elif f.name in data:
            value = data[f.name]
            kwargs[f.name] = Decimal(value) if f.type in ("Decimal", Decimal) and value is not None else value
    return cls(**kwargs)


def peek(counter: itertools.count) -> int:
    """The next value of an ``itertools.count`` without consuming it."""
    return int(repr(counter)[len("count("):-1].split(",")[0])


def new_account_meta(feed: str, upstream: dict | None, balances: dict[str, Decimal]) -> dict:
    return {"version": VERSION, "id": uuid.uuid4().hex[:12], "feed": feed, "upstream": upstream,
            "created": int(time.time() * 1000), "balances": {k: str(v) for k, v in balances.items()}}


class PaperStore:
    """The account file of one state directory, and the lock that makes each request a transaction."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / ACCOUNT_FILE
        self.lock_path = self.dir / LOCK_FILE
        self._fd: int | None = None
        self._seen: tuple | None = None  # (mtime_ns, size, inode) of the file as this process last knew it
        self._text: str | None = None
        self.unusable: str | None = None  # why the state directory cannot hold the account (then: memory only)

    # -- blocking parts (worker thread) ---------------------------------------------------------------------------
    def read(self) -> dict | None:
        """The stored account, or None when there is none (no lock: for ``paper show`` and start-up)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):  # no account yet (or no state directory at all)
            return None
        except OSError as exc:
            raise StoreError(f"the paper account {self.path} cannot be read ({exc.strerror}); fix its permissions "
                             "or run `binance-mcp paper reset`") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise StoreError(f"the paper account {self.path} is not valid JSON; run `binance-mcp paper reset` to "
                             "start a new one (the damaged file is replaced)") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise StoreError(f"the paper account {self.path} has an unknown format; run `binance-mcp paper reset`")
        return data

    def _stat(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def begin(self) -> dict | None:
        """Take the file lock; the stored account when another process changed it since we last saw it, else None.

        A state directory that cannot be used leaves the account in memory for this process (logged once): the
        server reports the directory's problem, its guard denies every change, and reads still work."""
        if self.unusable is not None:
            return None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600) if fcntl is not None else None
        except OSError as exc:
            self.unusable = f"{exc.strerror or type(exc).__name__}: {exc.filename or self.dir}"
            log.warning("paper account: the state directory %s cannot be used (%s); the account is not stored",
                        self.dir, self.unusable)
            return None
        if fd is not None:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise StoreError(f"another process has held {self.lock_path} for {LOCK_TIMEOUT:g} s") \
                            from None
                    time.sleep(0.01)
            self._fd = fd
        try:
            seen = self._stat()
            if seen == self._seen:
                return None
            data = self.read()
            self._seen = self._stat()
            self._text = None
            return data
        except BaseException:
            self.release()
            raise

    def commit(self, data: dict | None) -> None:
        """Write ``data`` (None: nothing changed) and release the lock."""
        try:
            if data is not None and self.unusable is None:
                text = json.dumps(data, separators=(",", ":"), sort_keys=True)
                if text != self._text:
                    self.write_text(text)
                    self._text = text
                    self._seen = self._stat()
        finally:
            self.release()

    def write_text(self, text: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{ACCOUNT_FILE}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"the paper account {self.path} cannot be written ({exc.strerror})") from None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def replace(self, data: dict) -> None:
        """``paper reset``: a new account, under the lock (a running server loads it on its next request)."""
        self.begin()
        try:
            self.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))
        finally:
            self.release()
