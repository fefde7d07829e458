"""The MCP surface over raw stdio: stdout carries JSON-RPC only, and tools/list has the 35 tools of TOOLS.md
with Binance's argument names, an output schema each, the annotations of their risk class, in under 48 KB."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

from tests.e2e.conftest import server_env

# TOOLS.md, written out here on purpose (not read from binance_mcp.catalog): name -> (risk, Binance inputs).
TOOLS_MD: dict[str, tuple[str, set[str]]] = {
    "binance_account_info": ("read", set()),
    "binance_spot_balances": ("read", {"asset"}),
    "binance_spot_place_order": ("financial", {"symbol", "side", "type", "quantity", "quoteOrderQty", "price",
                                               "timeInForce", "stopPrice", "newClientOrderId"}),
    "binance_spot_cancel_order": ("destructive", {"symbol", "orderId", "origClientOrderId"}),
    "binance_spot_cancel_all_orders": ("destructive", {"symbol"}),
    "binance_spot_open_orders": ("read", {"symbol"}),
    "binance_spot_order_history": ("read", {"symbol", "orderId", "startTime", "endTime", "limit"}),
    "binance_spot_trade_history": ("read", {"symbol", "startTime", "endTime", "fromId", "limit"}),
    "binance_portfolio_account": ("read", set()),
    "binance_futures_positions": ("read", {"symbol"}),
    "binance_futures_place_order": ("financial", {"symbol", "side", "type", "quantity", "price", "stopPrice",
                                                  "timeInForce", "positionSide", "reduceOnly", "closePosition",
                                                  "newClientOrderId"}),
    # algoId: the id a conditional order's placement returns, accepted under that name (orderId also finds it).
    "binance_futures_cancel_order": ("destructive", {"symbol", "orderId", "algoId", "origClientOrderId"}),
    "binance_futures_cancel_all_orders": ("destructive", {"symbol"}),
    "binance_futures_open_orders": ("read", {"symbol"}),
    "binance_futures_order_history": ("read", {"symbol", "orderId", "startTime", "endTime", "limit"}),
    "binance_futures_trade_history": ("read", {"symbol", "startTime", "endTime", "fromId", "limit"}),
    "binance_futures_change_leverage": ("financial", {"symbol", "leverage"}),
    "binance_futures_set_margin_type": ("financial", {"symbol", "marginType"}),
    "binance_futures_close_position": ("financial", {"symbol", "positionSide"}),
    "binance_spot_price": ("read", {"symbol"}),
    "binance_futures_price": ("read", {"symbol"}),
    "binance_spot_orderbook": ("read", {"symbol", "limit"}),
    "binance_spot_klines": ("read", {"symbol", "interval", "limit", "startTime", "endTime"}),
    "binance_futures_klines": ("read", {"symbol", "interval", "limit", "startTime", "endTime", "priceType"}),
    "binance_spot_24hr_ticker": ("read", {"symbol"}),
    "binance_futures_24hr_ticker": ("read", {"symbol"}),
    "binance_exchange_info": ("read", {"market", "symbol"}),
    "binance_server_time": ("read", {"market"}),
    "binance_account_status": ("read", set()),
    "binance_calculate_position_size": ("read", {"symbol", "riskAmount", "entryPrice", "stopLossPrice", "leverage",
                                                 "market"}),
    "binance_analyze_portfolio_risk": ("read", set()),
    "binance_compare_spot_futures_price": ("read", {"symbol"}),
    "binance_calculate_funding_cost": ("read", {"symbol", "positionSize", "holdHours", "fundingRate"}),
    "binance_check_order_precision": ("read", {"symbol", "price", "quantity", "market"}),
    "binance_get_optimal_trade_size": ("read", {"symbol", "side", "maxPriceImpact"}),
}
REQUIRED = {  # the starred inputs of TOOLS.md; every other tool has no required input
    "binance_spot_place_order": {"symbol", "side", "type"},
    "binance_spot_cancel_order": {"symbol"},
    "binance_spot_cancel_all_orders": {"symbol"},
    "binance_spot_order_history": {"symbol"},
    "binance_spot_trade_history": {"symbol"},
    "binance_futures_place_order": {"symbol", "side", "type"},
    "binance_futures_cancel_order": {"symbol"},
    "binance_futures_cancel_all_orders": {"symbol"},
    "binance_futures_order_history": {"symbol"},
    "binance_futures_trade_history": {"symbol"},
    "binance_futures_change_leverage": {"symbol", "leverage"},
    "binance_futures_set_margin_type": {"symbol", "marginType"},
    "binance_futures_close_position": {"symbol"},
    "binance_spot_orderbook": {"symbol"},
    "binance_spot_klines": {"symbol", "interval"},
    "binance_futures_klines": {"symbol", "interval"},
    "binance_calculate_position_size": {"symbol", "riskAmount", "entryPrice", "stopLossPrice"},
    "binance_compare_spot_futures_price": {"symbol"},
    "binance_calculate_funding_cost": {"symbol", "positionSize", "holdHours"},
    "binance_check_order_precision": {"symbol", "price", "quantity"},
    "binance_get_optimal_trade_size": {"symbol", "side"},
}
# The server's own read-only policy tool (not a Binance tool) is the only other one allowed in the list.
SERVER_TOOLS = {"binance_policy_status"}
MAX_TOOLS_LIST_BYTES = 48 * 1024


class RawSession:
    """``binance-mcp serve`` spoken to line by line; every stdout line is kept for inspection."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "serve"], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[bytes] = []
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            self.queue.put(line)
        self.queue.put(None)

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict | None = None, timeout: float = 30) -> tuple[dict, bytes]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, **({"params": params} if params else {})})
        end = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(0.1, end - time.monotonic()))
            assert line is not None, "the server closed stdout"
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg, line

    def close(self) -> tuple[int, bytes]:
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, self.proc.stderr.read()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    session = RawSession(server_env(tmp_path_factory.mktemp("raw-state")))
    init, _ = session.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                             "clientInfo": {"name": "e2e-raw", "version": "0"}})
    assert init["result"]["serverInfo"]["name"] == "binance-mcp"
    session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    listed, line = session.request("tools/list")
    session.tools_list = listed  # type: ignore[attr-defined]
    session.tools_list_bytes = len(line)  # type: ignore[attr-defined]
    yield session
    session.close()


