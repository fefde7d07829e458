"""Fixtures of the simulator tests: one python-binance call helper over the sync and the async client."""

from __future__ import annotations

import inspect

import pytest


@pytest.fixture(params=["sync", "async"])
def api(request, sim):
    """Call a python-binance method by name on the sync or the async client: ``await api("ping")``."""
    sim.control("price", {"symbol": "BTCUSDT", "price": "95000"})
    c = request.getfixturevalue("client" if request.param == "sync" else "async_client")

    async def call(method: str, **params):
        result = getattr(c, method)(**params)
        return await result if inspect.isawaitable(result) else result

    return call
