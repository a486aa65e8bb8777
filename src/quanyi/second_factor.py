"""The optional second factor of a login (双重验证): a TOTP authenticator app, plus recovery codes, for any kind
of account that has the TOTP columns (`TotpColumns`) and a table of recovery codes: staff (quanyi.staff) and
enterprise portal users (quanyi.enterprises.users) each bind one `SecondFactorStore` to their own tables.

Enrolment is two steps: `start_enrolment` draws a secret and hands it back sealed (encrypted with the shop's
keyring, bound to the account and stamped with the time) for the enrolment page to carry; `confirm_enrolment`
opens it, checks a code from the app, stores the secret sealed the same way and returns ten fresh recovery
codes, shown once. Only SHA-256 hashes of recovery codes are stored. A TOTP code works once (the last accepted
time step is kept), and so does a recovery code.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, String, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import UTCDateTime, utcnow
from quanyi.errors import InvalidInput
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.staff import totp

__all__ = ["TotpColumns", "SecondFactorStore", "EnrolmentInvalid", "EnrolmentExpired", "SecondFactorAlreadyOn",
           "Enrolment", "RECOVERY_CODES", "ENROLMENT_MINUTES"]

RECOVERY_CODES = 10
ENROLMENT_MINUTES = 15
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without mistakes
_RECOVERY_LENGTH = 16  # 31^16 > 2^79


class TotpColumns:
    """The second-factor columns of an account table: the TOTP secret sealed with the shop's keyring (the
    account id bound in), when it was turned on, and the last time step a code was accepted for."""

    totp_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    totp_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class EnrolmentInvalid(InvalidInput):
    """The code from the app does not match the secret being enrolled."""

    code = "second_factor_code_wrong"


class EnrolmentExpired(EnrolmentInvalid):
    """The sealed enrolment is not ours, tampered with, or too old: start again."""

    code = "second_factor_enrolment_expired"


class SecondFactorAlreadyOn(EnrolmentExpired):
    """An enrolment for an account whose second factor is on: turning it off (with a current code) comes first,
    so a session that knows no code cannot swap in its own authenticator and fresh recovery codes."""

    code = "second_factor_already_on"


class Enrolment:
    """A secret being enrolled: show `uri` as a QR code (and `secret_text` for typing), carry `sealed`."""

    def __init__(self, secret: bytes, sealed: str, uri: str) -> None:
        self.secret, self.sealed, self.uri = secret, sealed, uri
        text = totp.secret_to_base32(secret)
        self.secret_text = " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def _hash_recovery(code: str) -> bytes:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).digest()


def _format_recovery(raw: str) -> str:
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


@dataclass(frozen=True)
class SecondFactorStore:
    """The second factor of one kind of account: `user_model` has TotpColumns and an `id`; `recovery_model` has
    `<owner_field>`, `code_hash`, `created_at`, `used_at`. `label` is bound into every sealed secret, so a
    secret sealed for one kind of account (or one account) never opens for another."""

    user_model: Any
    recovery_model: Any
    owner_field: str
    label: str

    def _aad(self, owner_id: int, purpose: str) -> bytes:
        return f"{self.label}:{purpose}:{owner_id}".encode()

    def _seal(self, cipher: CardKeyCipher, owner_id: int, purpose: str, plaintext: str) -> EncryptedCode:
        return cipher.encrypt(plaintext, fingerprint=self._aad(owner_id, purpose))

    @property
    def _owner(self) -> Any:
        return getattr(self.recovery_model, self.owner_field)

    def start_enrolment(self, *, cipher: CardKeyCipher, owner_id: int, account: str, issuer: str,
                        now: dt.datetime | None = None) -> Enrolment:
        """A new secret for this account, sealed for the enrolment form (valid ENROLMENT_MINUTES)."""
        now = now or utcnow()
        secret = totp.new_secret()
        body = json.dumps({"s": totp.secret_to_base32(secret), "t": int(now.timestamp())})
        sealed = self._seal(cipher, owner_id, "enrol", body)
        token = f"{sealed.key_id}.{base64.urlsafe_b64encode(sealed.ciphertext).decode()}"
        return Enrolment(secret, token, totp.provisioning_uri(secret, account=account, issuer=issuer))

    def _open_enrolment(self, cipher: CardKeyCipher, owner_id: int, token: str, now: dt.datetime) -> bytes:
        key_id, _, data = token.partition(".")
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            body = json.loads(cipher.decrypt(EncryptedCode(key_id, raw), fingerprint=self._aad(owner_id, "enrol")))
            secret, issued = totp.secret_from_base32(body["s"]), int(body["t"])
        except (CardKeyDecryptionError, binascii.Error, ValueError, KeyError, TypeError):
            raise EnrolmentExpired("this enrolment form is not valid; start again") from None
        if now.timestamp() - issued > ENROLMENT_MINUTES * 60:
            raise EnrolmentExpired("this enrolment form has expired; start again")
        return secret

    def reopen_enrolment(self, *, cipher: CardKeyCipher, owner_id: int, sealed: str, account: str, issuer: str,
                         now: dt.datetime | None = None) -> Enrolment:
        """The enrolment a form carries, again (after a wrong code: the phone keeps the secret it scanned)."""
        secret = self._open_enrolment(cipher, owner_id, sealed, now or utcnow())
        return Enrolment(secret, sealed, totp.provisioning_uri(secret, account=account, issuer=issuer))

    async def new_recovery_codes(self, *, session: AsyncSession, owner_id: int,
                                 now: dt.datetime | None = None) -> list[str]:
        """Replace the account's recovery codes with RECOVERY_CODES new ones; the plaintexts, shown once."""
        now = now or utcnow()
        await session.execute(delete(self.recovery_model).where(self._owner == owner_id))
        codes = [_format_recovery("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)))
                 for _ in range(RECOVERY_CODES)]
        session.add_all([self.recovery_model(**{self.owner_field: owner_id}, code_hash=_hash_recovery(code),
                                             created_at=now) for code in codes])
        await session.flush()
        return codes

    async def _locked_user(self, session: AsyncSession, owner_id: int) -> Any:
        return await session.scalar(select(self.user_model).where(self.user_model.id == owner_id).with_for_update()
                                    .execution_options(populate_existing=True))

    async def confirm_enrolment(self, *, session: AsyncSession, cipher: CardKeyCipher, owner_id: int, sealed: str,
                                code: str, now: dt.datetime | None = None) -> list[str]:
        """Turn the second factor on once the app shows a right code; returns the new recovery codes."""
        now = now or utcnow()
        secret = self._open_enrolment(cipher, owner_id, sealed, now)
        step = totp.matching_step(secret, code, now.timestamp())
        if step is None:
            raise EnrolmentInvalid("the code does not match; check the time on the phone and try the next code")
        user = await self._locked_user(session, owner_id)
        if user is None:
            raise EnrolmentExpired("no such account")
        if user.totp_enabled_at is not None:  # checked under the row lock: two enrolments cannot both pass
            raise SecondFactorAlreadyOn("the second factor is already on; turn it off with a current code first")
        stored = self._seal(cipher, owner_id, "secret", totp.secret_to_base32(secret))
        user.totp_key_id, user.totp_ciphertext = stored.key_id, stored.ciphertext
        user.totp_enabled_at, user.totp_last_step = now, step
        return await self.new_recovery_codes(session=session, owner_id=owner_id, now=now)

    def totp_secret(self, cipher: CardKeyCipher, user: Any) -> bytes:
        assert user.totp_key_id is not None and user.totp_ciphertext is not None
        text = cipher.decrypt(EncryptedCode(user.totp_key_id, user.totp_ciphertext),
                              fingerprint=self._aad(user.id, "secret"))
        return totp.secret_from_base32(text)

    def reseal_secret(self, cipher: CardKeyCipher, user: Any) -> EncryptedCode:
        """The stored secret re-encrypted under the active key (key rotation), same binding."""
        assert user.totp_key_id is not None and user.totp_ciphertext is not None
        return cipher.reencrypt(EncryptedCode(user.totp_key_id, user.totp_ciphertext),
                                fingerprint=self._aad(user.id, "secret"))

    async def use_code(self, *, session: AsyncSession, cipher: CardKeyCipher, owner_id: int, code: str,
                       now: dt.datetime | None = None) -> bool:
        """Accept a current TOTP code (each time step once) or an unused recovery code (then used up)."""
        now = now or utcnow()
        # The row lock makes "a code works once" hold for two logins racing with the same code.
        user = await self._locked_user(session, owner_id)
        if user is None or user.totp_enabled_at is None:
            return False
        compact = code.strip().replace(" ", "").replace("-", "")
        if compact.isdigit():
            step = totp.matching_step(self.totp_secret(cipher, user), compact, now.timestamp(),
                                      after_step=user.totp_last_step)
            if step is None:
                return False
            user.totp_last_step = step
            return True
        used = await session.execute(
            update(self.recovery_model)
            .where(self._owner == owner_id, self.recovery_model.code_hash == _hash_recovery(code),
                   self.recovery_model.used_at.is_(None))
            .values(used_at=now))
        return bool(used.rowcount)  # type: ignore[attr-defined]

    async def remaining_recovery_codes(self, *, session: AsyncSession, owner_id: int) -> int:
        return int(await session.scalar(select(func.count()).select_from(self.recovery_model).where(
            self._owner == owner_id, self.recovery_model.used_at.is_(None))) or 0)

    async def disable(self, *, session: AsyncSession, owner_id: int) -> None:
        """Turn the second factor off (an administrator resets a lost phone; or the account holder)."""
        await session.execute(update(self.user_model).where(self.user_model.id == owner_id).values(
            totp_key_id=None, totp_ciphertext=None, totp_enabled_at=None, totp_last_step=None))
        await session.execute(delete(self.recovery_model).where(self._owner == owner_id))
