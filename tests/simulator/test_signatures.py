"""Ed25519 and RSA API keys on the simulator, as Binance checks them: each registered public key has its own API
key; the signature is base64 over the query string then the body (without ``signature``), URL-encoded in the
request, case-sensitive; anything else is -1022. Hand-built requests (Binance's documented steps) and the real
python-binance client both; the HMAC key keeps working beside them."""

from __future__ import annotations

import base64
import re
import time
import urllib.parse
from decimal import Decimal as D

import pytest
from binance import Client
from binance.exceptions import BinanceAPIException
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from binance_mcp.simulator.signatures import api_key_of
from tests.helpers import point_at, simulator
from tests.keyfiles import ed25519_key, private_pem, public_pem, rsa_key, write_private, write_public
from tests.simulator.helpers import CliSimulator
from tests.simulator.test_auth import raw

ED = ed25519_key()
RSA = rsa_key()
BAD_SIGNATURE = (400, -1022, "Signature for this request is not valid.")


@pytest.fixture(scope="module")
def keyed():
    with simulator(ed25519_public_key=public_pem(ED), rsa_public_key=public_pem(RSA)) as rs:
        yield rs


@pytest.fixture
def sim(keyed):
    keyed.control("reset", {})
    return keyed


def b64_signature(key, payload: str) -> str:
    if hasattr(key, "key_size"):  # RSA
        raw_sig = key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        raw_sig = key.sign(payload.encode())
    return base64.b64encode(raw_sig).decode()


def order_body(ts: int | None = None) -> str:
    return ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000&recvWindow=5000"
            f"&timestamp={ts or int(time.time() * 1000)}")


def post_order(sim, key_kind: str, signing_key, *, encode=True, tamper=None, ts: int | None = None):
    body = order_body(ts)
    signature = b64_signature(signing_key, body)
    if tamper:
        signature = tamper(signature)
    value = urllib.parse.quote(signature, safe="") if encode else signature
    return raw(sim, "POST", "/api/v3/order", body=f"{body}&signature={value}", key=sim.api_key_of(key_kind))


def error(result) -> tuple[int, int, str]:
    status, body, _ = result
    return status, body.get("code"), body.get("msg")


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_signed_order_in_the_body_is_accepted_and_on_the_book(sim, kind):
    status, body, _ = post_order(sim, kind, ED if kind == "ed25519" else RSA)
    assert status == 200 and body["status"] == "NEW", body
    assert sim.control("state")["orders"]["spot"] == 1


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_signature_in_the_query_string_covers_the_query_then_the_body(sim, kind):
    key = ED if kind == "ed25519" else RSA
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT"
    body = f"timeInForce=GTC&quantity=0.01&price=50000&timestamp={int(time.time() * 1000)}"
    signature = urllib.parse.quote(b64_signature(key, query + body), safe="")  # no '&' between them
    status, answer, _ = raw(sim, "POST", "/api/v3/order", query=f"{query}&signature={signature}", body=body,
                            key=sim.api_key_of(kind))
    assert status == 200 and answer["status"] == "NEW", answer
    # Signed over the two joined with '&' instead: not what Binance signs.
    wrong = urllib.parse.quote(b64_signature(key, query + "&" + body), safe="")
    assert error(raw(sim, "POST", "/api/v3/order", query=f"{query}&signature={wrong}", body=body,
                     key=sim.api_key_of(kind))) == BAD_SIGNATURE


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_bad_signatures_are_1022_and_nothing_is_placed(sim, kind):
    key = ED if kind == "ed25519" else RSA
    other = ed25519_key() if kind == "ed25519" else rsa_key(1)
    cases = {
        "another key's": post_order(sim, kind, other),
        "the other kind's": post_order(sim, kind, RSA if kind == "ed25519" else ED),
        "case-changed": post_order(sim, kind, key, tamper=str.swapcase),
        "truncated": post_order(sim, kind, key, tamper=lambda s: s[:-8]),
        "not base64": post_order(sim, kind, key, tamper=lambda s: "!" + s[1:]),
        "hex HMAC-style": post_order(sim, kind, key, tamper=lambda s: base64.b64decode(s).hex()),
    }
    assert {name: error(r) for name, r in cases.items()} == {name: BAD_SIGNATURE for name in cases}
    assert sim.control("state")["orders"]["spot"] == 0


def test_a_plus_sign_left_unencoded_is_a_bad_signature(sim):
    """Form decoding turns a raw '+' into a space, as at Binance: the base64 signature must be URL-encoded."""
    ts = int(time.time() * 1000)
    while "+" not in b64_signature(ED, order_body(ts)):
        ts -= 1
    assert error(post_order(sim, "ed25519", ED, encode=False, ts=ts)) == BAD_SIGNATURE
    status, body, _ = post_order(sim, "ed25519", ED, encode=True, ts=ts)
    assert status == 200, body


