"""Registering a supplier from the console: the dialect's credential fields, sealed at once and never drawn back
(not on the page, not in a refused form, not in the audit log); a refused form changes nothing; a merchant's staff
add their own merchant's supplier only; through the same service as the admin API."""

from __future__ import annotations

from sqlalchemy import func, select

from console.support import logged_in, post_form
from quanyi.staff.models import StaffAuditEntry
from quanyi.suppliers import records
from quanyi.suppliers.models import SettlementCycle, Supplier

SECRET = "s3cr3t-" + "k" * 30
GOOD = {"dialect": "card_platform", "code": "kami-one", "name": "Kami One", "base_url": "https://kami.example/api/",
        "cred_customer_id": "C-1001", "cred_secret": SECRET, "settlement_cycle": "weekly", "currency": "CNY",
        "credit_limit": "1500.50", "timeout_ms": "8000", "status": "paused"}


async def _count(shop) -> int:  # type: ignore[no-untyped-def]
    return int(await shop.scalar(select(func.count()).select_from(Supplier)))


async def _audit(shop, action: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(StaffAuditEntry.summary)
                                           .where(StaffAuditEntry.action == action))).all())


async def test_a_supplier_is_created_with_its_dialects_credentials_sealed_and_never_shown(shop):
    client = await logged_in(shop, "sophie", permissions=("admin",))
    form = await client.get("/console/suppliers/new?dialect=card_platform&lang=en")
    assert form.status_code == 200
    assert 'name="cred_customer_id"' in form.text and 'type="password" name="cred_secret"' in form.text
    assert 'name="cred_app_id"' not in form.text  # the quanyi dialect's field, not this one's
    assert 'name="merchant_code"' in form.text  # platform staff may name a merchant
    other = await client.get("/console/suppliers/new?dialect=async_recharge")
    assert 'name="cred_merchant_id"' in other.text
    unknown = await client.get("/console/suppliers/new?dialect=nope")
    assert 'name="cred_app_id"' in unknown.text  # falls back to the quanyi protocol

    made = await post_form(client, "/console/suppliers", GOOD, page_url="/console/suppliers/new")
    assert made.status_code == 303 and made.headers["location"] == "/console/suppliers/KAMI-ONE?m=created"
    page = await client.get(made.headers["location"] + "&lang=en")
    assert page.status_code == 200 and "Supplier created" in page.text and "customer_id, secret" in page.text
    assert SECRET not in page.text and "C-1001" not in page.text
    async with shop.ctx.db.read_session() as session:
        supplier = await records.get_supplier_by_code(session=session, code="KAMI-ONE")
        assert supplier.merchant_id == 1 and supplier.base_url == "https://kami.example/api"
        assert (supplier.settlement_cycle, supplier.credit_limit_cents, supplier.timeout_ms) == \
            (SettlementCycle.WEEKLY, 150_050, 8000)
        assert supplier.status.value == "paused" and supplier.dialect.value == "card_platform"
        assert SECRET.encode() not in supplier.credentials_ciphertext
        assert records._open(supplier, shop.ctx.cipher) == {"customer_id": "C-1001", "secret": SECRET}  # noqa: SLF001
    [summary] = await _audit(shop, "supplier_created")
    assert "customer_id, secret (sealed)" in summary and SECRET not in summary and "C-1001" not in summary
    listing = await client.get("/console/suppliers")
    assert "KAMI-ONE" in listing.text and 'data-testid="new-supplier"' in listing.text


async def test_a_refused_supplier_form_says_why_changes_nothing_and_never_echoes_the_secret(shop):
    client = await logged_in(shop, "sam", permissions=("admin",))
    bad_forms = [
        ({"base_url": "ftp://kami.example"}, 422, "base_url"),
        ({"cred_secret": ""}, 422, "必填（接口凭据 secret）"),  # said in the console's Chinese
        ({"code": "bad code!"}, 422, "code"),
        ({"code": ""}, 422, "code"),
        ({"dialect": "soap"}, 422, "dialect"),
        ({"currency": "XXX"}, 422, "currency"),
        ({"credit_limit": "-5"}, 422, "credit_limit"),
        ({"credit_limit": "1.234"}, 422, "credit_limit"),
        ({"timeout_ms": "5"}, 422, "timeout_ms"),
        ({"settlement_cycle": "monthly"}, 422, "settlement_cycle"),
        ({"merchant_code": "no-such-merchant"}, 404, "no-such-merchant"),
    ]
    for change, status, said in bad_forms:
        refused = await post_form(client, "/console/suppliers", {**GOOD, **change},
                                  page_url="/console/suppliers/new")
        assert refused.status_code == status, (change, refused.status_code)
        assert 'data-testid="flash"' in refused.text and said in refused.text, change
        assert SECRET not in refused.text, change  # the secret is never drawn back into the form
    assert await _count(shop) == 0 and await _audit(shop, "supplier_created") == []

    assert (await post_form(client, "/console/suppliers", GOOD, page_url="/console/suppliers/new")).status_code == 303
    taken = await post_form(client, "/console/suppliers", {**GOOD, "code": "KAMI-ONE", "name": "Other"},
                            page_url="/console/suppliers/new")
    assert taken.status_code == 409 and "供应商编码 KAMI-ONE 已被使用" in taken.text  # said.py, in Chinese
    assert await _count(shop) == 1 and len(await _audit(shop, "supplier_created")) == 1
    forged = await client.post("/console/suppliers", data=GOOD, headers={"Origin": "http://test"})
    assert forged.status_code == 403 and await _count(shop) == 1  # no form token: refused


