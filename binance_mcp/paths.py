"""Default locations (no heavy imports here: the approvals and audit commands start fast)."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/binance-mcp``, by default ``~/.local/state/binance-mcp``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "binance-mcp"


def state_dir_of(given: Path | None) -> Path:
    """The state directory a command works on: ``--state-dir``, else ``BINANCE_MCP_STATE_DIR``, else the default."""
    return given or Path(os.environ.get("BINANCE_MCP_STATE_DIR") or default_state_dir()).expanduser()


# The shipped policies a BINANCE_MCP_POLICY value (or a `policy` command's file argument) may name instead of a path;
# pyproject.toml force-includes each file into the wheel (binance_mcp/_policies).
BUILTIN_POLICIES = ("read-only", "spot-trader", "futures-reduce-only", "policylayer-binance")
