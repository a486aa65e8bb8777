"""Supplier API credentials at rest: JSON sealed with the shop's card-key keyring (AES-256-GCM).

The supplier code is the associated data, so a ciphertext copied onto another supplier's row fails
to open instead of sending one supplier's secret to another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode

__all__ = ["seal_credentials", "open_credentials", "reseal_credentials", "CredentialsUnreadable"]


class CredentialsUnreadable(Exception):
    """The stored credentials cannot be decrypted (missing key or tampering)."""


def _binding(supplier_code: str) -> bytes:
    return hashlib.sha256(b"quanyi-supplier-credentials:" + supplier_code.encode()).digest()


def seal_credentials(cipher: CardKeyCipher, *, supplier_code: str, credentials: Mapping[str, str]) -> EncryptedCode:
    plaintext = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":"))
    return cipher.encrypt(plaintext, fingerprint=_binding(supplier_code))


def open_credentials(cipher: CardKeyCipher, *, supplier_code: str, sealed: EncryptedCode) -> dict[str, str]:
    try:
        plaintext = cipher.decrypt(sealed, fingerprint=_binding(supplier_code))
    except CardKeyDecryptionError as exc:
        raise CredentialsUnreadable(f"credentials of supplier {supplier_code} cannot be read: {exc}") from None
    data = json.loads(plaintext)
    return {str(k): str(v) for k, v in data.items()}


def reseal_credentials(cipher: CardKeyCipher, *, supplier_code: str, sealed: EncryptedCode) -> EncryptedCode:
    """Stored credentials re-encrypted under the active key (key rotation), still bound to the supplier."""
    try:
        return cipher.reencrypt(sealed, fingerprint=_binding(supplier_code))
    except CardKeyDecryptionError as exc:
        raise CredentialsUnreadable(f"credentials of supplier {supplier_code} cannot be read: {exc}") from None
