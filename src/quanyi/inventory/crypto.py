"""Card keys at rest: AES-256-GCM ciphertext plus an HMAC-SHA256 fingerprint for dedupe.

Each stored row carries the id of the key that encrypted it, so the keyring can gain a new active
key while old rows stay readable (rotation re-encrypts lazily or in a job, never in a rush).
The fingerprint is bound into the ciphertext as associated data: a ciphertext copied onto another
row (another code's fingerprint) fails to decrypt instead of handing out the wrong code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CardKeyCipher", "EncryptedCode", "CardKeyDecryptionError"]

_NONCE_BYTES = 12


class CardKeyDecryptionError(Exception):
    """Ciphertext, key or fingerprint do not belong together (tampering or a missing key)."""


@dataclass(frozen=True, slots=True)
class EncryptedCode:
    key_id: str
    ciphertext: bytes  # nonce || AES-GCM(ciphertext || tag)


class CardKeyCipher:
    def __init__(self, *, keyring: dict[str, bytes], active_key_id: str, hash_key: bytes) -> None:
        if active_key_id not in keyring:
            raise ValueError(f"active key {active_key_id!r} is not in the keyring")
        if not hash_key:
            raise ValueError("fingerprint key must not be empty")
        self._aeads = {key_id: AESGCM(key) for key_id, key in keyring.items()}
        self.active_key_id = active_key_id
        self._hash_key = hash_key

    def fingerprint(self, normalized_code: str) -> bytes:
        """Keyed hash of a normalized code: equal codes collide, nothing about the code leaks."""
        return hmac.new(self._hash_key, normalized_code.encode("utf-8"), hashlib.sha256).digest()

    def encrypt(self, code: str, *, fingerprint: bytes) -> EncryptedCode:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self.active_key_id].encrypt(nonce, code.encode("utf-8"), fingerprint)
        return EncryptedCode(key_id=self.active_key_id, ciphertext=nonce + sealed)

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key in the ring (the active one included)."""
        return frozenset(self._aeads)

    def reencrypt(self, encrypted: EncryptedCode, *, fingerprint: bytes) -> EncryptedCode:
        """The same plaintext sealed under the active key, bound to the same associated data (rotation)."""
        return self.encrypt(self.decrypt(encrypted, fingerprint=fingerprint), fingerprint=fingerprint)

    def decrypt(self, encrypted: EncryptedCode, *, fingerprint: bytes) -> str:
        aead = self._aeads.get(encrypted.key_id)
        if aead is None:
            raise CardKeyDecryptionError(f"key {encrypted.key_id!r} is not in the keyring")
        nonce, sealed = encrypted.ciphertext[:_NONCE_BYTES], encrypted.ciphertext[_NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, sealed, fingerprint).decode("utf-8")
        except InvalidTag:
            raise CardKeyDecryptionError("card key ciphertext failed authentication") from None
