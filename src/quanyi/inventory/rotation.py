"""Encryption key rotation (密钥轮换): re-encrypt everything sealed with the keyring under the active key.

Covers card keys, supplier API credentials, payment gateway configurations, staff second-factor secrets and
reseller API secrets.
Card keys go in batches, each its own transaction, taking rows with FOR UPDATE SKIP LOCKED so a live shop
keeps selling (a row an order holds right now is skipped and picked up by the next pass or run). Every row
changes key id and ciphertext in one UPDATE, so a crash leaves each row readable under its old or its new key,
and running again simply continues with the rows still under an old key. When no row uses an old key any more,
that key can be removed from QUANYI_CARD_KEYS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database
from quanyi.enterprises import users as enterprise_users
from quanyi.enterprises.models import Enterprise, EnterpriseUser, LoginApp
from quanyi.enterprises.oauth import reseal_login_app
from quanyi.errors import DomainError
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.inventory.models import CardKey
from quanyi.payments.configuration import reseal_gateway_config
from quanyi.payments.models import GatewayConfig
from quanyi.resellers.models import Reseller, ResellerSecret
from quanyi.resellers.service import reseal_secret as reseal_reseller_secret
from quanyi.staff.models import StaffUser
from quanyi.staff.second_factor import reseal_secret
from quanyi.suppliers.credentials import CredentialsUnreadable, reseal_credentials
from quanyi.suppliers.models import Supplier

__all__ = ["RotationRefused", "RotationReport", "key_usage", "rotate_keys", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 500
_PASSES = 3  # extra passes over rows skipped because an order held them
_PASS_PAUSE_SECONDS = 0.5

ProgressCallback = Callable[[int, int], None]

# What the keyring seals: table label -> (key id column, row count query source).
_SEALED = {
    "card_keys": CardKey.key_id,
    "supplier_credentials": Supplier.credentials_key_id,
    "gateway_configs": GatewayConfig.key_id,
    "staff_second_factors": StaffUser.totp_key_id,  # NULL: no second factor, nothing sealed
    "reseller_secrets": ResellerSecret.key_id,
    "enterprise_login_apps": LoginApp.key_id,  # enterprises' WeCom / DingTalk app secrets
    "enterprise_user_second_factors": EnterpriseUser.totp_key_id,  # portal users' TOTP secrets (NULL: none)
}


class RotationRefused(DomainError):
    code = "rotation_refused"


@dataclass
class RotationReport:
    active_key_id: str
    dry_run: bool
    # Rows under an old key before the run, per table.
    to_rotate: dict[str, int] = field(default_factory=dict)
    rotated: dict[str, int] = field(default_factory=dict)
    # Rows still under an old key afterwards (held by an order during every pass, or stopped early).
    remaining: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def complete(self) -> bool:
        return not self.dry_run and not any(self.remaining.values())


async def key_usage(*, session: AsyncSession) -> dict[str, dict[str, int]]:
    """Rows per key id for everything the keyring seals: {"card_keys": {"k1": 10, ...}, ...}."""
    usage: dict[str, dict[str, int]] = {}
    for label, column in _SEALED.items():
        rows = await session.execute(select(column, func.count()).where(column.is_not(None)).group_by(column))
        usage[label] = {key_id: int(count) for key_id, count in rows.all()}
    return usage


async def _stale_counts(db: Database, active: str) -> dict[str, int]:
    async with db.read_session() as session:
        usage = await key_usage(session=session)
    return {label: sum(n for key_id, n in ids.items() if key_id != active) for label, ids in usage.items()}


async def _rotate_small_tables(db: Database, cipher: CardKeyCipher) -> dict[str, int]:
    """Supplier credentials, gateway configs, staff second factors, reseller secrets: few rows, one transaction."""
    active = cipher.active_key_id
    counts = {"supplier_credentials": 0, "gateway_configs": 0, "staff_second_factors": 0, "reseller_secrets": 0,
              "enterprise_login_apps": 0, "enterprise_user_second_factors": 0}
    async with db.transaction() as session:
        suppliers = (await session.scalars(
            select(Supplier).where(Supplier.credentials_key_id != active).order_by(Supplier.id).with_for_update()
        )).all()
        for supplier in suppliers:
            sealed = reseal_credentials(cipher, supplier_code=supplier.code, sealed=EncryptedCode(
                supplier.credentials_key_id, supplier.credentials_ciphertext))
            # updated_at kept: re-encryption is not an edit of the supplier.
            await session.execute(update(Supplier).where(Supplier.id == supplier.id).values(
                credentials_key_id=sealed.key_id, credentials_ciphertext=sealed.ciphertext,
                updated_at=supplier.updated_at))
            counts["supplier_credentials"] += 1
        configs = (await session.scalars(
            select(GatewayConfig).where(GatewayConfig.key_id != active).order_by(GatewayConfig.id).with_for_update()
        )).all()
        for config in configs:
            sealed = reseal_gateway_config(cipher, name=config.gateway,
                                           sealed=EncryptedCode(config.key_id, config.ciphertext))
            await session.execute(update(GatewayConfig).where(GatewayConfig.id == config.id).values(
                key_id=sealed.key_id, ciphertext=sealed.ciphertext, updated_at=config.updated_at))
            counts["gateway_configs"] += 1
        staff = (await session.scalars(
            select(StaffUser).where(StaffUser.totp_key_id != active).order_by(StaffUser.id).with_for_update()
        )).all()
        for user in staff:
            sealed = reseal_secret(cipher, user)
            await session.execute(update(StaffUser).where(StaffUser.id == user.id).values(
                totp_key_id=sealed.key_id, totp_ciphertext=sealed.ciphertext))
            counts["staff_second_factors"] += 1
        secrets = (await session.execute(
            select(ResellerSecret, Reseller.app_id).join(Reseller, Reseller.id == ResellerSecret.reseller_id)
            .where(ResellerSecret.key_id != active).order_by(ResellerSecret.id).with_for_update(of=ResellerSecret)
        )).all()
        for secret, app_id in secrets:
            sealed = reseal_reseller_secret(cipher, app_id=app_id,
                                            sealed=EncryptedCode(secret.key_id, secret.ciphertext))
            await session.execute(update(ResellerSecret).where(ResellerSecret.id == secret.id).values(
                key_id=sealed.key_id, ciphertext=sealed.ciphertext))
            counts["reseller_secrets"] += 1
        apps = (await session.execute(
            select(LoginApp, Enterprise.code).join(Enterprise, Enterprise.id == LoginApp.enterprise_id)
            .where(LoginApp.key_id != active).order_by(LoginApp.id).with_for_update(of=LoginApp))).all()
        for app, enterprise_code in apps:
            sealed = reseal_login_app(cipher, enterprise_code=enterprise_code, provider=app.provider,
                                      sealed=EncryptedCode(app.key_id, app.ciphertext))
            await session.execute(update(LoginApp).where(LoginApp.id == app.id).values(
                key_id=sealed.key_id, ciphertext=sealed.ciphertext))
            counts["enterprise_login_apps"] += 1
        portal_users = (await session.scalars(
            select(EnterpriseUser).where(EnterpriseUser.totp_key_id != active).order_by(EnterpriseUser.id)
            .with_for_update())).all()
        for portal_user in portal_users:
            sealed = enterprise_users.SECOND_FACTOR.reseal_secret(cipher, portal_user)
            await session.execute(update(EnterpriseUser).where(EnterpriseUser.id == portal_user.id).values(
                totp_key_id=sealed.key_id, totp_ciphertext=sealed.ciphertext))
            counts["enterprise_user_second_factors"] += 1
    return counts


async def _rotate_card_key_batch(db: Database, cipher: CardKeyCipher, *, after_id: int, size: int) -> tuple[int, int]:
    """Re-encrypt up to `size` card keys with id > after_id; (rows done, last id seen) — (0, after_id) at the end."""
    active = cipher.active_key_id
    async with db.transaction() as session:
        # SKIP LOCKED: rows an order is reserving or delivering right now are left for a later pass.
        rows = (await session.execute(
            select(CardKey.id, CardKey.key_id, CardKey.ciphertext, CardKey.fingerprint)
            .where(CardKey.key_id != active, CardKey.id > after_id)
            .order_by(CardKey.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )).all()
        if not rows:
            return 0, after_id
        updates = []
        for key_pk, key_id, ciphertext, fingerprint in rows:
            sealed = cipher.reencrypt(EncryptedCode(key_id, ciphertext), fingerprint=fingerprint)
            updates.append({"id": key_pk, "key_id": sealed.key_id, "ciphertext": sealed.ciphertext})
        # Bulk UPDATE by primary key: key id and ciphertext change together in each row.
        await session.execute(update(CardKey), updates)
        return len(rows), rows[-1][0]


async def rotate_keys(
    *,
    db: Database,
    cipher: CardKeyCipher,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    max_batches: int | None = None,
    progress: ProgressCallback | None = None,
) -> RotationReport:
    """Re-encrypt every row sealed under a key other than the active one. Resumable; see the module doc.

    Refuses (changing nothing) when the active key is not in the keyring or some row uses a key the ring
    no longer holds. `max_batches` stops after that many card-key batches (the rest stays for a rerun)."""
    active = cipher.active_key_id
    if active not in cipher.key_ids:
        raise RotationRefused(f"the active key {active!r} is not in the keyring")
    if batch_size < 1:
        raise RotationRefused("batch size must be at least 1")
    async with db.read_session() as session:
        usage = await key_usage(session=session)
    missing = sorted({key_id for ids in usage.values() for key_id in ids} - cipher.key_ids)
    if missing:
        raise RotationRefused(
            f"rows are encrypted with key(s) {', '.join(missing)} which the keyring does not hold; add them back "
            "to QUANYI_CARD_KEYS before rotating")
    report = RotationReport(active_key_id=active, dry_run=dry_run)
    report.to_rotate = {label: sum(n for key_id, n in ids.items() if key_id != active) for label, ids in usage.items()}
    if dry_run:
        report.remaining = dict(report.to_rotate)
        return report

    try:
        report.rotated = await _rotate_small_tables(db, cipher)
    except (CredentialsUnreadable, CardKeyDecryptionError) as exc:
        raise RotationRefused(f"a stored secret cannot be decrypted, nothing of it was changed: {exc}") from None

    total, done = report.to_rotate["card_keys"], 0
    if progress is not None:
        progress(0, total)
    stopped = False
    for attempt in range(_PASSES):
        after_id = 0
        while True:
            try:
                count, after_id = await _rotate_card_key_batch(db, cipher, after_id=after_id, size=batch_size)
            except CardKeyDecryptionError as exc:
                raise RotationRefused(f"card key after id {after_id} cannot be decrypted (its batch was left "
                                      f"unchanged): {exc}") from None
            if not count:
                break
            done += count
            report.batches += 1
            if progress is not None:
                progress(min(done, total), max(total, done))
            if max_batches is not None and report.batches >= max_batches:
                stopped = True
                break
        if stopped or not (await _stale_counts(db, active))["card_keys"]:
            break
        if attempt + 1 < _PASSES:
            await asyncio.sleep(_PASS_PAUSE_SECONDS)
    report.rotated["card_keys"] = done
    report.remaining = await _stale_counts(db, active)
    return report
