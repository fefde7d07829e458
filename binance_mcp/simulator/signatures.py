"""Who may sign, and how signatures are checked, as Binance does it (notes section 2; Binance's "SIGNED Endpoint
security"): the payload is the query string then the body, as sent, without ``signature``.

- HMAC: the simulator's own key and secret; lower-case hex HMAC-SHA256, compared case-insensitively.
- Ed25519 and RSA: keys registered by their public key (``--ed25519-public-key``, ``--rsa-public-key``), each with
  its own API key, as Binance gives one when a public key is registered. The signature is base64 (Ed25519 over the
  payload; RSA PKCS#1 v1.5 with SHA-256), URL-encoded in the request; it is case-sensitive.

The API key of a registered public key is derived from it (SHA-256 of its DER form, 64 hex characters), so the
same file always gets the same key; the simulator prints it at start-up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal

KeyKind = Literal["hmac", "ed25519", "rsa"]
B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def hmac_signature(secret: str, payload: str) -> str:
    """Binance's HMAC-SHA256 signature: lower-case hex of HMAC(secret, payload)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def load_public_key(pem: bytes, kind: Literal["ed25519", "rsa"], where: str = "the public key") -> Any:
    """The public key in ``pem`` (a PEM ``PUBLIC KEY``), which must be of ``kind``; ValueError says what is wrong."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if b"PRIVATE KEY" in pem:
        raise ValueError(f"{where} is a private key: give its public key (openssl pkey -in KEY -pubout)")
    try:
        key = load_pem_public_key(pem)
    except Exception:
        raise ValueError(f"{where} is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    wanted = ed25519.Ed25519PublicKey if kind == "ed25519" else rsa.RSAPublicKey
    if not isinstance(key, wanted):
        raise ValueError(f"{where} is not an {'Ed25519' if kind == 'ed25519' else 'RSA'} public key")
    return key


def api_key_of(public_key: Any) -> str:
    """The API key the simulator gives a registered public key: SHA-256 of its DER form, in hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


@dataclass(frozen=True)
class Signer:
    """One API key and what its signatures are checked with."""

    api_key: str
    kind: KeyKind
    secret: str = ""
    public_key: Any = None

    def verify(self, payload: str, signature: str) -> bool:
        if self.kind == "hmac":
            expected = hmac_signature(self.secret, payload)
            # bytes: compare_digest refuses str with non-ASCII characters (a percent-encoded signature can have them)
            return hmac.compare_digest(expected.encode(), signature.lower().encode())
        if not signature or not set(signature) <= B64_CHARS:  # e.g. a '+' sent unencoded arrives as a space
            return False
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            if self.kind == "ed25519":
                self.public_key.verify(raw, payload.encode())
            else:
                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import padding

                self.public_key.verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def signers(api_key: str, api_secret: str, ed25519_public_key: bytes | None = None,
            rsa_public_key: bytes | None = None) -> dict[str, Signer]:
    """API key -> signer: the HMAC key, and one key per registered public key."""
    out = {api_key: Signer(api_key, "hmac", secret=api_secret)}
    for kind, pem in (("ed25519", ed25519_public_key), ("rsa", rsa_public_key)):
        if pem is not None:
            label = "Ed25519" if kind == "ed25519" else "RSA"
            public = load_public_key(pem, kind, f"the {label} public key (--{kind}-public-key)")
            out[api_key_of(public)] = Signer(api_key_of(public), kind, public_key=public)  # type: ignore[arg-type]
    return out
