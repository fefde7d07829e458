"""The guard at run time, over stdio with a server subprocess: hot reload, shadow mode, kill switch, rate limits,
exchange rejections and binance_policy_status."""

from __future__ import annotations

import pytest
import pytest_asyncio

from binance_mcp.catalog import ALL_TOOLS
from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, D, Paper, cli, limit_buy, serve, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
DAILY_RULE = "tools.binance_spot_place_order.limits.daily_notional_usd"
ALLOW = "version: 1\ndefault: allow\n"
DENY_BALANCES = """\
version: 1
default: allow
tools:
  binance_spot_balances:
    action: deny
    reason: "Balances are private today."
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("guard-runtime")
    async with serve(d / "state", write_policy(d / "policy.yaml", ALLOW)) as p:
        yield p


@pytest.fixture
def paper(server: Paper) -> Paper:
    server.reset()
    write_policy(server.policy, ALLOW)
    return server


async def test_hot_reload_applies_on_the_next_call_and_a_broken_file_keeps_the_previous(paper: Paper):
    await paper.ok("binance_spot_balances")
    write_policy(paper.policy, DENY_BALANCES)
    assert await paper.denied("binance_spot_balances", {}, "TOOL_DENIED") == \
        "TOOL_DENIED: Balances are private today."
    assert "binance_spot_balances" not in await paper.tool_names()
    status = await paper.status()
    reload = paper.events("policy_reload")[-1]
    kept_sha = reload["policy"]["sha256"]
    assert status["policy"] == f"{paper.policy} ({kept_sha})" and "reload_error" not in status  # not set: left out

    # A broken file: reported with file and line, and the previous policy stays in force.
    write_policy(paper.policy, DENY_BALANCES.replace("action: deny", "action: maybe"))
    await paper.denied("binance_spot_balances", {}, "TOOL_DENIED")
    status = await paper.status()
    assert status["policy"] == f"{paper.policy} ({kept_sha})"
    assert f"{paper.policy}:5" in status["reload_error"] and "action" in status["reload_error"], status
    (failed,) = [e for e in paper.events("policy_reload_failed")][-1:]
    assert failed["kept"]["sha256"] == kept_sha and any(f"{paper.policy}:5" in e for e in failed["errors"])
    assert len(paper.events("policy_reload_failed")) == 1  # reported once, not on every call
    await paper.ok("binance_policy_status")
    assert len(paper.events("policy_reload_failed")) == 1

    # Fixed: the new policy applies and the error is gone.
    write_policy(paper.policy, ALLOW)
    await paper.ok("binance_spot_balances")
    assert "reload_error" not in await paper.status()
    assert "binance_spot_balances" in await paper.tool_names()
    assert paper.events("policy_reload")[-1]["policy"]["sha256"] != kept_sha


async def test_shadow_mode_lets_every_call_through_and_audits_what_would_have_happened(paper: Paper):
    write_policy(paper.policy, """\
        version: 1
        default: deny
        mode: shadow
        tools:
          binance_spot_place_order:
            limits: {max_notional_usd: 50}
        """)
    assert len(await paper.tool_names()) == len(ALL_TOOLS)  # shadow mode hides nothing
    await paper.ok("binance_spot_balances")
    seq = paper.state()["last_seq"]
    placed = await paper.ok(ORDER, limit_buy())  # 90 USD: over the 50 USD limit
    assert len(paper.spot_orders_since(seq)) == 1
    balances, order = paper.calls()[-2:]
    assert balances["tool"] == "binance_spot_balances" and balances["shadow"] is True
    assert balances["decision"]["code"] == "TOOL_DENIED" and balances["outcome"]["status"] == "ok"
    assert order["shadow"] is True and order["policy"]["mode"] == "shadow"
    assert order["decision"]["code"] == "NOTIONAL_OVER_LIMIT"
    assert order["outcome"] == {"status": "ok", "order_id": placed["orderId"],
                                "client_order_id": placed["clientOrderId"]}
    # The order's record was on disk before it was sent, and shares its call id with the final record.
    assert paper.sending()[-1]["call_id"] == order["call_id"]
    assert (await paper.status())["mode"] == "shadow"
    assert "shadow" not in paper.calls()[-1]  # binance_policy_status is allowed: nothing to flag


FUT = "binance_futures_place_order"


async def test_kill_switch_stops_what_adds_exposure_and_leaves_flattening_allowed(paper: Paper, tmp_path):
    stop = tmp_path / "STOP"
    write_policy(paper.policy, f"version: 1\ndefault: allow\naccount:\n  kill_switch_file: {stop}\n")
    await paper.ok(ORDER, limit_buy())
    await paper.ok(FUT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"})
    await paper.ok("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 5})
    stop.write_text("")
    text = await paper.denied(ORDER, limit_buy(), "KILL_SWITCH")
    assert str(stop) in text
    await paper.denied(FUT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
                       "KILL_SWITCH")
    await paper.denied("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 6}, "KILL_SWITCH")
    await paper.denied("binance_futures_set_margin_type", {"symbol": "BTCUSDT", "marginType": "ISOLATED"},
                       "KILL_SWITCH")
    # What reduces risk still runs, so the human who pulled the switch can flatten.
    await paper.ok("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 2})  # down
    await paper.ok("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"})
    await paper.ok(FUT, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001",
                         "reduceOnly": True})
    await paper.ok("binance_futures_close_position", {"symbol": "BTCUSDT"})
    positions = paper.signed("/fapi/v3/positionRisk", symbol="BTCUSDT")
    assert all(D(p["positionAmt"]) == 0 for p in positions)  # flat on the exchange
    await paper.ok("binance_spot_balances")
    assert (await paper.status())["kill_switch"] is True
    assert paper.calls(ORDER)[-1]["decision"]["rule"] == "account.kill_switch_file"
    stop.unlink()
    await paper.ok(ORDER, limit_buy())
    assert (await paper.status())["kill_switch"] is False


async def test_kill_switch_scope_all_stops_cancels_too(paper: Paper, tmp_path):
    stop = tmp_path / "STOP"
    write_policy(paper.policy, f"version: 1\ndefault: allow\naccount:\n  kill_switch_file: {stop}\n"
                               "  kill_switch_scope: all\n")
    await paper.ok(ORDER, limit_buy())
    stop.write_text("")
    await paper.denied("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"}, "KILL_SWITCH")
    await paper.denied("binance_futures_close_position", {"symbol": "BTCUSDT"}, "KILL_SWITCH")
    assert len(paper.signed("/api/v3/openOrders", symbol="BTCUSDT")) == 1


async def test_the_kill_flag_in_the_state_store_stops_like_the_file(paper: Paper):
    """``binance-mcp kill on`` (another process, the store only: this policy has no kill_switch_file) stops what adds
    exposure on the running server; with kill_switch_scope: all, cancels too; ``kill off`` resumes. Audited."""
    await paper.ok(ORDER, limit_buy())
    code, out, err = await cli(paper.state_dir, "kill", "on")
    assert code == 0, err
    text = await paper.denied(ORDER, limit_buy(), "KILL_SWITCH")
    assert "kill flag in the state store is on (set by" in text and "binance-mcp kill off" in text
    assert paper.calls(ORDER)[-1]["decision"]["rule"] == "state.kill_flag"
    await paper.ok("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"})  # flattening stays allowed
    assert (await paper.status())["kill_switch"] is True
    write_policy(paper.policy, ALLOW + "account:\n  kill_switch_scope: all\n")
    await paper.denied("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"}, "KILL_SWITCH")
    code, _, err = await cli(paper.state_dir, "kill", "off")
    assert code == 0, err
    await paper.ok(ORDER, limit_buy())
    assert (await paper.status())["kill_switch"] is False
    assert [e["event"] for e in paper.audit() if e.get("event", "").startswith("kill_flag")] == \
        ["kill_flag_on", "kill_flag_off"]


@pytest.mark.parametrize("kind", ["dangling symlink", "symlink loop", "directory"])
async def test_anything_at_the_kill_switch_path_stops_trading(paper: Paper, tmp_path, kind):
    stop = tmp_path / "STOP"
    write_policy(paper.policy, f"version: 1\ndefault: allow\naccount:\n  kill_switch_file: {stop}\n")
    if kind == "dangling symlink":
        stop.symlink_to(tmp_path / "nowhere")
    elif kind == "symlink loop":
        stop.symlink_to(stop)
    else:
        stop.mkdir()
    await paper.denied(ORDER, limit_buy(), "KILL_SWITCH")


async def test_rate_limits_say_how_long_to_wait_and_status_shows_the_headroom(paper: Paper):
    write_policy(paper.policy, """\
        version: 1
        default: allow
        tools:
          binance_spot_price:
            rate_limit: {max: 2, window: 3600}
        account:
          rate_limit: "500/hour"
        """)
    await paper.ok("binance_spot_price", {"symbol": "BTCUSDT"})
    await paper.ok("binance_spot_price", {"symbol": "ETHUSDT"})
    text = await paper.denied("binance_spot_price", {"symbol": "BTCUSDT"}, "RATE_LIMITED")
    assert "at most 2 calls per 3600 s are allowed by tools.binance_spot_price.rate_limit" in text, text
    wait = int(text.split("try again in ")[1].split(" s")[0])
    assert 3000 < wait <= 3600, text
    record = paper.calls("binance_spot_price")[-1]
    assert record["decision"]["code"] == "RATE_LIMITED" and record["outcome"] == {"status": "not_run"}
    await paper.ok("binance_spot_balances")  # another tool is not limited by this rule
    status = await paper.status()
    rates = {r["rule"]: r for r in status["rate_limits"]}
    tool_rate = rates["tools.binance_spot_price.rate_limit"]
    assert (tool_rate["max"], tool_rate["window_s"], tool_rate["used"]) == (2, 3600, 2)
    assert 3000 < tool_rate["wait_s"] <= 3600
    account = rates["account.rate_limit"]
    assert (account["max"], account["window_s"], account["wait_s"]) == (500, 3600, 0)
    assert account["used"] >= 4  # the allowed calls since the policy was loaded (denied ones are not counted)
    (view,) = [t for t in status["tools"] if t["tool"] == "binance_spot_price"]
    assert view["rate_limit"] == "2 per 3600 s" and view["rule"] == "tools.binance_spot_price"


async def test_exchange_rejection_releases_the_daily_reservation(paper: Paper):
    write_policy(paper.policy, """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            limits: {max_notional_usd: 1000, daily_notional_usd: 100000}
        account:
          daily_notional_usd: 100000
        """)
    used = await paper.daily_used()
    account = await paper.daily_used("account.daily_notional_usd")
    paper.sim("balances", {"spot": {"USDT": "50"}, "replace": True})
    seq = paper.state()["last_seq"]
    r = await paper.call(ORDER, limit_buy())  # 90 USD with 50 USDT
    assert r.is_error and r.content[0].text.startswith("EXCHANGE_REJECTED: ") and "-2010" in r.content[0].text
    assert [e["code"] for e in paper.requests(seq) if e["path"] == "/api/v3/order"] == [-2010]
    assert await paper.daily_used() == used
    assert await paper.daily_used("account.daily_notional_usd") == account
    record = paper.calls(ORDER)[-1]
    assert record["decision"]["code"] == "ALLOWED"
    assert record["outcome"]["status"] == "rejected" and record["outcome"]["exchange_code"] == -2010
    assert record["outcome"]["reservation"] == "released"


async def test_a_lost_answer_counts_the_order_once_and_an_order_never_placed_not_at_all(paper: Paper):
    """The exchange's answer is lost (a 5xx): the order is looked up by its client id. Found, it counts once
    towards today's sum; confirmed absent once the receive window closed, its reservation is given back."""
    write_policy(paper.policy, """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            limits: {daily_notional_usd: 100000}
        """)
    used = await paper.daily_used()
    before = paper.state()
    paper.sim("faults", {"kind": "error_5xx_after", "path": "/api/v3/order", "method": "POST", "count": 1})
    placed = await paper.ok(ORDER, limit_buy())  # executed, then the answer was lost
    assert paper.state()["orders"]["spot"] == before["orders"]["spot"] + 1
    assert await paper.daily_used() == used + LIMIT_NOTIONAL
    assert paper.calls(ORDER)[-1]["outcome"]["order_id"] == placed["orderId"]

    paper.sim("faults", {"kind": "error_5xx", "path": "/api/v3/order", "method": "POST", "count": 1})
    r = await paper.call(ORDER, limit_buy())  # refused before the matching engine: never placed
    assert r.is_error and r.content[0].text.startswith("ORDER_NOT_PLACED: "), r.content[0].text
    assert paper.state()["orders"]["spot"] == before["orders"]["spot"] + 1
    assert await paper.daily_used() == used + LIMIT_NOTIONAL
    outcome = paper.calls(ORDER)[-1]["outcome"]
    assert (outcome["error_code"], outcome["reservation"]) == ("ORDER_NOT_PLACED", "released"), outcome


