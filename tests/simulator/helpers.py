"""Helpers shared by the simulator tests."""

from __future__ import annotations

import pytest
from binance.exceptions import BinanceAPIException


async def rejects(api, method: str, **params) -> BinanceAPIException:
    """The BinanceAPIException a python-binance call raises (the test fails if it succeeds)."""
    with pytest.raises(BinanceAPIException) as info:
        await api(method, **params)
    return info.value
