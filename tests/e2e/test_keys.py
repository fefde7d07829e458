"""The keys Binance issues, end to end: ``binance-mcp serve`` (live mode, pointed at a ``binance-mcp simulator`` by
BINANCE_MCP_BASE_URL) signs with an Ed25519 key (plain and passphrase-encrypted) or an RSA key given as a PEM file
(an encrypted RSA key goes through the same loader: tests/test_keys.py signs with one),
or with an HMAC secret from a file or the OS keychain (``binance-mcp keys store``). Orders are placed and cancelled
through MCP over stdio, and checked on the simulator's own books with the test's own client. A key that does not
belong to the API key gets Binance's -1022, and a key file that cannot be used locks the server before anything is
sent. Keys are made at test time."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from binance import Client

from tests.e2e.conftest import ALLOW_ALL
from tests.helpers import clean_env, point_at, stdio_client
from tests.keyfiles import ed25519_key, rsa_key, write_private, write_public, write_secret
from tests.simulator.helpers import CliSimulator

REPO = Path(__file__).resolve().parents[2]
ED, RSA = ed25519_key(), rsa_key()
HMAC_KEY = "KeysE2eHmacKey" + "4" * 50
HMAC_SECRET = "KeysE2eHmacSecret" + "5" * 47
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "50000",
         "timeInForce": "GTC"}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """``binance-mcp simulator`` with the Ed25519 and RSA public keys registered; its banner, and an HMAC client
    of the test's own on the same account."""
    where = tmp_path_factory.mktemp("public-keys")
    cli = CliSimulator("--port", "0", "--tick-seconds", "0", "--controls", "--api-key", HMAC_KEY,
                       "--api-secret", HMAC_SECRET,
                       "--ed25519-public-key", str(write_public(where / "ed25519.pub", ED)),
                       "--rsa-public-key", str(write_public(where / "rsa.pub", RSA)))
    info = cli.banner()
    own = point_at(Client(HMAC_KEY, HMAC_SECRET, ping=False), info["url"])
    yield info, own
    own.close_connection()
    code, stdout = cli.stop()
    assert code == 0 and stdout == ""


def live_env(info: dict, state: Path, api_key: str, **credentials: str) -> dict[str, str]:
    return clean_env(BINANCE_API_KEY=api_key, BINANCE_MCP_BASE_URL=info["url"], BINANCE_MCP_MODE="live",
                     BINANCE_MCP_STATE_DIR=str(state), BINANCE_MCP_POLICY=str(ALLOW_ALL), BINANCE_MCP_TIMEOUT="5",
                     **credentials)


def open_order_ids(own: Client) -> list[int]:
    return [o["orderId"] for o in own.get_open_orders(symbol="BTCUSDT")]


