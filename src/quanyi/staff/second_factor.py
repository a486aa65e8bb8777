"""The optional second factor of a staff login (双重验证): a TOTP authenticator app, plus recovery codes.

Enrolment is two steps: `start_enrolment` draws a secret and hands it back sealed (encrypted with the
shop's keyring, bound to the staff member and stamped with the time) for the enrolment page to carry;
`confirm_enrolment` opens it, checks a code from the app, stores the secret sealed the same way and returns
ten fresh recovery codes, shown once. Only SHA-256 hashes of recovery codes are stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.staff import totp
from quanyi.staff.models import StaffRecoveryCode, StaffUser

__all__ = ["EnrolmentInvalid", "EnrolmentExpired", "Enrolment", "RECOVERY_CODES", "start_enrolment",
           "reopen_enrolment", "confirm_enrolment", "use_code", "disable", "remaining_recovery_codes",
           "new_recovery_codes", "reseal_secret", "totp_secret"]

RECOVERY_CODES = 10
ENROLMENT_MINUTES = 15
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without mistakes
_RECOVERY_LENGTH = 16  # 31^16 > 2^79


class EnrolmentInvalid(InvalidInput):
    """The code from the app does not match the secret being enrolled."""

    code = "second_factor_code_wrong"


class EnrolmentExpired(EnrolmentInvalid):
    """The sealed enrolment is not ours, tampered with, or too old: start again."""

    code = "second_factor_enrolment_expired"


def _aad(staff_id: int, purpose: str) -> bytes:
    return f"staff-totp:{purpose}:{staff_id}".encode()


def _seal(cipher: CardKeyCipher, staff_id: int, purpose: str, plaintext: str) -> EncryptedCode:
    return cipher.encrypt(plaintext, fingerprint=_aad(staff_id, purpose))


class Enrolment:
    """A secret being enrolled: show `uri` as a QR code (and `secret_text` for typing), carry `sealed`."""

    def __init__(self, secret: bytes, sealed: str, uri: str) -> None:
        self.secret, self.sealed, self.uri = secret, sealed, uri
        self.secret_text = " ".join(totp.secret_to_base32(secret)[i:i + 4]
                                    for i in range(0, len(totp.secret_to_base32(secret)), 4))


def start_enrolment(*, cipher: CardKeyCipher, staff_id: int, account: str, issuer: str,
                    now: dt.datetime | None = None) -> Enrolment:
    """A new secret for this staff member, sealed for the enrolment form (valid ENROLMENT_MINUTES)."""
    now = now or utcnow()
    secret = totp.new_secret()
    body = json.dumps({"s": totp.secret_to_base32(secret), "t": int(now.timestamp())})
    sealed = _seal(cipher, staff_id, "enrol", body)
    token = f"{sealed.key_id}.{base64.urlsafe_b64encode(sealed.ciphertext).decode()}"
    return Enrolment(secret, token, totp.provisioning_uri(secret, account=account, issuer=issuer))


def _open_enrolment(cipher: CardKeyCipher, staff_id: int, token: str, now: dt.datetime) -> bytes:
    key_id, _, data = token.partition(".")
    try:
        raw = base64.urlsafe_b64decode(data.encode())
        body = json.loads(cipher.decrypt(EncryptedCode(key_id, raw), fingerprint=_aad(staff_id, "enrol")))
        secret, issued = totp.secret_from_base32(body["s"]), int(body["t"])
    except (CardKeyDecryptionError, binascii.Error, ValueError, KeyError, TypeError):
        raise EnrolmentExpired("this enrolment form is not valid; start again") from None
    if now.timestamp() - issued > ENROLMENT_MINUTES * 60:
        raise EnrolmentExpired("this enrolment form has expired; start again")
    return secret


def reopen_enrolment(*, cipher: CardKeyCipher, staff_id: int, sealed: str, account: str, issuer: str,
                     now: dt.datetime | None = None) -> Enrolment:
    """The enrolment a form carries, again (after a wrong code: the phone keeps the secret it scanned)."""
    secret = _open_enrolment(cipher, staff_id, sealed, now or utcnow())
    return Enrolment(secret, sealed, totp.provisioning_uri(secret, account=account, issuer=issuer))


def _hash_recovery(code: str) -> bytes:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).digest()


def _format_recovery(raw: str) -> str:
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


async def new_recovery_codes(*, session: AsyncSession, staff_id: int, now: dt.datetime | None = None) -> list[str]:
    """Replace a staff member's recovery codes with RECOVERY_CODES new ones; the plaintexts, shown once."""
    now = now or utcnow()
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == staff_id))
    codes = [_format_recovery("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)))
             for _ in range(RECOVERY_CODES)]
    session.add_all([StaffRecoveryCode(staff_id=staff_id, code_hash=_hash_recovery(code), created_at=now)
                     for code in codes])
    await session.flush()
    return codes


async def confirm_enrolment(*, session: AsyncSession, cipher: CardKeyCipher, staff_id: int, sealed: str, code: str,
                            now: dt.datetime | None = None) -> list[str]:
    """Turn the second factor on once the app shows a right code; returns the new recovery codes."""
    now = now or utcnow()
    secret = _open_enrolment(cipher, staff_id, sealed, now)
    step = totp.matching_step(secret, code, now.timestamp())
    if step is None:
        raise EnrolmentInvalid("the code does not match; check the time on the phone and try the next code")
    user = await session.scalar(select(StaffUser).where(StaffUser.id == staff_id).with_for_update())
    if user is None:
        raise EnrolmentExpired("no such staff member")
    stored = _seal(cipher, staff_id, "secret", totp.secret_to_base32(secret))
    user.totp_key_id, user.totp_ciphertext = stored.key_id, stored.ciphertext
    user.totp_enabled_at, user.totp_last_step = now, step
    return await new_recovery_codes(session=session, staff_id=staff_id, now=now)


def totp_secret(cipher: CardKeyCipher, user: StaffUser) -> bytes:
    assert user.totp_key_id is not None and user.totp_ciphertext is not None
    text = cipher.decrypt(EncryptedCode(user.totp_key_id, user.totp_ciphertext), fingerprint=_aad(user.id, "secret"))
    return totp.secret_from_base32(text)


def reseal_secret(cipher: CardKeyCipher, user: StaffUser) -> EncryptedCode:
    """The stored secret re-encrypted under the active key (key rotation), same binding."""
    assert user.totp_key_id is not None and user.totp_ciphertext is not None
    return cipher.reencrypt(EncryptedCode(user.totp_key_id, user.totp_ciphertext), fingerprint=_aad(user.id, "secret"))


async def use_code(*, session: AsyncSession, cipher: CardKeyCipher, staff_id: int, code: str,
                   now: dt.datetime | None = None) -> bool:
    """Accept a current TOTP code (each time step once) or an unused recovery code (then used up)."""
    now = now or utcnow()
    # The row lock makes "a code works once" hold for two logins racing with the same code.
    user = await session.scalar(select(StaffUser).where(StaffUser.id == staff_id).with_for_update()
                                .execution_options(populate_existing=True))
    if user is None or user.totp_enabled_at is None:
        return False
    compact = code.strip().replace(" ", "").replace("-", "")
    if compact.isdigit():
        step = totp.matching_step(totp_secret(cipher, user), compact, now.timestamp(), after_step=user.totp_last_step)
        if step is None:
            return False
        user.totp_last_step = step
        return True
    used = await session.execute(
        update(StaffRecoveryCode)
        .where(StaffRecoveryCode.staff_id == staff_id, StaffRecoveryCode.code_hash == _hash_recovery(code),
               StaffRecoveryCode.used_at.is_(None))
        .values(used_at=now))
    return bool(used.rowcount)  # type: ignore[attr-defined]


async def remaining_recovery_codes(*, session: AsyncSession, staff_id: int) -> int:
    rows = await session.scalars(select(StaffRecoveryCode.id).where(
        StaffRecoveryCode.staff_id == staff_id, StaffRecoveryCode.used_at.is_(None)))
    return len(rows.all())


async def disable(*, session: AsyncSession, staff_id: int) -> None:
    """Turn the second factor off (the owner resets a lost phone; or the staff member themselves)."""
    await session.execute(update(StaffUser).where(StaffUser.id == staff_id).values(
        totp_key_id=None, totp_ciphertext=None, totp_enabled_at=None, totp_last_step=None))
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == staff_id))