async def test_policy_status_shows_rules_daily_sums_and_headroom(paper: Paper):
    write_policy(paper.policy, """\
        version: 1
        default: deny
        classes:
          read: allow
        tools:
          binance_spot_place_order:
            rate_limit: {max: 30, window: 60}
            approval_above: {notional_usd: 250}
            limits: {symbols: [BTCUSDT, "ETH*"], max_notional_usd: 500, daily_notional_usd: 100000}
          binance_futures_set_margin_type:
            action: deny
        account:
          daily_notional_usd: 200000
        """)
    used = await paper.daily_used()
    await paper.ok(ORDER, limit_buy(qty="0.002"))  # 194.00002 USD
    status = await paper.status()
    (rule,) = [t for t in status["tools"] if t["tool"] == ORDER]
    assert rule["action"] == "allow" and rule["rule"] == "tools.binance_spot_place_order"
    assert rule["limits"] == {"symbols": "BTCUSDT, ETH*", "max_notional_usd": "500",
                              "daily_notional_usd": "100000"}
    assert rule["rate_limit"] == "30 per 60 s" and D(rule["approval_above_usd"]) == 250
    listed = {t["tool"] for t in status["tools"]}
    assert "binance_futures_set_margin_type" not in listed and "binance_futures_place_order" not in listed
    assert "binance_spot_balances" in listed and "binance_policy_status" in listed
    assert status["denied"] == len(ALL_TOOLS) - len(listed)
    daily = {d["rule"]: d for d in status["daily"]}
    assert D(daily[DAILY_RULE]["used_usd"]) == used + 2 * LIMIT_NOTIONAL
    assert D(daily[DAILY_RULE]["remaining_usd"]) == 100000 - (used + 2 * LIMIT_NOTIONAL)
    assert D(daily["account.daily_notional_usd"]["cap_usd"]) == 200000
    (rate,) = [r for r in status["rate_limits"] if r["rule"] == "tools.binance_spot_place_order.rate_limit"]
    assert (rate["used"], rate["wait_s"]) == (1, 0)
