"""Key rotation: every code stays readable, rotation is resumable, old keys can be dropped, no plaintext at rest."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from helpers import raw_database_bytes
from quanyi.context import build_cipher
from quanyi.enterprises import oauth
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import users as enterprise_users
from quanyi.enterprises.models import LoginApp
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.inventory.models import CardKey
from quanyi.inventory.rotation import RotationRefused, key_usage, rotate_keys
from quanyi.payments.models import GatewayConfig
from quanyi.resellers import service as resellers_service
from quanyi.staff import second_factor, totp
from quanyi.staff import service as staff_service
from quanyi.staff.models import StaffUser
from quanyi.suppliers.adapter import SupplierDialect
from quanyi.suppliers.credentials import open_credentials, seal_credentials
from quanyi.suppliers.models import Supplier

GATEWAY_AAD = b"payments-gateway-config:alipay"


def _with_ring(ctx, ring: str, active: str) -> CardKeyCipher:
    settings = ctx.settings.model_copy(update={"card_keys": SecretStr(ring),
                                               "card_key_active_id": active})
    return build_cipher(settings)


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


async def _add_supplier_and_gateway(ctx) -> tuple[bytes, str]:
    async with ctx.db.transaction() as session:
        sealed = seal_credentials(ctx.cipher, supplier_code="acme", credentials={"app_secret": "SUPPLIER-SECRET-42"})
        session.add(Supplier(code="acme", name="Acme", dialect=SupplierDialect.QUANYI, base_url="http://acme.test",
                             credentials_key_id=sealed.key_id, credentials_ciphertext=sealed.ciphertext))
        config = ctx.cipher.encrypt(json.dumps({"app_private_key": "GATEWAY-SECRET-42"}), fingerprint=GATEWAY_AAD)
        session.add(GatewayConfig(gateway="alipay", enabled=False, key_id=config.key_id, ciphertext=config.ciphertext))
        # A staff member with a second factor: its TOTP secret is sealed with the keyring too.
        user = await staff_service.create_staff(session=session, username="olga", password="correct horse battery")
        enrolment = second_factor.start_enrolment(cipher=ctx.cipher, staff_id=user.id, account="olga", issuer="shop")
        now = dt.datetime.now(dt.UTC)
        code = totp.totp(enrolment.secret, now.timestamp())
        await second_factor.confirm_enrolment(session=session, cipher=ctx.cipher, staff_id=user.id,
                                              sealed=enrolment.sealed, code=code, now=now)
        # A reseller of the open API: its signing secret is sealed with the keyring too.
        issued = await resellers_service.create_reseller(session=session, cipher=ctx.cipher, code="R1", name="R1",
                                                         contact_email="ops@r1.example")
        # An enterprise's WeCom app for its employees' sign-in: the app secret is sealed too.
        await enterprises_service.create_enterprise(session=session, code="ACME", name="Acme")
        await oauth.set_login_app(session=session, cipher=ctx.cipher, code="ACME", provider="wecom", app_id="ww1",
                                  agent_id="1000002", secret="WECOM-SECRET-42")
        # An enterprise portal user with a second factor: sealed like a staff member's.
        portal_user = await enterprise_users.create_user(session=session, code="ACME", username="pia",
                                                         password="correct horse battery", role="admin", actor="t")
        portal_enrolment = enterprise_users.SECOND_FACTOR.start_enrolment(cipher=ctx.cipher, owner_id=portal_user.id,
                                                                          account="acme/pia", issuer="shop")
        await enterprise_users.SECOND_FACTOR.confirm_enrolment(
            session=session, cipher=ctx.cipher, owner_id=portal_user.id, sealed=portal_enrolment.sealed,
            code=totp.totp(portal_enrolment.secret, now.timestamp()), now=now)
    return enrolment.secret, issued.secret


async def _all_codes(ctx, cipher: CardKeyCipher) -> dict[int, str]:
    async with ctx.db.read_session() as session:
        keys = (await session.scalars(select(CardKey))).all()
    return {k.id: cipher.decrypt(EncryptedCode(k.key_id, k.ciphertext), fingerprint=k.fingerprint) for k in keys}


async def test_rotation_to_a_new_key_keeps_every_code_readable_after_the_old_key_is_dropped(shop):
    ctx = shop.ctx
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 25)
    order = await shop.create_order(sku.id, quantity=2)
    await shop.pay(order)
    before_reveal = await shop.reveal(order)
    totp_secret, reseller_secret = await _add_supplier_and_gateway(ctx)
    old_ring = ctx.settings.card_keys.get_secret_value()
    raw = await raw_database_bytes(ctx.db)
    assert not any(code.encode() in raw for code in codes)

    new_key = _new_key()
    rotating = _with_ring(ctx, f"{old_ring},k2:{new_key}", "k2")
    report = await rotate_keys(db=ctx.db, cipher=rotating, batch_size=7)
    assert report.complete and report.rotated == {"card_keys": 25, "supplier_credentials": 1, "gateway_configs": 1,
                                                  "staff_second_factors": 1, "reseller_secrets": 1,
                                                  "enterprise_login_apps": 1, "enterprise_user_second_factors": 1}
    assert report.batches == 4  # 7 + 7 + 7 + 4

    async with ctx.db.read_session() as session:
        usage = await key_usage(session=session)
    assert usage == {"card_keys": {"k2": 25}, "supplier_credentials": {"k2": 1}, "gateway_configs": {"k2": 1},
                     "staff_second_factors": {"k2": 1}, "reseller_secrets": {"k2": 1},
                     "enterprise_login_apps": {"k2": 1}, "enterprise_user_second_factors": {"k2": 1}}

    # k1 removed from the ring: everything still opens, the buyer still sees the same codes, sales go on.
    only_new = _with_ring(ctx, f"k2:{new_key}", "k2")
    assert sorted((await _all_codes(ctx, only_new)).values()) == sorted(codes)
    async with ctx.db.read_session() as session:
        supplier = await session.scalar(select(Supplier))
        gateway = await session.scalar(select(GatewayConfig))
    assert open_credentials(only_new, supplier_code="acme", sealed=EncryptedCode(
        supplier.credentials_key_id, supplier.credentials_ciphertext)) == {"app_secret": "SUPPLIER-SECRET-42"}
    assert json.loads(only_new.decrypt(EncryptedCode(gateway.key_id, gateway.ciphertext), fingerprint=GATEWAY_AAD)
                      ) == {"app_private_key": "GATEWAY-SECRET-42"}
    async with ctx.db.read_session() as session:
        staff = await session.scalar(select(StaffUser).where(StaffUser.username == "olga"))
    assert second_factor.totp_secret(only_new, staff) == totp_secret
    async with ctx.db.read_session() as session:
        pia = await enterprise_users.get_user(session=session, code="ACME", username="pia")
    assert enterprise_users.SECOND_FACTOR.totp_secret(only_new, pia)  # opens under the new key alone
    async with ctx.db.read_session() as session:
        reseller = await resellers_service.get_reseller(session=session, code="R1")
        assert await resellers_service.current_secret(session=session, cipher=only_new,
                                                      reseller=reseller) == reseller_secret
        app = await session.scalar(select(LoginApp))
        assert oauth.secret_of(only_new, "ACME", app) == "WECOM-SECRET-42"
    ctx.cipher = only_new
    assert await shop.reveal(order) == before_reveal
    second = await shop.create_order(sku.id)
    await shop.pay(second)
    assert (await shop.reveal(second))[0]["code"] in codes

    raw = await raw_database_bytes(ctx.db)
    assert not any(code.encode() in raw for code in codes)
    assert b"SUPPLIER-SECRET-42" not in raw and b"GATEWAY-SECRET-42" not in raw
    assert reseller_secret.encode() not in raw


async def test_rotation_stopped_after_one_batch_leaves_everything_readable_and_a_rerun_finishes(shop):
    ctx = shop.ctx
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 25)
    rotating = _with_ring(ctx, f"{ctx.settings.card_keys.get_secret_value()},k2:{_new_key()}", "k2")

    first = await rotate_keys(db=ctx.db, cipher=rotating, batch_size=10, max_batches=1)
    assert not first.complete and first.rotated["card_keys"] == 10 and first.remaining["card_keys"] == 15
    async with ctx.db.read_session() as session:
        assert (await key_usage(session=session))["card_keys"] == {"k1": 15, "k2": 10}
    assert sorted((await _all_codes(ctx, rotating)).values()) == sorted(codes)  # mixed keys, all readable

    second = await rotate_keys(db=ctx.db, cipher=rotating, batch_size=10)
    assert second.complete and second.to_rotate["card_keys"] == 15 and second.rotated["card_keys"] == 15
    third = await rotate_keys(db=ctx.db, cipher=rotating)
    assert third.complete and third.rotated["card_keys"] == 0


async def test_dry_run_counts_and_changes_nothing(shop):
    ctx = shop.ctx
    sku = await shop.make_sku()
    await shop.stock(sku, 5)
    rotating = _with_ring(ctx, f"{ctx.settings.card_keys.get_secret_value()},k2:{_new_key()}", "k2")
    report = await rotate_keys(db=ctx.db, cipher=rotating, dry_run=True)
    assert report.to_rotate["card_keys"] == 5 and report.remaining["card_keys"] == 5 and not report.complete
    async with ctx.db.read_session() as session:
        assert (await key_usage(session=session))["card_keys"] == {"k1": 5}


async def test_rotation_refuses_when_rows_use_a_key_missing_from_the_ring(shop):
    ctx = shop.ctx
    sku = await shop.make_sku()
    await shop.stock(sku, 3)
    only_new = _with_ring(ctx, f"k2:{_new_key()}", "k2")
    with pytest.raises(RotationRefused, match="k1"):
        await rotate_keys(db=ctx.db, cipher=only_new)
    async with ctx.db.read_session() as session:
        assert (await key_usage(session=session))["card_keys"] == {"k1": 3}


async def test_rotation_skips_rows_a_live_order_holds_instead_of_waiting(shop, backend):
    if backend != "postgresql":
        pytest.skip("row locks: SQLite serializes whole write transactions instead")
    ctx = shop.ctx
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 6)
    rotating = _with_ring(ctx, f"{ctx.settings.card_keys.get_secret_value()},k2:{_new_key()}", "k2")
    async with ctx.db.transaction() as session:
        held = await session.scalar(select(CardKey.id).order_by(CardKey.id).limit(1).with_for_update())
        # Another connection rotates while this transaction (a checkout, say) holds the row lock.
        report = await asyncio.wait_for(rotate_keys(db=ctx.db, cipher=rotating, batch_size=2), timeout=120)
    assert report.rotated["card_keys"] == 5 and report.remaining["card_keys"] == 1 and not report.complete
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(CardKey.key_id).where(CardKey.id == held)) == "k1"
    rerun = await rotate_keys(db=ctx.db, cipher=rotating)
    assert rerun.complete and rerun.rotated["card_keys"] == 1
    assert sorted((await _all_codes(ctx, rotating)).values()) == sorted(codes)
