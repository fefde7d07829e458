"""Helpers shared by the simulator tests: a python-binance method called by name on either client, and the
errors such calls raise."""

from __future__ import annotations

import inspect

import pytest
from binance.exceptions import BinanceAPIException


def by_name(client):
    """``await call("get_account", ...)``: a python-binance method by name, on the sync or the async client."""

    async def call(method: str, *args, **params):
        result = getattr(client, method)(*args, **params)
        return await result if inspect.isawaitable(result) else result

    return call


async def rejects(api, method: str, *args, **params) -> BinanceAPIException:
    """The BinanceAPIException a python-binance call raises (the test fails if it succeeds)."""
    with pytest.raises(BinanceAPIException) as info:
        await api(method, *args, **params)
    return info.value


def api_error(fn, **kwargs) -> BinanceAPIException:
    """The BinanceAPIException a synchronous python-binance call raises (the test fails if it succeeds)."""
    with pytest.raises(BinanceAPIException) as info:
        fn(**kwargs)
    return info.value
