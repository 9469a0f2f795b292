"""Payload encryption: what a run's history holds when ``TFLOW_PAYLOAD_KEY`` is set.

Temporal keeps every input, output, signal and query result in the workflow's history,
where anyone who can read the namespace sees it, and `$secret` values reach the history
as a secrets activity's result. With a key configured, every process that connects
through `tflow_workers.connection` encrypts each payload it sends (AES-256-GCM, a fresh
nonce per payload) and decrypts what it receives, so the history holds ciphertext only.

* ``TFLOW_PAYLOAD_KEY``: 32 bytes, base64; encrypts, and decrypts.
* ``TFLOW_PAYLOAD_OLD_KEYS``: comma-separated base64 keys that still decrypt (rotation:
  make the new key current and the old one old, everywhere, before removing it).

A payload that is not encrypted passes through unchanged, so turning encryption on does
not break runs started before. A payload encrypted with a key this process lacks is an
error naming both key ids. Search attributes are never encrypted (Temporal must index
them); keep secrets out of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A payload key that cannot be used, or a payload no configured key decrypts."""


def key_id(key: bytes) -> str:
    """A short, non-secret name of a key (stored with each payload it encrypted)."""
    return hashlib.sha256(key).hexdigest()[:12]


def _decode_key(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadKeyError(f"{name} is not base64") from None
    if len(key) != 32:
        raise PayloadKeyError(f"{name} must be 32 bytes (base64), not {len(key)}")
    return key


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole serialized payloads; see the module docstring."""

    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._current = AESGCM(key)
        self._current_id = key_id(key)
        self._keys = {key_id(k): AESGCM(k) for k in (*old_keys, key)}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._current.encrypt(nonce, payload.SerializeToString(), None)
            out.append(
                Payload(
                    metadata={
                        "encoding": ENCODING,
                        KEY_ID_METADATA: self._current_id.encode(),
                    },
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            wanted = payload.metadata.get(KEY_ID_METADATA, b"").decode()
            cipher = self._keys.get(wanted)
            if cipher is None:
                raise PayloadKeyError(
                    f"a payload is encrypted with key {wanted or '(unnamed)'}, but this "
                    f"process has only {', '.join(sorted(self._keys))} "
                    "(TFLOW_PAYLOAD_KEY, TFLOW_PAYLOAD_OLD_KEYS)"
                )
            data = bytes(payload.data)
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
            out.append(Payload.FromString(plain))
        return out


def codec_from_env(env: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    """The codec ``TFLOW_PAYLOAD_KEY`` asks for, or None when it is not set."""
    source = os.environ if env is None else env
    current = source.get("TFLOW_PAYLOAD_KEY", "").strip()
    if not current:
        return None
    old = [
        _decode_key(text, "TFLOW_PAYLOAD_OLD_KEYS")
        for text in source.get("TFLOW_PAYLOAD_OLD_KEYS", "").split(",")
        if text.strip()
    ]
    return EncryptionCodec(_decode_key(current, "TFLOW_PAYLOAD_KEY"), old)