async def place_and_cancel(env: dict[str, str], own: Client) -> None:
    """Through MCP: a resting spot order and a futures market order; each checked on the exchange's books."""
    before = Decimal(sum(Decimal(p["positionAmt"]) for p in own.futures_position_information(symbol="BTCUSDT")))
    async with stdio_client(env) as client:
        placed = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert not placed.is_error, placed.content[0].text
        order_id = placed.structured_content["orderId"]
        assert order_id in open_order_ids(own)  # the exchange holds it
        cancelled = await client.call_tool("binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": order_id},
                                           raise_on_error=False)
        assert not cancelled.is_error, cancelled.content[0].text
        assert order_id not in open_order_ids(own)
        futures = await client.call_tool("binance_futures_place_order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}, raise_on_error=False)
        assert not futures.is_error, futures.content[0].text
    after = sum(Decimal(p["positionAmt"]) for p in own.futures_position_information(symbol="BTCUSDT"))
    assert after - before == Decimal("0.002")


@pytest.mark.parametrize("kind, passphrase", [("ed25519", None), ("ed25519", "correct horse battery"), ("rsa", None)])
async def test_a_private_key_places_and_cancels_orders(exchange, tmp_path, kind, passphrase):
    info, own = exchange
    key_file = write_private(tmp_path / f"{kind}.pem", ED if kind == "ed25519" else RSA, passphrase)
    credentials = {"BINANCE_API_PRIVATE_KEY_FILE": str(key_file)}
    if passphrase:
        credentials["BINANCE_API_PRIVATE_KEY_PASSPHRASE"] = passphrase
    env = live_env(info, tmp_path / "state", info[f"{kind} key"], **credentials)
    checked = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", "--check"], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert checked.returncode == 0 and f"live mode, {kind} key (from the private key file)" in checked.stderr
    await place_and_cancel(env, own)


async def test_a_key_that_does_not_belong_to_the_api_key_gets_1022_and_nothing_is_placed(exchange, tmp_path):
    info, own = exchange
    wrong = write_private(tmp_path / "wrong.pem", ed25519_key())
    env = live_env(info, tmp_path / "state", info["ed25519 key"], BINANCE_API_PRIVATE_KEY_FILE=str(wrong))
    before = open_order_ids(own)
    async with stdio_client(env) as client:
        r = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
    text = r.content[0].text
    assert r.is_error and text.startswith("EXCHANGE_REJECTED: ") and "(Binance code -1022)" in text, text
    assert "does not belong to this API key" in text and "BINANCE_API_PRIVATE_KEY_FILE" in text, text
    assert open_order_ids(own) == before


async def test_a_key_file_that_cannot_be_used_locks_the_server_and_sends_nothing(exchange, tmp_path):
    info, own = exchange
    key_file = write_private(tmp_path / "enc.pem", ED, "the right one")
    env = live_env(info, tmp_path / "state", info["ed25519 key"], BINANCE_API_PRIVATE_KEY_FILE=str(key_file),
                   BINANCE_API_PRIVATE_KEY_PASSPHRASE="a wrong one")
    seen = own.session.get(info["url"] + "/_sim/state", timeout=10).json()["last_seq"]
    async with stdio_client(env) as client:
        r = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
    text = r.content[0].text
    assert r.is_error and text.startswith("POLICY_ERROR: ") and "a wrong one" not in text, text
    assert f"BINANCE_API_PRIVATE_KEY_FILE={key_file} cannot be decrypted with BINANCE_API_PRIVATE_KEY_PASSPHRASE: " \
           "check the passphrase." in text, text
    assert own.session.get(info["url"] + "/_sim/state", timeout=10).json()["last_seq"] == seen  # nothing sent


async def test_a_secret_file_signs_and_one_others_can_read_is_refused(exchange, tmp_path):
    info, own = exchange
    secret_file = write_secret(tmp_path / "secret", HMAC_SECRET)
    await place_and_cancel(live_env(info, tmp_path / "state", HMAC_KEY, BINANCE_API_SECRET_FILE=str(secret_file)),
                           own)
    secret_file.chmod(0o644)
    checked = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", "--check"],
                             env=live_env(info, tmp_path / "state", HMAC_KEY, BINANCE_API_SECRET_FILE=str(secret_file)),
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert checked.returncode == 2 and checked.stdout == ""
    assert f"run `chmod 600 {secret_file}`" in checked.stderr and HMAC_SECRET not in checked.stderr


def keychain_env(base: dict[str, str], keyring_file: Path) -> dict[str, str]:
    """A file-based keyring (tests/keyring_backend.py) instead of the OS keychain, for the process started."""
    path = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH", "")]))
    return {**base, "PYTHON_KEYRING_BACKEND": "tests.keyring_backend.FileKeyring",
            "BINANCE_MCP_TEST_KEYRING": str(keyring_file), "PYTHONPATH": path}


async def test_keys_store_keeps_the_secret_in_the_keychain_and_serve_reads_it(exchange, tmp_path):
    info, own = exchange
    env = keychain_env(live_env(info, tmp_path / "state", HMAC_KEY), tmp_path / "keyring.json")
    stored = subprocess.run([sys.executable, "-m", "binance_mcp", "keys", "store"], env=env, input=HMAC_SECRET + "\n",
                            capture_output=True, text=True, timeout=60)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout == "" and HMAC_SECRET not in stored.stderr and HMAC_SECRET[:12] not in stored.stderr
    assert "stored the API secret of API key ****4444 in the OS keychain" in stored.stderr
    checked = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", "--check"], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert checked.returncode == 0 and "hmac key (from the OS keychain)" in checked.stderr, checked.stderr
    assert HMAC_SECRET in (tmp_path / "keyring.json").read_text()  # where the backend keeps it
    await place_and_cancel(env, own)  # no BINANCE_API_SECRET: serve found it in the keychain

    deleted = subprocess.run([sys.executable, "-m", "binance_mcp", "keys", "delete"], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert deleted.returncode == 0 and HMAC_SECRET not in (tmp_path / "keyring.json").read_text()
    checked = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", "--check"], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert checked.returncode == 2 and "The OS keychain has no secret for this API key." in checked.stderr


def test_keys_store_refuses_an_empty_secret_and_names_what_is_missing(tmp_path):
    env = keychain_env(clean_env(BINANCE_API_KEY=HMAC_KEY), tmp_path / "keyring.json")
    empty = subprocess.run([sys.executable, "-m", "binance_mcp", "keys", "store"], env=env, input="\n",
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "nothing was stored" in empty.stderr
    assert not (tmp_path / "keyring.json").exists()
    no_key = subprocess.run([sys.executable, "-m", "binance_mcp", "keys", "store"], env=clean_env(), input="x\n",
                            capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 2 and "set BINANCE_API_KEY or pass --api-key" in no_key.stderr