def test_api_keys_are_derived_from_the_public_keys_and_distinct(sim):
    assert sim.api_key_of("ed25519") == api_key_of(ED.public_key()) != api_key_of(RSA.public_key())
    assert re.fullmatch(r"[0-9a-f]{64}", sim.api_key_of("rsa"))
    # The Ed25519 key signing with its API key swapped for the RSA one's: the RSA key checks it, and refuses.
    body = order_body()
    signature = urllib.parse.quote(b64_signature(ED, body), safe="")
    assert error(raw(sim, "POST", "/api/v3/order", body=f"{body}&signature={signature}",
                     key=sim.api_key_of("rsa"))) == BAD_SIGNATURE


def test_python_binance_with_an_rsa_key_and_the_hmac_key_trade_one_account(sim, tmp_path):
    """python-binance loads (unencrypted, PKCS#8) RSA keys itself; GET, POST and DELETE, spot and futures."""
    rsa_client = point_at(Client(sim.api_key_of("rsa"), private_key=private_pem(RSA).decode(), ping=False),
                          sim.base_url)
    hmac_client = point_at(Client(sim.api_key, sim.api_secret, ping=False), sim.base_url)
    try:
        placed = rsa_client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                         quantity="0.01", price="50000")
        assert [o["orderId"] for o in hmac_client.get_open_orders(symbol="BTCUSDT")] == [placed["orderId"]]
        assert rsa_client.cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])["status"] == "CANCELED"
        assert hmac_client.get_open_orders(symbol="BTCUSDT") == []
        rsa_client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
        (pos,) = hmac_client.futures_position_information(symbol="BTCUSDT")
        assert D(pos["positionAmt"]) == D("0.002")
        with pytest.raises(BinanceAPIException) as err:
            point_at(Client(sim.api_key_of("rsa"), private_key=private_pem(rsa_key(1)).decode(), ping=False),
                     sim.base_url).get_account()
        assert (err.value.status_code, err.value.code) == (400, -1022)
    finally:
        rsa_client.close_connection()
        hmac_client.close_connection()


# -- the command line ---------------------------------------------------------------------------------------------------
def test_the_cli_registers_public_keys_and_prints_their_api_keys(tmp_path):
    ed_pub, rsa_pub = write_public(tmp_path / "ed.pub", ED), write_public(tmp_path / "rsa.pub", RSA)
    cli = CliSimulator("--port", "0", "--tick-seconds", "0", "--ed25519-public-key", str(ed_pub),
                       "--rsa-public-key", str(rsa_pub))
    try:
        info = cli.banner()
        assert info["ed25519 key"] == api_key_of(ED.public_key()) and info["rsa key"] == api_key_of(RSA.public_key())
        assert info["key"] not in (info["ed25519 key"], info["rsa key"])  # the HMAC key is still there
        client = point_at(Client(info["rsa key"], private_key=private_pem(RSA).decode(), ping=False), info["url"])
        try:
            assert any(b["asset"] == "USDT" for b in client.get_account()["balances"])
        finally:
            client.close_connection()
    finally:
        code, stdout = cli.stop()
    assert code == 0 and stdout == ""


@pytest.mark.parametrize("flag, content, message", [
    ("--ed25519-public-key", "private", "the Ed25519 public key (--ed25519-public-key) is a private key: give its "
                                        "public key (openssl pkey -in KEY -pubout)"),
    ("--ed25519-public-key", "rsa", "the Ed25519 public key (--ed25519-public-key) is not an Ed25519 public key"),
    ("--rsa-public-key", "ed25519", "the RSA public key (--rsa-public-key) is not an RSA public key"),
    ("--rsa-public-key", "junk", "the RSA public key (--rsa-public-key) is not a PEM public key "
                                 "(-----BEGIN PUBLIC KEY-----)"),
    ("--ed25519-public-key", None, "--ed25519-public-key {path} cannot be read (No such file or directory)"),
])
def test_bad_public_keys_exit_2_with_a_clear_message(tmp_path, flag, content, message):
    import subprocess
    import sys

    path = tmp_path / "key.pem"
    if content == "private":
        write_private(path, ED)
    elif content == "rsa":
        write_public(path, RSA)
    elif content == "ed25519":
        write_public(path, ED)
    elif content == "junk":
        path.write_text("not a key")
    result = subprocess.run([sys.executable, "-m", "binance_mcp", "simulator", "--port", "0", flag, str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"binance-mcp simulator: {message.format(path=path)}\n"