def test_stdout_is_json_rpc_only(raw):
    # A call that starts the paper simulator (its thread and aiohttp logging) and a failing call.
    ok, _ = raw.request("tools/call", {"name": "binance_account_status", "arguments": {}})
    assert ok["result"]["isError"] is False and ok["result"]["structuredContent"]["connected"] is True
    bad, _ = raw.request("tools/call", {"name": "binance_spot_price", "arguments": {"symbol": "no way"}})
    assert bad["result"]["isError"] is True and bad["result"]["content"][0]["text"].startswith("INVALID_INPUT")
    unknown, _ = raw.request("tools/call", {"name": "binance_no_such_tool", "arguments": {}})
    assert "error" in unknown or unknown["result"]["isError"] is True
    rc, stderr = raw.close()
    assert rc == 0, stderr.decode(errors="replace")[-2000:]
    assert len(raw.lines) >= 5
    for line in raw.lines:
        assert line.endswith(b"\n")
        msg = json.loads(line)  # every line is one JSON-RPC message, nothing else
        assert msg["jsonrpc"] == "2.0" and ("id" in msg or "method" in msg), msg


def test_tools_list_has_the_35_tools(raw):
    tools = {t["name"]: t for t in raw.tools_list["result"]["tools"]}
    assert set(TOOLS_MD) <= set(tools), set(TOOLS_MD) - set(tools)
    assert set(tools) - set(TOOLS_MD) <= SERVER_TOOLS
    assert len(TOOLS_MD) == 35
    assert raw.tools_list_bytes < MAX_TOOLS_LIST_BYTES, raw.tools_list_bytes
    print(f"tools/list: {len(tools)} tools, {raw.tools_list_bytes} bytes")


