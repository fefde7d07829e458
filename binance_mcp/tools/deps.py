"""What a tool handler may use: the exchange adapter, the settings and what start-up found wrong with the state
directory (nothing else reaches the handlers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from binance_mcp.exchange.client import Exchange
from binance_mcp.settings import Settings


@dataclass
class Deps:
    exchange: Exchange
    settings: Settings
    state_error: str | None = None  # the state directory could not be written at start-up (see paths.py)
    deadman: Any = None  # the dead man's switch (policy/deadman.py), for binance_policy_status
