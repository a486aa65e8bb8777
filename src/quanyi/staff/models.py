"""Staff tables: accounts with their roles and permissions, second factors, login sessions (only a hash of
each token is stored) and the audit log of what staff did."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.second_factor import TotpColumns

__all__ = ["StaffUser", "StaffSession", "StaffRecoveryCode", "StaffAuditEntry", "API_CHANNEL", "CONSOLE_CHANNEL"]

BigId = BigInteger().with_variant(Integer(), "sqlite")
API_CHANNEL = "api"  # a bearer token from POST /api/staff/login
CONSOLE_CHANNEL = "console"  # the web console's session cookie


class StaffUser(TotpColumns, Base):
    """A staff member (员工) who logs in to the admin API and the console with a username and password."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # Space-separated permission names (see staff.permissions); "admin" holds every permission.
    permissions: Mapped[str] = mapped_column(String(500), default="")
    # Space-separated role names (see staff.roles): bundles of permissions added to the ones above.
    roles: Mapped[str] = mapped_column(String(500), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The merchant this staff member works for (商户员工): they see only its objects. None: platform staff,
    # who see every merchant's.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants_merchant.id"), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Second factor (TOTP, RFC 6238): the columns of quanyi.second_factor.TotpColumns.


class StaffSession(Base):
    """A login: the token's SHA-256 (a stolen database does not yield usable tokens), until it expires.

    `channel` keeps API bearer tokens and console cookies apart: neither works as the other. A console
    session also ends after `last_seen_at` is idle too long, and one that still waits for the second
    factor opens nothing but the second-factor page."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    channel: Mapped[str] = mapped_column(String(16), default=API_CHANNEL, server_default=API_CHANNEL)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class StaffRecoveryCode(Base):
    """A one-time recovery code (恢复码) for a staff member who lost their authenticator: its SHA-256 only
    (80 random bits each, so a hash cannot be reversed by guessing)."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffAuditEntry(Base):
    """One thing a staff member did (操作日志): who, what, to which object, when, from where."""

    __tablename__ = "staff_audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
