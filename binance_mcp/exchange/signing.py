"""Ed25519 and RSA keys for python-binance, loaded by us.

python-binance 1.0.37 takes ``AsyncClient(api_key, private_key=PEM, private_key_pass=...)``, but its loader
(``BaseClient._init_private_key``) guesses the type from the length of the PEM text: more than 120 characters is
RSA. An encrypted Ed25519 key (about 300 characters) or one saved with CRLF line ends is then read as RSA and
fails ("RSA key format is not supported"), and the passphrase never reaches the Ed25519 loader. We know the type
(``keys.load_private_key`` checked it), so we load the key with pycryptodome ourselves, as python-binance would,
and give the client the two attributes its signers read: ``PRIVATE_KEY`` and ``_is_rsa``. The signing itself
(payload, base64, URL-encoding) stays python-binance's.
"""

from __future__ import annotations

from typing import Any

from binance_mcp.keys import PrivateKey


def pycryptodome_key(key: PrivateKey) -> Any:
    """The key as python-binance's signers want it: an ``RsaKey`` or an Ed25519 ``EccKey``."""
    from Crypto.PublicKey import ECC, RSA

    if key.kind == "rsa":
        return RSA.import_key(key.pem, passphrase=key.passphrase)
    return ECC.import_key(key.pem, passphrase=key.passphrase)


def use_private_key(client: Any, key: PrivateKey) -> None:
    """Make ``client`` (a python-binance client built without a secret) sign with ``key``."""
    client.PRIVATE_KEY = pycryptodome_key(key)
    client._is_rsa = key.kind == "rsa"
    client.API_SECRET = None
