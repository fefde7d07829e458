"""Default locations (no heavy imports here: the approvals and audit commands start fast)."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/binance-mcp``, by default ``~/.local/state/binance-mcp``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "binance-mcp"


def state_dir_of(given: Path | None) -> Path:
    """The state directory a command works on: ``--state-dir``, else ``BINANCE_MCP_STATE_DIR``, else the default."""
    return given or Path(os.environ.get("BINANCE_MCP_STATE_DIR") or default_state_dir()).expanduser()


STATE_FILES = ("audit.jsonl", "state.db")


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def state_dir_problem(path: Path) -> str | None:
    """None when the state directory can be created and written, else what is wrong, said for a human (stderr and
    ``binance_policy_status``). A real write: a small file is created, synced and removed again (modes alone do not
    tell, e.g. for root or on a read-only mount); the audit log and the state database, where they exist, must open
    for appending (nothing is written to them here)."""
    probe = path / f".write-test-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb") as fh:
            fh.write(b"binance-mcp\n")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
        for name in STATE_FILES:
            if not ((path / name).exists() or (path / name).is_symlink()):
                continue
            if name == "state.db":
                # Never open and close the SQLite file here: closing any descriptor of a file drops every POSIX
                # lock this process holds on it, including the state store's own connection's, and another
                # process may then take the database for its sole user (checkpoint, WAL reset) under it: stale
                # reads in this process. access() asks the same question (it fails for read-only mounts and
                # immutable files, as the open did).
                if not os.access(path / name, os.R_OK | os.W_OK):
                    err = errno.EROFS if _read_only_mount(path) else errno.EACCES
                    raise OSError(err, os.strerror(err), str(path / name))
                continue
            with open(path / name, "ab"):
                pass
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return (f"the state directory {path} cannot be written ({exc.strerror or type(exc).__name__}{where}), so "
                "calls that change anything (orders, cancels, settings) are denied and audit records may be lost; "
                "read tools still work. A human must fix BINANCE_MCP_STATE_DIR or the directory's permissions.")
    return None


# The shipped policies a BINANCE_MCP_POLICY value (or a `policy` command's file argument) may name instead of a path;
# pyproject.toml force-includes each file into the wheel (binance_mcp/_policies).
BUILTIN_POLICIES = ("read-only", "spot-trader", "futures-reduce-only", "policylayer-binance")


def state_dir_access(state_dir: Path, create: bool = True, write: bool = True) -> str | None:
    """For the commands a human runs on a server's state directory: None when this user may use it (created if
    missing, with ``create``; only read, without ``write``), else why not and who may (on the HTTP service, its own
    OS user: the directory is 0700)."""
    if not create and not os.path.lexists(state_dir):
        return None  # the caller says there is nothing there
    try:
        if create:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ok = os.access(state_dir, os.R_OK | os.X_OK | (os.W_OK if write else 0))
        why = "permission denied"
    except OSError as exc:
        ok, why = False, exc.strerror or type(exc).__name__
    if ok:
        return None
    return (f"the state directory {state_dir} cannot be used by this user ({why}). Run this as the service's OS "
            "user (e.g. sudo -u binance-mcp binance-mcp ...) with the service's BINANCE_MCP_STATE_DIR.")