async def test_platform_staff_register_a_merchants_supplier_and_its_staff_only_their_own(shop):
    from console.support import console_login
    from merchants.support import admit
    from quanyi.staff import service as staff_service

    acme = await admit(shop, "acme")
    other = await admit(shop, "other")
    client = await logged_in(shop, "plato", permissions=("admin",))
    made = await post_form(client, "/console/suppliers", {**GOOD, "merchant_code": "acme"},
                           page_url="/console/suppliers/new")
    assert made.status_code == 303
    assert await shop.scalar(select(Supplier.merchant_id).where(Supplier.code == "KAMI-ONE")) == acme.merchant_id

    async with shop.ctx.db.transaction() as session:
        await staff_service.create_staff(session=session, username="acme-buyer", password="correct horse battery",
                                         roles=("merchant_operator",), merchant_id=acme.merchant_id)
        await staff_service.create_staff(session=session, username="acme-boss", password="correct horse battery",
                                         roles=("merchant_owner",), merchant_id=acme.merchant_id)
    shop.client.cookies.clear()  # log the platform staff member out
    # An operator runs the merchant's suppliers (suppliers.manage) but, as in the admin API, registering one or
    # changing its endpoint, credit and credentials needs admin: their owner's.
    assert (await console_login(shop.client, "acme-buyer")).status_code == 303
    listing = await shop.client.get("/console/suppliers")
    assert listing.status_code == 200 and "KAMI-ONE" in listing.text
    assert 'data-testid="new-supplier"' not in listing.text
    page = await shop.client.get("/console/suppliers/KAMI-ONE")
    assert page.status_code == 200 and 'data-testid="settings-form"' not in page.text
    assert (await shop.client.get("/console/suppliers/new")).status_code == 403
    refused = await post_form(shop.client, "/console/suppliers", {**GOOD, "code": "BY-OPERATOR"},
                              page_url="/console/suppliers")
    assert refused.status_code == 403 and await shop.scalar(select(Supplier.id).where(Supplier.code == "BY-OPERATOR")) \
        is None
    shop.client.cookies.clear()
    assert (await console_login(shop.client, "acme-boss")).status_code == 303
    form = await shop.client.get("/console/suppliers/new")
    assert form.status_code == 200 and 'name="merchant_code"' not in form.text
    own = await post_form(shop.client, "/console/suppliers", {**GOOD, "code": "ACME-UP", "merchant_code": "other"},
                          page_url="/console/suppliers/new")
    assert own.status_code == 303  # the merchant named is ignored: always the staff member's own
    assert await shop.scalar(select(Supplier.merchant_id).where(Supplier.code == "ACME-UP")) == acme.merchant_id
    assert await shop.scalar(select(func.count()).select_from(Supplier)
                             .where(Supplier.merchant_id == other.merchant_id)) == 0
    assert (await shop.client.get("/console/suppliers/KAMI-ONE")).status_code == 200  # acme's, made by the platform


async def test_a_suppliers_endpoint_terms_and_credentials_change_and_blank_credentials_are_kept(shop):
    client = await logged_in(shop, "sven", permissions=("admin",))
    assert (await post_form(client, "/console/suppliers", GOOD, page_url="/console/suppliers/new")).status_code == 303
    page = await client.get("/console/suppliers/KAMI-ONE")
    assert 'data-testid="settings-form"' in page.text and 'name="cred_customer_id"' in page.text
    assert 'value="1500.50"' in page.text and SECRET not in page.text
    settings = {"name": "Kami One Ltd", "base_url": "https://api2.kami.example", "timeout_ms": "3000",
                "credit_limit": "99", "settlement_cycle": "per_order"}

    async def stored():  # type: ignore[no-untyped-def]
        async with shop.ctx.db.read_session() as session:
            supplier = await records.get_supplier_by_code(session=session, code="KAMI-ONE")
            return (supplier.name, supplier.base_url, supplier.timeout_ms, supplier.credit_limit_cents,
                    supplier.settlement_cycle.value, records._open(supplier, shop.ctx.cipher))  # noqa: SLF001

    original = await stored()
    for change, said in (({"cred_secret": "only-the-secret"}, "缺少：customer_id"),
                         ({"base_url": "gopher://x"}, "base_url"), ({"timeout_ms": "1"}, "timeout_ms"),
                         ({"credit_limit": "-1"}, "credit_limit"),
                         ({"settlement_cycle": "hourly"}, "settlement_cycle")):
        refused = await post_form(client, "/console/suppliers/KAMI-ONE/settings", {**settings, **change},
                                  page_url="/console/suppliers/KAMI-ONE")
        assert refused.status_code == 422, (change, refused.status_code)
        assert said in refused.text and "only-the-secret" not in refused.text, change
    assert await stored() == original and await _audit(shop, "supplier_updated") == []

    kept = await post_form(client, "/console/suppliers/KAMI-ONE/settings", settings,
                           page_url="/console/suppliers/KAMI-ONE")
    assert kept.status_code == 303 and "m=settings_saved" in kept.headers["location"]
    assert await stored() == ("Kami One Ltd", "https://api2.kami.example", 3000, 9900, "per_order",
                              {"customer_id": "C-1001", "secret": SECRET})  # blank credentials: kept
    new_secret = "n3w-" + "q" * 30
    replaced = await post_form(client, "/console/suppliers/KAMI-ONE/settings",
                               {**settings, "cred_customer_id": "C-2002", "cred_secret": new_secret},
                               page_url="/console/suppliers/KAMI-ONE")
    assert replaced.status_code == 303
    assert (await stored())[-1] == {"customer_id": "C-2002", "secret": new_secret}
    first, second = await _audit(shop, "supplier_updated")
    assert "base_url: https://kami.example/api -> https://api2.kami.example" in first and "credentials" not in first
    assert second == "credentials customer_id, secret replaced (sealed)"
    assert new_secret not in (await client.get("/console/suppliers/KAMI-ONE")).text
