"""Key pairs made at test time with ``cryptography`` (no key material is committed): Ed25519 and RSA private keys
written as Binance's key generator writes them (PKCS#8 PEM, optionally encrypted), and their public keys."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@lru_cache(maxsize=4)
def rsa_key(index: int = 0) -> rsa.RSAPrivateKey:
    """An RSA 2048 key (index: a different one), made once per test run: generating one takes a moment."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key, passphrase: str | None = None) -> bytes:
    encryption = ser.BestAvailableEncryption(passphrase.encode()) if passphrase else ser.NoEncryption()
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, encryption)


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def write_private(path: Path, key, passphrase: str | None = None, mode: int = 0o600) -> Path:
    path.write_bytes(private_pem(key, passphrase))
    path.chmod(mode)
    return path


def write_public(path: Path, key) -> Path:
    path.write_bytes(public_pem(key))
    return path


def write_secret(path: Path, secret: str, mode: int = 0o600) -> Path:
    path.write_text(secret + "\n")
    path.chmod(mode)
    return path
