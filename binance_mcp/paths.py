"""Default locations (no heavy imports here: the approvals and audit commands start fast)."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/binance-mcp``, by default ``~/.local/state/binance-mcp``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "binance-mcp"
