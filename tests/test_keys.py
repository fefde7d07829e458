"""Credentials other than BINANCE_API_SECRET: Ed25519 and RSA private key files (plain and encrypted), a secret
file readable by its owner alone, and the OS keychain; each mistake stops start-up with a message saying what to
change. Keys are made at test time (tests/keyfiles.py)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import keyring
import pytest
from binance import Client
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from binance_mcp.errors import ConfigError
from binance_mcp.exchange.signing import use_private_key
from binance_mcp.keys import KEYCHAIN_SERVICE
from binance_mcp.settings import load_settings
from tests.keyfiles import (
    ec_key,
    ed25519_key,
    private_pem,
    rsa_key,
    write_private,
    write_public,
    write_secret,
)
from tests.keyring_backend import ENV as KEYRING_FILE
from tests.keyring_backend import FileKeyring

KEY = "TestApiKey" + "7" * 54
LIVE = {"BINANCE_API_KEY": KEY, "BINANCE_MCP_MODE": "live"}
PASS_ENV = "BINANCE_API_PRIVATE_KEY_PASSPHRASE"


def failure(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return str(info.value)


def with_key(path: Path, passphrase: str | None = None, **extra: str) -> dict[str, str]:
    env = {**LIVE, "BINANCE_API_PRIVATE_KEY_FILE": str(path), **extra}
    if passphrase is not None:
        env[PASS_ENV] = passphrase
    return env


# -- private key files that work ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, passphrase", [("ed25519", None), ("ed25519", "pass phrase 1"), ("rsa", None),
                                              ("rsa", "rsa-pass")])
def test_a_private_key_file_signs_instead_of_a_secret(tmp_path, kind, passphrase):
    key = ed25519_key() if kind == "ed25519" else rsa_key()
    path = write_private(tmp_path / "key.pem", key, passphrase)
    s = load_settings(with_key(path, passphrase))
    assert s.key_type == kind and s.secret_source == "private key file" and s.api_secret is None
    assert s.mode == "live" and s.private_key is not None and s.private_key.pem == path.read_text()
    # What the scrubbing covers: the passphrase and every base64 line of the key, never the PEM armour.
    body = [line for line in path.read_text().splitlines() if not line.startswith("-----")]
    assert set(body) <= set(s.secrets()) and (passphrase is None or passphrase in s.secrets())
    assert s.redact(f"x {body[0]} y {passphrase}") == f"x **** y {'****' if passphrase else None}"
    for text in (repr(s), str(s), repr(s.private_key)):  # no key material in a repr either
        assert body[0] not in text and (passphrase is None or passphrase not in text), text
    view = s.public_view()
    assert view["key_type"] == kind and view["private_key_file"] == str(path)
    assert view["private_key_passphrase"] == (None if passphrase is None else "****")


def test_a_passphrase_keeps_its_spaces(tmp_path):
    path = write_private(tmp_path / "key.pem", ed25519_key(), " spaced ")
    assert load_settings(with_key(path, " spaced ")).key_type == "ed25519"


def test_python_binance_alone_cannot_load_an_encrypted_ed25519_key(tmp_path):
    """Why exchange/signing.py exists: python-binance 1.0.37 takes a PEM longer than 120 characters for RSA. When
    this test fails, python-binance loads such keys itself and the shim can go."""
    pem = private_pem(ed25519_key(), "pw").decode()
    client = Client.__new__(Client)  # its loader alone: the constructor calls it first
    client.session, client._is_rsa = None, False
    with pytest.raises(ValueError, match="RSA key format is not supported"):
        client._init_private_key(pem, "pw")
    assert client._is_rsa is True  # taken for RSA by its length


@pytest.mark.parametrize("kind, passphrase, crlf", [("ed25519", "pw", False), ("ed25519", None, True),
                                                    ("rsa", "pw", False)])
def test_the_shim_signs_as_binance_verifies(tmp_path, kind, passphrase, crlf):
    """python-binance's own signer, with the key we loaded: base64 over the payload, URL-encoded; checked here with
    cryptography (another implementation than the signer's pycryptodome)."""
    key = ed25519_key() if kind == "ed25519" else rsa_key()
    path = tmp_path / "key.pem"
    pem = private_pem(key, passphrase)
    path.write_bytes(pem.replace(b"\n", b"\r\n") if crlf else pem)
    path.chmod(0o600)
    s = load_settings(with_key(path, passphrase))
    client = Client(KEY, None, ping=False)
    try:
        use_private_key(client, s.private_key)
        payload = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "timestamp": 1499827319559}
        signed = client._generate_signature(dict(payload))
    finally:
        client.close_connection()
    from urllib.parse import unquote

    raw = base64.b64decode(unquote(signed), validate=True)
    message = b"quantity=1&side=BUY&symbol=BTCUSDT&timestamp=1499827319559"  # python-binance sorts the params
    if kind == "ed25519":
        key.public_key().verify(raw, message)  # raises InvalidSignature when wrong
    else:
        key.public_key().verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    assert "+" not in signed and "/" not in signed and "=" not in signed  # URL-encoded


