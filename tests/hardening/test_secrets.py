"""No secret leaves the process: canary credentials never appear on stdout (the raw JSON-RPC stream), on stderr
(DEBUG logging), in the audit log, in the state database, or in ``--show-config``.

The simulator accepts a random canary key and secret. ``binance-mcp serve`` runs with them as a subprocess, spoken
to in raw JSON-RPC so that every byte it writes is kept, with DEBUG logging captured to a file. It runs successes
and every kind of failure: a rejected order, bad input, 5xx and non-JSON answers, lost order answers, a clock
skew, Binance's 429, and two more servers whose secret (-1022) or key (-2015) is wrong. An Ed25519 key signs too:
its passphrase and its key material (the file's lines, the decrypted key, the raw seed) are canaries as well, through
a server that trades with it, one whose key does not match (-1022), one whose passphrase is wrong (locked), and
``--show-config``.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import subprocess

import pytest
from pydantic import SecretStr

from binance_mcp.settings import Settings, load_settings, redact
from tests.hardening.helpers import COUNTS, RawStdio, raw_text, serve_cmd, server_env
from tests.helpers import simulator, write_policy
from tests.keyfiles import ed25519_key, private_pem, public_pem, write_private


def canary(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))


KEY, SECRET = canary("CanaryKey"), canary("CanarySecret")
WRONG_KEY, WRONG_SECRET = canary("CanaryWrongKey"), canary("CanaryWrongSecret")
CANARIES = [KEY, SECRET, WRONG_KEY, WRONG_SECRET]
NEEDLES = [n for c in CANARIES for n in (c, c[:12], c[-20:])]  # the whole, a cut-off start, a tail
CAPPED = """\
version: 1
default: allow
tools:
  binance_spot_place_order: {limits: {daily_notional_usd: 100000}}
  binance_futures_place_order: {limits: {daily_notional_usd: 100000}}
