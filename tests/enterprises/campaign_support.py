"""Campaign test helpers: a funded campaign through the admin API, and an employee's phone on the claim page."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import httpx

from enterprises.support import add_enterprise
from helpers import Shop, page_csrf_token

EMPLOYEES = [{"employee_no": "E001", "name": "张伟", "phone": "13800000001", "wecom_userid": "zhangwei",
              "dingtalk_union_id": "union-zw"},
             {"employee_no": "E002", "name": "李娜", "phone": "13800000002", "wecom_userid": "lina"},
             {"employee_no": "E003", "name": "Wang Fang", "email": "wf@acme.example"}]


@dataclass
class Funded:
    campaign: dict[str, Any]
    codes: dict[str, str]  # employee_no -> claim code
    skus: dict[str, Any]

    @property
    def no(self) -> str:
        return self.campaign["campaign_no"]  # type: ignore[no-any-return]


async def funded_campaign(shop: Shop, *, balance: int = 100_000, budget: int | None = 10_000, activate: bool = True,
                          employees: list[dict[str, Any]] | None = None, stock: int = 10, **extra: Any) -> Funded:
    small = await shop.make_sku(code="GIFT-50", price_cents=5_000)
    big = await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await shop.stock(small, stock)
    await shop.stock(big, stock)
    await add_enterprise(shop, top_up_cents=balance)
    now = dt.datetime.now(dt.UTC)
    body = {"name": "2026 新年福利", "name_en": "New Year 2026 benefits", "greeting": "新年快乐！",
            "sku_codes": ["GIFT-50", "GIFT-100"], "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=7)).isoformat(), **extra}
    if budget is not None:
        body["budget_per_employee_cents"] = budget
    created = await shop.client.post("/api/admin/enterprises/ACME/campaigns", headers=shop.admin, json=body)
    assert created.status_code == 201, created.text
    no = created.json()["campaign_no"]
    added = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/employees", headers=shop.admin,
                                   json={"employees": employees or EMPLOYEES})
    assert added.status_code == 201, added.text
    codes = {e["employee_no"]: e["claim_code"] for e in added.json()}
    campaign = created.json()
    if activate:
        activated = await shop.client.post(f"/api/admin/enterprises/ACME/campaigns/{no}/activate",
                                           headers=shop.admin)
        assert activated.status_code == 200, activated.text
        campaign = activated.json()
    return Funded(campaign, codes, {"GIFT-50": small, "GIFT-100": big})


def phone(shop: Shop) -> httpx.AsyncClient:
    """Another browser (its own cookies) on the same shop."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.client._transport.app),  # type: ignore[attr-defined]  # noqa: SLF001
                             base_url="http://test")


async def sign_in(client: httpx.AsyncClient, no: str, code: str) -> httpx.Response:
    page = await client.get(f"/claim/{no}")
    assert page.status_code == 200, page.text
    return await client.post(f"/claim/{no}/login", data={"code": code, "csrf_token": page_csrf_token(page.text)})


async def choose(client: httpx.AsyncClient, no: str, sku: str, quantity: int | str = 1) -> httpx.Response:
    page = await client.get(f"/claim/{no}")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)  # every page has it, forms or not
    assert token is not None
    return await client.post(f"/claim/{no}", data={"sku": sku, "quantity": str(quantity), "csrf_token": token[1]})


def shown_codes(html: str) -> list[str]:
    return re.findall(r'data-testid="code-value">([^<]+)<', html)
