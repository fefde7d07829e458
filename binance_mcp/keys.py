"""Where the credentials come from, and what they are: an HMAC secret (from the environment, a file readable by the
user alone, or the OS keychain) or an Ed25519 / RSA private key (a PEM file, optionally encrypted).

Everything here runs at start-up, before the event loop, and raises ``ConfigError`` with the setting to change;
no message ever holds a secret or a file's content. The key itself is loaded with ``cryptography`` to check it
(type, passphrase) and handed to python-binance by ``exchange/signing.py``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from binance_mcp.errors import ConfigError

KEYCHAIN_SERVICE = "binance-mcp"  # the keychain entry: this service, the API key as the user name
KEYRING_EXTRA = "pip install 'binance-mcp-policy[keyring]'"
KeyType = Literal["ed25519", "rsa"]


@dataclass(frozen=True)
class PrivateKey:
    """A private key Binance accepts, checked: its type and its PEM text (as in the file, maybe encrypted)."""

    kind: KeyType
    pem: str = field(repr=False)  # repr(): the kind only, never the key
    passphrase: str | None = field(repr=False)

    def secrets(self) -> list[str]:
        """What redaction must scrub: the passphrase and every base64 line of the PEM (an error could quote one)."""
        lines = [line.strip() for line in self.pem.splitlines()]
        return [*(s for s in lines if s and not s.startswith("-----") and ":" not in s),
                *([self.passphrase] if self.passphrase else [])]


# -- files --------------------------------------------------------------------------------------------------------
def _private_to_user(path: Path, env: str, what: str) -> None:
    """A file holding a secret is readable and writable by its owner alone (as ssh insists for its keys)."""
    if os.name == "nt":  # pragma: no cover - no POSIX modes; NTFS ACLs are the user's business
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{env}={path} holds {what} and can be read or changed by other users (mode "
                          f"{mode:04o}): run `chmod 600 {path}`, then start the server again.")


def _read(path: Path, env: str) -> bytes:
    try:
        if not path.is_file():
            raise ConfigError(f"{env}={path} is not a file: give the path of the file itself.")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{env}={path} cannot be read ({exc.strerror or exc}): check the path and that the "
                          "user running the server may read it.") from None


def read_secret_file(path: Path, env: str = "BINANCE_API_SECRET_FILE") -> str:
    """The HMAC secret in ``path``: the file's only line (surrounding white space, a final newline, ignored)."""
    data = _read(path, env)
    _private_to_user(path, env, "the API secret")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{env}={path} is not a text file: it should hold the API secret alone, on one "
                          "line.") from None
    if not text:
        raise ConfigError(f"{env}={path} is empty: write the API secret in it, alone on one line.")
    if any(ch.isspace() for ch in text):
        raise ConfigError(f"{env}={path} holds more than one word: it should hold the API secret alone, on one "
                          "line (the API key goes in BINANCE_API_KEY).")
    return text