@pytest.mark.parametrize("name", sorted(TOOLS_MD))
def test_tool_annotations_and_schemas(raw, name):
    tool = {t["name"]: t for t in raw.tools_list["result"]["tools"]}[name]
    risk, inputs = TOOLS_MD[name]
    ann = tool["annotations"]
    if risk == "read":
        assert ann["readOnlyHint"] is True and ann.get("destructiveHint") is not True
    else:
        assert ann["readOnlyHint"] is False and ann["destructiveHint"] is True
        if risk == "financial":
            assert ann["idempotentHint"] is False
    assert tool["title"] and tool["description"]
    schema = tool["inputSchema"]
    assert schema["type"] == "object" and schema.get("additionalProperties") is False
    props = set(schema.get("properties", {}))
    assert inputs <= props, inputs - props  # Binance's own argument names
    assert props - inputs <= {"limit"}, props - inputs  # list tools add only a row limit
    assert all(re.fullmatch(r"[a-z][A-Za-z]*", p) for p in props), props  # camelCase, never snake_case
    assert set(schema.get("required", [])) == REQUIRED.get(name, set())
    out = tool["outputSchema"]
    assert out["type"] == "object" and out["properties"]


def field_type(obj: dict, name: str) -> object:
    """The type an object schema gives a field: its own entry in properties, or (a plain string field) the
    additionalProperties schema when propertyNames lists the name."""
    if name in obj.get("properties", {}):
        return obj["properties"][name]["type"]
    assert name in obj["propertyNames"]["enum"], (name, obj)
    return obj["additionalProperties"]["type"]


def test_schemas_describe_decimals_as_strings(raw):
    tools = {t["name"]: t for t in raw.tools_list["result"]["tools"]}
    place = tools["binance_spot_place_order"]
    assert "string" in place["inputSchema"]["properties"]["quantity"]["type"]  # "0.001" is accepted as is
    assert place["inputSchema"]["properties"]["side"]["enum"] == ["BUY", "SELL"]
    assert field_type(place["outputSchema"], "cummulativeQuoteQty") == "string"  # decimal strings out
    orders = tools["binance_spot_open_orders"]["outputSchema"]["properties"]["orders"]["items"]
    assert field_type(orders, "price") == "string" and field_type(orders, "orderId") == "integer"
    bal = tools["binance_spot_balances"]["outputSchema"]["properties"]["balances"]["items"]
    assert field_type(bal, "free") == "string" and field_type(bal, "locked") == "string"
    assert bal["propertyNames"]["enum"] == ["asset", "free", "locked", "total"]  # no other field passes


def test_results_use_the_argument_names(raw):
    """A value passes back under the name it came with: the ids in results are the arguments' names."""
    tools = {t["name"]: t for t in raw.tools_list["result"]["tools"]}
    for name in ("binance_futures_open_orders", "binance_futures_order_history"):
        item = tools[name]["outputSchema"]["properties"]["orders"]["items"]
        names = set(item["propertyNames"]["enum"])
        assert {"orderId", "algoId", "clientOrderId", "stopPrice", "positionSide", "reduceOnly"} <= names
        assert not {n for n in names if "_" in n}, names
    for tool in tools.values():
        text = json.dumps(tool["outputSchema"])
        if tool["name"] != "binance_policy_status":  # the policy's own view, not a Binance result
            assert not re.search(r'"[a-z]+_[a-z_]+"', text), (tool["name"], text)  # camelCase only
    placed = tools["binance_futures_place_order"]["outputSchema"]["properties"]
    assert {"orderId", "algoId"} <= set(placed)
    assert {"orderId", "algoId"} <= set(tools["binance_futures_cancel_order"]["inputSchema"]["properties"])
