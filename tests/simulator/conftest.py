"""Fixtures of the simulator tests: one python-binance call helper over the sync and the async client."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import by_name


@pytest.fixture(params=["sync", "async"])
def api(request, sim):
    """Call a python-binance method by name on the sync or the async client: ``await api("ping")``."""
    sim.control("price", {"symbol": "BTCUSDT", "price": "95000"})
    return by_name(request.getfixturevalue("client" if request.param == "sync" else "async_client"))
