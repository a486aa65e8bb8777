"""The optional second factor of a staff login (双重验证): a TOTP authenticator app, plus recovery codes.

The mechanism (sealed enrolment, codes that work once, hashed recovery codes) is quanyi.second_factor, shared
with the enterprise portal's users; this module binds it to the staff tables and keeps the staff-shaped calls
(`staff_id=`) the console, the admin API and `quanyi staff` use.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.second_factor import (
    ENROLMENT_MINUTES,
    RECOVERY_CODES,
    Enrolment,
    EnrolmentExpired,
    EnrolmentInvalid,
    SecondFactorAlreadyOn,
    SecondFactorStore,
)
from quanyi.staff.models import StaffRecoveryCode, StaffUser

__all__ = ["EnrolmentInvalid", "EnrolmentExpired", "SecondFactorAlreadyOn",
           "Enrolment", "RECOVERY_CODES", "ENROLMENT_MINUTES", "STORE",
           "start_enrolment", "reopen_enrolment", "confirm_enrolment", "use_code", "disable",
           "remaining_recovery_codes", "new_recovery_codes", "reseal_secret", "totp_secret"]

STORE = SecondFactorStore(user_model=StaffUser, recovery_model=StaffRecoveryCode, owner_field="staff_id",
                          label="staff-totp")


def start_enrolment(*, cipher: CardKeyCipher, staff_id: int, account: str, issuer: str,
                    now: dt.datetime | None = None) -> Enrolment:
    """A new secret for this staff member, sealed for the enrolment form (valid ENROLMENT_MINUTES)."""
    return STORE.start_enrolment(cipher=cipher, owner_id=staff_id, account=account, issuer=issuer, now=now)


def reopen_enrolment(*, cipher: CardKeyCipher, staff_id: int, sealed: str, account: str, issuer: str,
                     now: dt.datetime | None = None) -> Enrolment:
    return STORE.reopen_enrolment(cipher=cipher, owner_id=staff_id, sealed=sealed, account=account, issuer=issuer,
                                  now=now)


async def new_recovery_codes(*, session: AsyncSession, staff_id: int, now: dt.datetime | None = None) -> list[str]:
    return await STORE.new_recovery_codes(session=session, owner_id=staff_id, now=now)


async def confirm_enrolment(*, session: AsyncSession, cipher: CardKeyCipher, staff_id: int, sealed: str, code: str,
                            now: dt.datetime | None = None) -> list[str]:
    return await STORE.confirm_enrolment(session=session, cipher=cipher, owner_id=staff_id, sealed=sealed, code=code,
                                         now=now)


def totp_secret(cipher: CardKeyCipher, user: StaffUser) -> bytes:
    return STORE.totp_secret(cipher, user)


def reseal_secret(cipher: CardKeyCipher, user: StaffUser) -> EncryptedCode:
    return STORE.reseal_secret(cipher, user)


async def use_code(*, session: AsyncSession, cipher: CardKeyCipher, staff_id: int, code: str,
                   now: dt.datetime | None = None) -> bool:
    return await STORE.use_code(session=session, cipher=cipher, owner_id=staff_id, code=code, now=now)


async def remaining_recovery_codes(*, session: AsyncSession, staff_id: int) -> int:
    return await STORE.remaining_recovery_codes(session=session, owner_id=staff_id)


async def disable(*, session: AsyncSession, staff_id: int) -> None:
    await STORE.disable(session=session, owner_id=staff_id)
