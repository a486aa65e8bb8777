"""Registering partners from the console — a reseller (its API secret shown on that answer only), a merchant, an
enterprise customer — and deleting a risk rule: through the same services as the admin API, every action audited,
a refused form says why on the page and changes nothing, two registrations racing for one code make exactly one."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from console.support import csrf_token, logged_in, post_form
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import Enterprise
from quanyi.errors import Conflict
from quanyi.ledger.models import CustomerAccount
from quanyi.merchants import service as merchants_service
from quanyi.merchants.models import Merchant
from quanyi.merchants.schemas import MerchantCreate
from quanyi.resellers import service as resellers_service
from quanyi.resellers.models import Reseller
from quanyi.risk import ruleset
from quanyi.risk.models import RiskRule
from quanyi.staff.models import StaffAuditEntry
from quanyi.suppliers import records
from quanyi.suppliers.models import Supplier
from quanyi.suppliers.schemas import SupplierCreate

RESELLER = {"code": "ACME-API", "name": "Acme API", "contact_email": "Ops@Acme.example",
            "rate_limit_per_minute": "120", "credit_limit": "50", "callback_url": "https://acme.example/cb"}
MERCHANT = {"code": "moon-shop", "name": "Moon shop", "commission": "12.5", "hold_days": "10",
            "contact_email": "moon@shop.example", "description": "Cards"}
ENTERPRISE = {"code": "BIGCO", "name": "Big Co", "credit_limit": "0", "invoice_title": "Big Co Ltd",
              "tax_number": "91310000MA1FL8XQ3B", "invoice_email": "ap@bigco.example"}


async def _count(shop, model) -> int:  # type: ignore[no-untyped-def]
    return int(await shop.scalar(select(func.count()).select_from(model)))


async def _audit(shop, action: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(StaffAuditEntry.summary)
                                           .where(StaffAuditEntry.action == action))).all())


async def _race(client, url: str, data: dict[str, str], page_url: str):  # type: ignore[no-untyped-def]
    """The same form sent twice at once (two tabs): both carry a valid token."""
    token = csrf_token((await client.get(page_url)).text)
    headers = {"Origin": "http://test"}
    return await asyncio.gather(*(client.post(url, data={**data, "csrf_token": token}, headers=headers)
                                  for _ in range(2)))


async def test_a_reseller_is_registered_and_its_secret_shown_once(shop):
    client = await logged_in(shop, "rona", roles=("owner",))
    listing = await client.get("/console/resellers?lang=en")
    assert 'data-testid="reseller-form"' in listing.text and "New reseller" in listing.text

    made = await post_form(client, "/console/resellers", RESELLER, page_url="/console/resellers")
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    secret = re.search(r'data-testid="new-secret">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    app_id = re.search(r'data-testid="new-app-id">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    async with shop.ctx.db.read_session() as session:
        reseller = await resellers_service.get_reseller(session=session, code="ACME-API")
        assert await resellers_service.current_secret(session=session, cipher=shop.ctx.cipher,
                                                      reseller=reseller) == secret
        account = await resellers_service.account_of(session=session, reseller=reseller)
    assert reseller.app_id == app_id and reseller.contact_email == "ops@acme.example"
    assert (reseller.rate_limit_per_minute, reseller.callback_url) == (120, "https://acme.example/cb")
    assert (account.balance_cents, account.credit_limit_cents) == (0, 5000)
    [summary] = await _audit(shop, "reseller_created")
    assert app_id in summary and secret not in summary
    again = await client.get("/console/resellers/ACME-API?lang=en")
    assert secret not in again.text and "<dd>Active</dd>" in again.text  # shown that once
    listing = await client.get("/console/resellers?lang=en")
    assert secret not in listing.text and ">Active</td>" in listing.text


async def test_a_refused_reseller_form_says_why_and_registers_nothing(shop):
    client = await logged_in(shop, "remy", roles=("owner",))
    for change, status, said in (({"contact_email": "not-an-address"}, 422, "contact_email"),
                                 ({"code": "-bad"}, 422, "code"),
                                 ({"callback_url": "ftp://x"}, 422, "callback_url"),
                                 ({"credit_limit": "-1"}, 422, "credit_limit"),
                                 ({"rate_limit_per_minute": "many"}, 422, "rate_limit_per_minute"),
                                 ({"name": ""}, 422, "name")):
        refused = await post_form(client, "/console/resellers", {**RESELLER, **change},
                                  page_url="/console/resellers")
        assert refused.status_code == status, (change, refused.status_code)
        assert 'data-testid="flash"' in refused.text and said in refused.text, change
        assert 'data-testid="new-secret"' not in refused.text
    assert await _count(shop, Reseller) == 0 and await _count(shop, CustomerAccount) == 0
    assert await _audit(shop, "reseller_created") == []

    first, second = await _race(client, "/console/resellers", RESELLER, "/console/resellers")
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert "already exists" in (first if first.status_code == 409 else second).text
    assert await _count(shop, Reseller) == 1 and len(await _audit(shop, "reseller_created")) == 1
    assert await shop.scalar(select(func.count()).select_from(CustomerAccount)
                             .where(CustomerAccount.code == "reseller:ACME-API")) == 1


async def test_a_merchant_is_admitted_from_the_console_and_a_refused_form_admits_nothing(shop):
    client = await logged_in(shop, "mona", roles=("owner",))
    before = await _count(shop, Merchant)
    for change, said in (({"code": "Moon Shop!"}, "code"), ({"commission": "101"}, "commission"),
                         ({"hold_days": "400"}, "hold_days"), ({"contact_phone": "call me"}, "contact_phone"),
                         ({"contact_email": "nope"}, "contact_email"),
                         ({"code": "withdrawals"}, "reserved"),
                         ({"name": ""}, "name")):
        refused = await post_form(client, "/console/merchants", {**MERCHANT, **change},
                                  page_url="/console/merchants")
        assert refused.status_code == 422, (change, refused.status_code)
        assert 'data-testid="flash"' in refused.text and said in refused.text, change
    assert await _count(shop, Merchant) == before and await _audit(shop, "merchant_created") == []

    first, second = await _race(client, "/console/merchants", MERCHANT, "/console/merchants")
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    made = first if first.status_code == 303 else second
    assert made.headers["location"].startswith("/console/merchants/moon-shop?m=created")
    page = await client.get(made.headers["location"] + "&lang=en")
    assert "Merchant moon-shop created" in page.text
    async with shop.ctx.db.read_session() as session:
        merchant = await merchants_service.get_merchant(session=session, code="moon-shop")
    assert (merchant.commission_bps, merchant.hold_days, merchant.contact_email) == (1250, 10, "moon@shop.example")
    assert await _count(shop, Merchant) == before + 1
    [summary] = await _audit(shop, "merchant_created")
    assert "1250 bps" in summary and "hold 10 days" in summary


async def test_an_enterprise_customer_is_registered_with_its_invoice_data(shop):
    client = await logged_in(shop, "enzo", roles=("owner",))
    for change, said in (({"tax_number": "123"}, "tax_number"), ({"code": "big co"}, "code"),
                         ({"invoice_email": "ap@"}, "invoice_email"), ({"credit_limit": "x"}, "credit_limit")):
        refused = await post_form(client, "/console/enterprises", {**ENTERPRISE, **change},
                                  page_url="/console/enterprises")
        assert refused.status_code == 422, (change, refused.status_code)
        assert 'data-testid="flash"' in refused.text and said in refused.text, change
    assert await _count(shop, Enterprise) == 0 and await _count(shop, CustomerAccount) == 0

    first, second = await _race(client, "/console/enterprises", ENTERPRISE, "/console/enterprises")
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    made = first if first.status_code == 303 else second
    assert made.headers["location"] == "/console/enterprises/BIGCO?m=created"
    assert "Enterprise customer created" in (await client.get(made.headers["location"] + "&lang=en")).text
    async with shop.ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code="BIGCO")
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
    assert (enterprise.invoice_title, enterprise.tax_number) == ("Big Co Ltd", "91310000MA1FL8XQ3B")
    assert (account.balance_cents, account.code) == (0, "enterprise:BIGCO")
    assert await _count(shop, Enterprise) == 1 and len(await _audit(shop, "enterprise_created")) == 1


async def test_two_supplier_forms_sent_at_once_register_one(shop):
    client = await logged_in(shop, "sid", permissions=("admin",))
    form = {"dialect": "quanyi", "code": "RACE", "name": "Race", "base_url": "https://race.example",
            "cred_app_id": "race", "cred_secret": "race-secret", "settlement_cycle": "daily", "currency": "CNY",
            "status": "active"}
    first, second = await _race(client, "/console/suppliers", form, "/console/suppliers/new")
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    assert await _count(shop, Supplier) == 1 and len(await _audit(shop, "supplier_created")) == 1


@pytest.mark.parametrize("kind", ["supplier", "merchant"])
async def test_a_registration_that_loses_the_race_for_its_code_is_refused_not_an_error(shop, kind):
    """Two transactions on two connections: the second checks for the code before the first commits (it sees
    nothing), then inserts; the unique index makes it wait and fail, and the service says "taken" (409), not 500."""
    db = shop.ctx.db

    async def register(session):  # type: ignore[no-untyped-def]
        if kind == "supplier":
            await records.create_supplier(session=session, cipher=shop.ctx.cipher, http=shop.ctx.http,
                                          data=SupplierCreate(code="TWIN", name="Twin", dialect="quanyi",
                                                              base_url="https://twin.example",
                                                              credentials={"app_id": "t", "secret": "t-secret"}))
        else:
            await merchants_service.create_merchant(session=session, data=MerchantCreate(code="twin", name="Twin"))

    first_in, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as session:
            await register(session)
            first_in.set()
            await second_started.wait()
            await asyncio.sleep(0.5)  # the second is past its check, waiting on the unique index

    async def second() -> str:
        await first_in.wait()
        second_started.set()
        try:
            async with db.transaction() as session:
                await register(session)
        except Conflict as exc:
            return exc.code
        return "registered twice"

    _, outcome = await asyncio.gather(first(), second())
    assert outcome == ("supplier_code_taken" if kind == "supplier" else "merchant_code_taken")
    model = Supplier if kind == "supplier" else Merchant
    column = Supplier.code if kind == "supplier" else Merchant.code
    assert await shop.scalar(select(func.count()).select_from(model).where(column.in_(["TWIN", "twin"]))) == 1


async def test_a_risk_rule_is_deleted_with_its_settings_kept_in_the_audit_log(shop):
    async with shop.ctx.db.transaction() as session:
        rule = await ruleset.create_rule(session=session, name="night owls", kind="velocity",
                                         params={"dimension": "ip", "window_seconds": 60, "max_count": 5},
                                         action="challenge", score=10, reason_code="NIGHT", stages=["order"])
        kept = await ruleset.create_rule(session=session, name="keep me", kind="velocity",
                                         params={"dimension": "ip", "window_seconds": 60, "max_count": 9},
                                         action="review", reason_code="KEEP", stages=["order"])
    client = await logged_in(shop, "rita", roles=("owner",))
    page = await client.get(f"/console/risk-rules/{rule.id}")
    assert 'data-testid="rule-delete"' in page.text and "data-confirm" in page.text
    assert 'data-testid="rule-delete"' not in (await client.get("/console/risk-rules/new")).text

    gone = await post_form(client, f"/console/risk-rules/{rule.id}/delete", page_url=f"/console/risk-rules/{rule.id}")
    assert gone.status_code == 303 and "m=deleted" in gone.headers["location"]
    assert "night owls" in (await client.get(gone.headers["location"] + "&lang=en")).text
    assert await shop.scalar(select(RiskRule.id).where(RiskRule.id == rule.id)) is None
    assert await shop.scalar(select(RiskRule.id).where(RiskRule.id == kept.id)) == kept.id
    [summary] = await _audit(shop, "risk_rule_deleted")
    assert "night owls: velocity challenge score=10 reason=NIGHT" in summary and '"max_count": 5' in summary
    again = await post_form(client, f"/console/risk-rules/{rule.id}/delete", page_url="/console/risk-rules")
    assert again.status_code == 404 and len(await _audit(shop, "risk_rule_deleted")) == 1