# -- mistakes, each with what to change -------------------------------------------------------------------------------
def test_a_key_file_needs_an_api_key(tmp_path):
    path = write_private(tmp_path / "key.pem", ed25519_key())
    assert failure({"BINANCE_API_PRIVATE_KEY_FILE": str(path), "BINANCE_MCP_MODE": "live"}) == (
        "BINANCE_API_PRIVATE_KEY_FILE is set but BINANCE_API_KEY is not: set BINANCE_API_KEY to the API key Binance "
        "gave you for it, or remove BINANCE_API_PRIVATE_KEY_FILE (paper mode).")


def test_a_secret_and_a_key_file_are_one_too_many(tmp_path):
    path = write_private(tmp_path / "key.pem", ed25519_key())
    text = failure(with_key(path, BINANCE_API_SECRET="s" * 20))
    assert text.startswith("Both BINANCE_API_SECRET and BINANCE_API_PRIVATE_KEY_FILE are set: an API key is either "
                           "an HMAC key"), text
    secret_file = write_secret(tmp_path / "secret", "s" * 20)
    assert failure(with_key(path, BINANCE_API_SECRET_FILE=str(secret_file))).startswith(
        "Both BINANCE_API_SECRET_FILE and BINANCE_API_PRIVATE_KEY_FILE are set")


def test_a_passphrase_needs_a_key_file():
    assert failure({**LIVE, "BINANCE_API_SECRET": "s" * 20, PASS_ENV: "pw"}) == (
        "BINANCE_API_PRIVATE_KEY_PASSPHRASE is set but BINANCE_API_PRIVATE_KEY_FILE is not: set the key file the "
        "passphrase decrypts, or remove the passphrase.")


def test_missing_key_files(tmp_path):
    missing = tmp_path / "nope.pem"
    assert failure(with_key(missing)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={missing} is not a file: give the path of the file itself.")
    assert failure(with_key(tmp_path)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={tmp_path} is not a file: give the path of the file itself.")


def test_wrong_missing_and_needless_passphrases(tmp_path):
    encrypted = write_private(tmp_path / "enc.pem", ed25519_key(), "right")
    assert failure(with_key(encrypted, "wrong")) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={encrypted} cannot be decrypted with BINANCE_API_PRIVATE_KEY_PASSPHRASE: check "
        "the passphrase.")
    assert failure(with_key(encrypted)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={encrypted} is encrypted: set BINANCE_API_PRIVATE_KEY_PASSPHRASE to its "
        "passphrase.")
    plain = write_private(tmp_path / "plain.pem", ed25519_key())
    assert failure(with_key(plain, "extra")) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={plain} is not encrypted, but BINANCE_API_PRIVATE_KEY_PASSPHRASE is set: "
        "remove BINANCE_API_PRIVATE_KEY_PASSPHRASE.")


