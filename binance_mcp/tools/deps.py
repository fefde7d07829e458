"""What a tool handler may use: the exchange adapter and the settings (nothing else reaches the handlers)."""

from __future__ import annotations

from dataclasses import dataclass

from binance_mcp.exchange.client import Exchange
from binance_mcp.settings import Settings


@dataclass
class Deps:
    exchange: Exchange
    settings: Settings
