"""Context-size contracts (sizes, not timings): what an agent's context pays for tools/list under an allow-all
policy, and for a default klines call. ``bench/context_size.py`` prints the same figures, part by part."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import server_env
from tests.e2e.test_protocol import RawSession

MAX_TOOLS_LIST = 30_000  # bytes: the tools/list result as compact JSON, every tool listed
MAX_KLINES_COPY = 12_000  # bytes per copy (structuredContent and the text block) of a default klines call
MIN_CANDLES = 50


def compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = RawSession(server_env(tmp_path_factory.mktemp("size-state")))
    s.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "e2e-size", "version": "0"}})
    s.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    yield s
    s.close()


def test_tools_list_fits_the_budget(session):
    listed, _ = session.request("tools/list")
    tools = listed["result"]["tools"]
    assert len(tools) == 36 and all(t.get("outputSchema") for t in tools)  # every tool, each with its schema
    size = compact(listed["result"])
    print(f"tools/list: {size} bytes")
    assert size <= MAX_TOOLS_LIST, f"tools/list is {size} bytes, over {MAX_TOOLS_LIST}: run bench/context_size.py"


@pytest.mark.parametrize("tool", ["binance_spot_klines", "binance_futures_klines"])
def test_default_klines_call_fits_the_budget(session, tool):
    answer, _ = session.request("tools/call", {"name": tool, "arguments": {"symbol": "BTCUSDT", "interval": "1h"}})
    result = answer["result"]
    assert result["isError"] is False, result
    structured, text = result["structuredContent"], result["content"][0]["text"]
    assert json.loads(text) == structured  # the same JSON twice: each copy is paid for
    candles = structured["candles"]
    print(f"{tool}: {len(candles)} candles, {compact(structured)} bytes structured, {len(text.encode())} as text")
    assert len(candles) >= MIN_CANDLES and len(candles) == structured["total"] == 100  # the default limit
    assert compact(structured) <= MAX_KLINES_COPY and len(text.encode()) <= MAX_KLINES_COPY
    assert all(len(c) == len(structured["columns"]) for c in candles)  # rows under one column header
