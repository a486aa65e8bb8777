"""Member tables: the buyer account, its login sessions (only a hash of each token is stored) and the one-time
sign-in codes.

A member is a buyer of the whole platform (平台会员), not of one merchant: the same account buys from every
merchant's shop, so these tables carry no merchant_id. Orders point to their member (`orders_order.member_id`).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow

__all__ = ["Member", "MemberStatus", "MemberSession", "MemberCode", "CodePurpose", "LoginMethod"]


class MemberStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # by an operator: cannot log in, every session ended


class CodePurpose(enum.StrEnum):
    SIGN_IN = "sign_in"  # log in, or sign up when the contact has no account yet
    ADD_CONTACT = "add_contact"  # a logged-in member proves a second contact (e-mail or phone)


class LoginMethod(enum.StrEnum):
    CODE = "code"  # proved the contact just now: may set a password without the old one
    PASSWORD = "password"  # noqa: S105 - a login method, not a secret


def _enum(kind: type[enum.Enum], length: int) -> SAEnum:
    return SAEnum(kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Member(Base):
    """A buyer account (会员账号): an e-mail address and/or a phone number (normalized as at checkout, each unique),
    optionally a password (argon2)."""

    __tablename__ = "members_member"
    __table_args__ = (CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="has_contact"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[MemberStatus] = mapped_column(_enum(MemberStatus, 16), default=MemberStatus.ACTIVE)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class MemberSession(Base):
    """A login, kept in the member's HttpOnly cookie (or an app's X-Member-Token header) until it expires or is
    revoked (log out, log out everywhere, a new password, the member disabled)."""

    __tablename__ = "members_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members_member.id"), index=True)
    method: Mapped[LoginMethod] = mapped_column(_enum(LoginMethod, 16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")


class MemberCode(Base):
    """A one-time code sent to a contact (e-mail or SMS through the notifications outbox). Stored only as an HMAC;
    expires, allows a few attempts, bound to its contact and purpose, usable once."""

    __tablename__ = "members_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    purpose: Mapped[CodePurpose] = mapped_column(_enum(CodePurpose, 16))
    contact_kind: Mapped[str] = mapped_column(String(8))  # email | phone
    contact: Mapped[str] = mapped_column(String(254), index=True)
    # ADD_CONTACT: the member who asked (only they can use it).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members_member.id"), nullable=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