def test_files_that_are_not_a_private_key_binance_takes(tmp_path):
    public = write_public(tmp_path / "pub.pem", ed25519_key())
    public.chmod(0o600)
    assert failure(with_key(public)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={public} is a public key: give the private key file instead (the public key "
        "is the one you registered with Binance).")
    text = tmp_path / "notes.txt"
    write_secret(text, "just some text")
    assert failure(with_key(text)).startswith(f"BINANCE_API_PRIVATE_KEY_FILE={text} is not a PEM private key (a file "
                                              "starting with -----BEGIN PRIVATE KEY-----")
    damaged = tmp_path / "damaged.pem"
    write_secret(damaged, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    assert failure(with_key(damaged)).startswith(f"BINANCE_API_PRIVATE_KEY_FILE={damaged} is not a PEM private key "
                                                 "that can be read")
    ec = write_private(tmp_path / "ec.pem", ec_key())
    assert failure(with_key(ec)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={ec} holds neither an Ed25519 nor an RSA key: Binance accepts those two kinds "
        "(Ed25519 recommended). Generate an Ed25519 key and register its public key with Binance.")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused_with_the_chmod_to_run(tmp_path, mode):
    path = write_private(tmp_path / "key.pem", ed25519_key(), mode=mode)
    assert failure(with_key(path)) == (
        f"BINANCE_API_PRIVATE_KEY_FILE={path} holds a private key and can be read or changed by other users (mode "
        f"{mode:04o}): run `chmod 600 {path}`, then start the server again.")
    path.chmod(0o400)
    assert load_settings(with_key(path)).key_type == "ed25519"


# -- the secret file ------------------------------------------------------------------------------------------------
def test_a_secret_file_gives_the_hmac_secret(tmp_path):
    path = write_secret(tmp_path / "secret", "  FileSecret" + "9" * 40 + "  ")
    s = load_settings({**LIVE, "BINANCE_API_SECRET_FILE": str(path)})
    assert s.api_secret.get_secret_value() == "FileSecret" + "9" * 40
    assert s.key_type == "hmac" and s.secret_source == "file" and "FileSecret" + "9" * 40 in s.secrets()
    assert s.public_view()["api_secret"] == "****9999" and s.public_view()["secret_source"] == "file"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o602, 0o700 | 0o004])
def test_a_secret_file_others_can_read_is_refused_with_the_chmod_to_run(tmp_path, mode):
    path = write_secret(tmp_path / "secret", "s" * 30, mode=mode)
    assert failure({**LIVE, "BINANCE_API_SECRET_FILE": str(path)}) == (
        f"BINANCE_API_SECRET_FILE={path} holds the API secret and can be read or changed by other users (mode "
        f"{mode:04o}): run `chmod 600 {path}`, then start the server again.")


def test_bad_secret_files(tmp_path):
    empty = write_secret(tmp_path / "empty", "")
    assert failure({**LIVE, "BINANCE_API_SECRET_FILE": str(empty)}) == (
        f"BINANCE_API_SECRET_FILE={empty} is empty: write the API secret in it, alone on one line.")
    two = write_secret(tmp_path / "two", "key\nsecret")
    assert failure({**LIVE, "BINANCE_API_SECRET_FILE": str(two)}).startswith(
        f"BINANCE_API_SECRET_FILE={two} holds more than one word")
    assert failure({**LIVE, "BINANCE_API_SECRET": "s" * 20, "BINANCE_API_SECRET_FILE": str(two)}) == (
        "Both BINANCE_API_SECRET and BINANCE_API_SECRET_FILE are set: keep one of them.")
    assert failure({"BINANCE_API_SECRET_FILE": str(two)}).startswith(
        "BINANCE_API_SECRET_FILE is set but BINANCE_API_KEY is not")


# -- the OS keychain ----------------------------------------------------------------------------------------------------
@pytest.fixture
def file_keyring(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYRING_FILE, str(tmp_path / "keyring.json"))
    before = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield tmp_path / "keyring.json"
    keyring.set_keyring(before)


def test_the_keychain_gives_the_secret_when_nothing_else_does(file_keyring):
    keyring.set_password(KEYCHAIN_SERVICE, KEY, "KeychainSecret" + "3" * 40)
    s = load_settings(LIVE)
    assert s.api_secret.get_secret_value() == "KeychainSecret" + "3" * 40 and s.secret_source == "OS keychain"
    # The environment comes first (the keychain is not even asked then), and another key finds nothing.
    assert load_settings({**LIVE, "BINANCE_API_SECRET": "e" * 20}).secret_source == "environment"
    assert failure({**LIVE, "BINANCE_API_KEY": "OtherKey" * 8}).endswith(
        "The OS keychain has no secret for this API key.")


def test_without_the_keyring_library_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring raises ImportError, as when not installed
    assert failure(LIVE).endswith("The OS keychain was not searched: the keyring library is not installed (pip "
                                  "install 'binance-mcp-policy[keyring]').")


def test_a_keychain_that_cannot_be_read_is_named(monkeypatch):
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        text = failure(LIVE)
    finally:
        keyring.set_keyring(before)
    assert "The OS keychain cannot be read (NoKeyringError: No recommended backend was available." in text