def load_private_key(path: Path, passphrase: str | None,
                     env: str = "BINANCE_API_PRIVATE_KEY_FILE") -> PrivateKey:
    """The Ed25519 or RSA private key in the PEM file ``path``, decrypted with ``passphrase`` to check it."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read(path, env)
    _private_to_user(path, env, "a private key")
    pass_env = "BINANCE_API_PRIVATE_KEY_PASSPHRASE"
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise ConfigError(f"{env}={path} is a public key: give the private key file instead (the public key is the "
                          "one you registered with Binance).")
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise ConfigError(f"{env}={path} is not a PEM private key (a file starting with -----BEGIN PRIVATE KEY----- "
                          "or -----BEGIN ENCRYPTED PRIVATE KEY-----): give the private key you generated for the "
                          "API key.")
    try:
        key = load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError as exc:  # a passphrase missing, or given for a key that is not encrypted
        if passphrase:
            raise ConfigError(f"{env}={path} is not encrypted, but {pass_env} is set: remove "
                              f"{pass_env}.") from None
        raise ConfigError(f"{env}={path} is encrypted: set {pass_env} to its passphrase.") from exc
    except ValueError:
        if passphrase and b"ENCRYPTED" in data:
            raise ConfigError(f"{env}={path} cannot be decrypted with {pass_env}: check the passphrase.") from None
        raise ConfigError(f"{env}={path} is not a PEM private key that can be read (a damaged or unsupported "
                          "file): give the private key you generated for the API key, in PKCS#8 PEM.") from None
    except Exception:  # cryptography's UnsupportedAlgorithm and kin
        raise ConfigError(f"{env}={path} holds a private key of a kind that cannot be read: Binance accepts "
                          "Ed25519 and RSA keys, in PKCS#8 PEM.") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        kind: KeyType = "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        kind = "rsa"
    else:
        raise ConfigError(f"{env}={path} holds neither an Ed25519 nor an RSA key: Binance accepts those two kinds "
                          "(Ed25519 recommended). Generate an Ed25519 key and register its public key with Binance.")
    return PrivateKey(kind, data.decode("ascii", "replace"), passphrase or None)


# -- the OS keychain (optional: pip install binance-mcp-policy[keyring]) ---------------------------------------------
class KeychainUnavailable(ConfigError):
    """The keyring library is not installed, or the OS keychain cannot be used."""


def _keyring():
    try:
        import keyring
    except ImportError:
        raise KeychainUnavailable("The OS keychain was not searched: the keyring library is not installed "
                                  f"({KEYRING_EXTRA}).") from None
    return keyring


def keychain_secret(api_key: str) -> str | None:
    """The secret stored for ``api_key`` by ``binance-mcp keys store``, or None. May block (a keychain prompt):
    start-up only."""
    keyring = _keyring()
    try:
        value = keyring.get_password(KEYCHAIN_SERVICE, api_key)
    except Exception as exc:  # keyring.errors.KeyringError and what a backend raises
        raise KeychainUnavailable(f"The OS keychain cannot be read ({type(exc).__name__}: {exc}).") from None
    return value.strip() if value and value.strip() else None


def store_in_keychain(api_key: str, secret: str) -> str:
    """Store ``secret`` under ``api_key``; the name of the keychain backend used."""
    keyring = _keyring()
    try:
        keyring.set_password(KEYCHAIN_SERVICE, api_key, secret)
        backend = keyring.get_keyring()
    except Exception as exc:
        raise KeychainUnavailable(f"The OS keychain cannot be written ({type(exc).__name__}: "
                                  f"{str(exc).replace(secret, '****')}).") from None
    return f"{type(backend).__module__}.{type(backend).__name__}"


def delete_from_keychain(api_key: str) -> bool:
    """Remove the secret of ``api_key``; False when there was none."""
    keyring = _keyring()
    try:
        if keyring.get_password(KEYCHAIN_SERVICE, api_key) is None:
            return False
        keyring.delete_password(KEYCHAIN_SERVICE, api_key)
    except Exception as exc:
        raise KeychainUnavailable(f"The OS keychain cannot be changed ({type(exc).__name__}: {exc}).") from None
    return True


# -- which of them signs -------------------------------------------------------------------------------------------
NO_SECRET = ("BINANCE_API_KEY is set but nothing signs for it: set BINANCE_API_SECRET or BINANCE_API_SECRET_FILE "
             "(an HMAC key), BINANCE_API_PRIVATE_KEY_FILE (an Ed25519 or RSA key), or store the secret in the OS "
             "keychain with `binance-mcp keys store`; or remove BINANCE_API_KEY for paper mode. {keychain}")


@dataclass(frozen=True)
class Credentials:
    """What signs for the API key: an HMAC secret or a private key, and where it was found."""

    secret: str | None = field(repr=False)
    private_key: PrivateKey | None
    source: str  # environment, file, OS keychain, private key file


def resolve(api_key: str | None, secret: str | None, secret_file: Path | None, key_file: Path | None,
            passphrase: str | None) -> Credentials | None:
    """The credentials the settings give (None: no API key, paper mode): a private key file, a secret from the
    environment or a file, else the OS keychain; two of them at once is an error, so it is clear which one signs."""
    if passphrase is not None and key_file is None:
        raise ConfigError("BINANCE_API_PRIVATE_KEY_PASSPHRASE is set but BINANCE_API_PRIVATE_KEY_FILE is not: set "
                          "the key file the passphrase decrypts, or remove the passphrase.")
    if secret is not None and secret_file is not None:
        raise ConfigError("Both BINANCE_API_SECRET and BINANCE_API_SECRET_FILE are set: keep one of them.")
    if key_file is not None and (secret is not None or secret_file is not None):
        given = "BINANCE_API_SECRET" if secret is not None else "BINANCE_API_SECRET_FILE"
        raise ConfigError(f"Both {given} and BINANCE_API_PRIVATE_KEY_FILE are set: an API key is either an HMAC key "
                          "(it has a secret) or an Ed25519/RSA key (it has a private key file). Keep the one that "
                          "belongs to BINANCE_API_KEY.")
    if api_key is None:
        for name, value in (("BINANCE_API_PRIVATE_KEY_FILE", key_file), ("BINANCE_API_SECRET_FILE", secret_file)):
            if value is not None:
                raise ConfigError(f"{name} is set but BINANCE_API_KEY is not: set BINANCE_API_KEY to the API key "
                                  f"Binance gave you for it, or remove {name} (paper mode).")
        if secret is not None:
            raise ConfigError("Set both BINANCE_API_KEY and BINANCE_API_SECRET, or neither (paper mode).")
        return None
    if key_file is not None:
        return Credentials(None, load_private_key(key_file, passphrase), "private key file")
    if secret_file is not None:
        return Credentials(read_secret_file(secret_file), None, "file")
    if secret is not None:
        return Credentials(secret, None, "environment")
    try:
        found = keychain_secret(api_key)
        note = "The OS keychain has no secret for this API key."
    except KeychainUnavailable as exc:
        found, note = None, str(exc)
    if found is None:
        raise ConfigError(NO_SECRET.format(keychain=note))
    return Credentials(found, None, "OS keychain")