"""  # caps: the state database is really written
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}


def leaks(blob: bytes | str, where: str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else bytes(blob)
    return [f"{where}: {n[:12]}..." for n in NEEDLES if n.encode() in data]


def files_under(root) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


ED = ed25519_key()
PASSPHRASE = canary("CanaryPassphrase")


def key_needles(key, encrypted_pem: bytes, passphrase: str) -> list[str]:
    """What would show that a private key leaked: its passphrase, the lines of its encrypted PEM (the file) and of
    its plain PEM (and their tails), the raw 32-byte seed in base64 and hex."""
    from cryptography.hazmat.primitives import serialization as ser

    lines = [line for pem in (encrypted_pem, private_pem(key))
             for line in pem.decode().splitlines() if not line.startswith("-----")]
    seed = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    return [passphrase, passphrase[:12], *lines, *(line[-20:] for line in lines), base64.b64encode(seed).decode(),
            seed.hex()]


@pytest.fixture(scope="module")
def sim():
    with simulator(api_key=KEY, api_secret=SECRET, ed25519_public_key=public_pem(ED)) as rs:
        yield rs


def fault(sim, kind: str, path: str, count: int = 1, method: str | None = None) -> None:
    sim.control("faults", {"kind": kind, "path": path, "count": count, **({"method": method} if method else {})})
    COUNTS["fault scenarios (secrets)"] += 1


def exercise(server: RawStdio, sim) -> dict[str, str]:
    """Many tools, successes and failures; returns tool label -> the first word of its outcome."""
    outcomes: dict[str, str] = {}

    def call(label: str, tool: str, args: dict) -> str:
        result = server.call(tool, args)
        text = raw_text(result)
        outcomes[label] = text.split(":", 1)[0] if result.get("isError") else "OK"
        return text

    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert len(server.wait_for([1])[0]["result"]["tools"]) == 36
    call("status", "binance_account_status", {})
    call("account", "binance_account_info", {})
    call("balances", "binance_spot_balances", {})
    call("price", "binance_spot_price", {"symbol": "BTCUSDT"})
    call("order", "binance_spot_place_order", ORDER)
    call("rejected order", "binance_spot_place_order", {**ORDER, "quantity": "1"})  # 90000 USDT: too much
    call("bad input", "binance_spot_place_order", {**ORDER, "symbol": "ВТСUSDT"})
    call("unknown symbol", "binance_spot_price", {"symbol": "NOPEUSDT"})
    fault(sim, "error_5xx", "/api/v3/ticker/24hr", count=3)
    call("5xx read", "binance_spot_24hr_ticker", {"symbol": "BTCUSDT"})
    fault(sim, "non_json", "/api/v3/depth", count=3)
    call("non-JSON read", "binance_spot_orderbook", {"symbol": "BTCUSDT", "limit": 5})
    fault(sim, "error_5xx_after", "/api/v3/order", method="POST")
    call("5xx after order", "binance_spot_place_order", ORDER)
    fault(sim, "drop_after", "/fapi/v1/order", method="POST")
    call("dropped futures order", "binance_futures_place_order",
         {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"})
    call("positions", "binance_futures_positions", {})
    call("portfolio", "binance_portfolio_account", {})
    call("open orders", "binance_spot_open_orders", {})
    call("cancel all", "binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"})
    call("policy status", "binance_policy_status", {})
    sim.control("clock", {"skew_ms": 20000})  # -1021, a resync and one retry
    COUNTS["fault scenarios (secrets)"] += 1
    call("clock skew", "binance_spot_trade_history", {"symbol": "BTCUSDT"})
    sim.control("clock", {"skew_ms": 0})
    sim.control("limits", {"spot_weight_per_minute": 1})  # Binance's 429 with Retry-After
    COUNTS["fault scenarios (secrets)"] += 1
    call("429", "binance_exchange_info", {"symbol": "BTCUSDT"})
    sim.control("limits", {"reset_counters": True})
    sim.control("reset", {})
    server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "no_such_tool"}})
    server.wait_for([2])
    return outcomes


def test_canary_credentials_never_leave_the_process(sim, tmp_path):
    sim.control("reset", {})
    policy = write_policy(tmp_path / "policy.yaml", CAPPED)
    blobs: dict[str, bytes | str] = {}

    env = server_env(sim, tmp_path / "state", policy, BINANCE_MCP_LOG_LEVEL="DEBUG")
    server = RawStdio(env, tmp_path / "stderr.txt")
    try:
        server.initialize()
        outcomes = exercise(server, sim)
    finally:
        server.close()
    blobs["stdout"] = bytes(server.raw)
    # The run really covered successes and failures of every kind (the scan below is not of an idle server).
    assert outcomes["order"] == outcomes["status"] == outcomes["5xx after order"] == "OK", outcomes
    assert outcomes["rejected order"] == "EXCHANGE_REJECTED" and outcomes["unknown symbol"] == "UNKNOWN_SYMBOL", outcomes
    assert outcomes["bad input"] == "INVALID_INPUT", outcomes
    assert outcomes["5xx read"] in ("EXCHANGE_REJECTED", "EXCHANGE_UNAVAILABLE"), outcomes
    assert outcomes["non-JSON read"] == "EXCHANGE_UNAVAILABLE", outcomes
    assert outcomes["429"] == "EXCHANGE_REJECTED" and outcomes["clock skew"] == "OK", outcomes
    assert outcomes["dropped futures order"] == "OK", outcomes

    # Servers with a wrong secret (every signed call fails -1022) and with an unknown key (-2015).
    for name, key, secret, code in (("wrong-secret", KEY, WRONG_SECRET, "-1022"),
                                    ("wrong-key", WRONG_KEY, SECRET, "-2015")):
        env = server_env(sim, tmp_path / name, policy, BINANCE_MCP_LOG_LEVEL="DEBUG",
                         BINANCE_API_KEY=key, BINANCE_API_SECRET=secret)
        other = RawStdio(env, tmp_path / f"stderr-{name}.txt")
        try:
            other.initialize()
            texts = [raw_text(other.call(tool, args)) for tool, args in (
                ("binance_account_info", {}), ("binance_spot_place_order", ORDER),
                ("binance_futures_positions", {}), ("binance_account_status", {}))]
        finally:
            other.close()
        COUNTS["fault scenarios (secrets)"] += 1
        assert f"(Binance code {code})" in texts[0] and f"(Binance code {code})" in texts[1], texts
        blobs[f"stdout {name}"] = bytes(other.raw)

    shown = subprocess.run([*serve_cmd(), "--show-config"], env={**env, "BINANCE_API_KEY": KEY,
                                                                   "BINANCE_API_SECRET": SECRET},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stderr[shown.stderr.index("{"):])
    assert config["api_key"].startswith("****") and config["api_secret"].startswith("****")
    blobs["--show-config stdout"], blobs["--show-config stderr"] = shown.stdout, shown.stderr

    for path, data in files_under(tmp_path).items():  # stderr logs, audit logs, state databases (and WAL)
        blobs[path] = data
    names = [p.rsplit("/", 1)[-1] for p in blobs]
    assert {"audit.jsonl", "state.db", "stderr.txt"} <= set(names), names
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert len(audit.splitlines()) >= 15, audit
    assert "DEBUG" in (tmp_path / "stderr.txt").read_text()  # DEBUG logging was really on

    found = [hit for where, blob in blobs.items() for hit in leaks(blob, where)]
    assert found == [], found
    COUNTS["secret scans (places searched)"] += len(blobs)


def test_private_keys_and_passphrases_never_leave_the_process(sim, tmp_path):
    sim.control("reset", {})
    policy = write_policy(tmp_path / "policy.yaml", CAPPED)
    (tmp_path / "keys").mkdir()
    key_file = write_private(tmp_path / "keys" / "ed25519.pem", ED, PASSPHRASE)
    ed_key = sim.api_key_of("ed25519")
    needles = key_needles(ED, key_file.read_bytes(), PASSPHRASE)
    wrong = ed25519_key()
    wrong_file = write_private(tmp_path / "keys" / "wrong.pem", wrong)
    blobs: dict[str, bytes | str] = {}
    runs = {"trading": {"BINANCE_API_PRIVATE_KEY_FILE": str(key_file), "BINANCE_API_PRIVATE_KEY_PASSPHRASE": PASSPHRASE},
            "wrong key": {"BINANCE_API_PRIVATE_KEY_FILE": str(wrong_file)},
            "wrong passphrase": {"BINANCE_API_PRIVATE_KEY_FILE": str(key_file),
                                 "BINANCE_API_PRIVATE_KEY_PASSPHRASE": PASSPHRASE[::-1]}}
    texts: dict[str, list[str]] = {}
    for name, credentials in runs.items():
        env = {k: v for k, v in server_env(sim, tmp_path / name, policy, BINANCE_MCP_LOG_LEVEL="DEBUG").items()
               if k != "BINANCE_API_SECRET"}
        env.update(BINANCE_API_KEY=ed_key, **credentials)
        server = RawStdio(env, tmp_path / f"stderr-{name}.txt")
        try:
            server.initialize()
            texts[name] = [raw_text(server.call(tool, args)) for tool, args in (
                ("binance_account_info", {}), ("binance_spot_place_order", ORDER),
                ("binance_spot_place_order", {**ORDER, "quantity": "1"}), ("binance_futures_positions", {}),
                ("binance_spot_cancel_all_orders", {"symbol": "BTCUSDT"}), ("binance_policy_status", {}))]
        finally:
            server.close()
        blobs[f"stdout {name}"] = bytes(server.raw)
        COUNTS["fault scenarios (secrets)"] += 1
    assert '"orderId"' in texts["trading"][1] and '"NEW"' in texts["trading"][1], texts  # signed and placed
    assert "(Binance code -2010)" in texts["trading"][2], texts  # a rejection, with a signed request behind it
    assert "(Binance code -1022)" in texts["wrong key"][0] and "(Binance code -1022)" in texts["wrong key"][1]
    assert texts["wrong passphrase"][0].startswith("POLICY_ERROR: ") and "cannot be decrypted" in texts[
        "wrong passphrase"][0], texts

    env = {**server_env(sim, tmp_path / "shown", policy), **runs["trading"], "BINANCE_API_KEY": ed_key}
    env.pop("BINANCE_API_SECRET")
    shown = subprocess.run([*serve_cmd(), "--show-config"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stderr[shown.stderr.index("{"):])
    assert config["private_key_passphrase"] == "****" and config["key_type"] == "ed25519"
    blobs["--show-config stdout"], blobs["--show-config stderr"] = shown.stdout, shown.stderr

    for path, data in files_under(tmp_path).items():
        if "/keys/" not in path:  # the key files themselves hold the key, of course
            blobs[path] = data
    names = [p.rsplit("/", 1)[-1] for p in blobs]
    assert {"audit.jsonl", "state.db", "stderr-trading.txt"} <= set(names), names
    assert "DEBUG" in (tmp_path / "stderr-trading.txt").read_text()
    found = [f"{where}: {n[:12]}..." for where, blob in blobs.items() for n in needles
             if n.encode() in (blob.encode() if isinstance(blob, str) else blob)]
    assert found == [], found
    COUNTS["secret scans (places searched)"] += len(blobs)


def test_the_scan_can_fail():
    assert leaks(f"x {KEY} y", "t") and leaks(SECRET[:12].encode(), "t") and not leaks("CanaryKey", "t")
    encrypted = private_pem(ED, PASSPHRASE)  # a new salt each time: the needles come from the file's own text
    needles = key_needles(ED, encrypted, PASSPHRASE)
    from cryptography.hazmat.primitives import serialization as ser

    seed = ED.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    for text in (private_pem(ED).decode(), encrypted.decode().splitlines()[3], seed.hex(),
                 f"pass={PASSPHRASE[:12]}"):
        assert any(n in text for n in needles), text
    assert not any(n in public_pem(ED).decode() for n in needles)  # the public key is no secret


# -- unit tests of the masking helpers ----------------------------------------------------------------------
def settings_with(key: str, secret: str) -> Settings:
    return load_settings({"BINANCE_API_KEY": key, "BINANCE_API_SECRET": secret, "BINANCE_MCP_MODE": "testnet"})


def test_redact_masks_secrets_and_their_cut_off_starts():
    s = settings_with(KEY, SECRET)
    text = f"key={KEY} secret={SECRET} cut={SECRET[:12]}... tail={KEY[:14]} url=/api?k={KEY}&x=1"
    out = s.redact(text)
    assert not leaks(out, "redact"), out
    assert out.count("****") >= 5 and "url=/api?k=****&x=1" in out
    assert s.redact("nothing secret here") == "nothing secret here"
    assert redact("abc", []) == "abc" and redact("", [KEY]) == ""


def test_public_view_repr_and_str_mask_secrets():
    s = settings_with(KEY, SECRET)
    view = s.public_view()
    assert view["api_key"] == "****" + KEY[-4:] and view["api_secret"] == "****" + SECRET[-4:]
    for text in (json.dumps(view), repr(s), str(s), repr(s.api_key), str(s.api_secret), f"{s.api_secret}"):
        assert not leaks(text, "view"), text
    short = Settings(api_key=SecretStr("abc"), api_secret=SecretStr("defghij"))
    assert short.public_view()["api_key"] == "****" == short.public_view()["api_secret"]
    assert Settings().public_view()["api_key"] is None
