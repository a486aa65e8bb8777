"""`make demo` shows every business mode: besides the card-key catalog, a 循环卡密 SKU, a 自选卡密 SKU, a 手动发货 SKU
and an enterprise customer with a balance, tier prices and a live campaign, each bought or used through the real
HTTP API. Loading twice adds nothing; a shop loaded before these parts existed gets them on the next run."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from quanyi import demo, demo_modes
from quanyi.catalog.models import Category, DeliveryType, Product, Sku
from quanyi.enterprises import campaigns, pricing
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import CampaignEmployee
from quanyi.inventory.models import CardKey, ImportBatch, SharedCode
from quanyi.ledger.models import LedgerPosting

_CHINESE = re.compile(r"[\u4e00-\u9fff]")


async def _counts(shop) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return tuple([int(await shop.scalar(select(func.count()).select_from(model)))
                  for model in (Product, Sku, CardKey, SharedCode, CampaignEmployee)])


async def _sku(shop, code: str) -> Sku:  # type: ignore[no-untyped-def]
    return await shop.scalar(select(Sku).where(Sku.code == code))  # type: ignore[no-any-return]


async def test_the_demo_has_every_mode_and_loading_again_adds_nothing(shop):
    said: list[str] = []
    assert await demo.load_demo(shop.ctx, progress=said.append) is True
    assert any("/claim/BC" in line and "E001 " in line for line in said)  # the claim codes, printed once
    loaded = await _counts(shop)
    # What an operator of a Chinese shop reads in the console: no English demo names, sources or notes.
    async with shop.ctx.db.read_session() as session:
        for column in (Category.name, Product.name, Product.description,
                       # the demo's own import batches (a shared code's batch is named by the inventory service)
                       select(ImportBatch.source_name).where(ImportBatch.source_name != "shared code"),
                       select(LedgerPosting.memo).where(LedgerPosting.kind == "customer_top_up")):
            query = column if not hasattr(column, "key") else select(column)
            shown = set((await session.scalars(query)).all())
            assert shown and all(_CHINESE.search(text) for text in shown), shown
    assert await demo.load_demo(shop.ctx) is False
    assert await _counts(shop) == loaded

    shared = await _sku(shop, demo_modes.SHARED_SKU)
    assert shared.delivery_type is DeliveryType.SHARED_CODE
    orders = [await shop.create_order(shared.id, contact=f"fan{i}@example.com") for i in range(2)]
    for order in orders:
        await shop.pay(order)
    first, second = [[k["code"] for k in await shop.reveal(order)] for order in orders]
    assert first == second and first[0].startswith("STARTRIAL-")  # one code, sold to both

    picked = await _sku(shop, demo_modes.PICK_SKU)
    keys = (await shop.client.get(f"/api/catalog/skus/{picked.id}/pickable-keys")).json()
    assert [k["label"] for k in keys] == [label for label, _ in demo_modes.PICK_ACCOUNTS]
    order = await shop.create_order(picked.id, card_key_id=keys[2]["id"])
    assert order["total_cents"] == 3900 + 500  # the pick surcharge
    await shop.pay(order)
    assert (await shop.get_order(order))["picked_card_key_label"] == keys[2]["label"]
    assert len(await shop.reveal(order)) == 1

    manual = await _sku(shop, demo_modes.MANUAL_SKU)
    order = await shop.create_order(manual.id)
    await shop.pay(order)
    assert (await shop.get_order(order))["status"] == "paid"  # waiting for staff to deliver by hand

    async with shop.ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code=demo_modes.DEMO_ENTERPRISE)
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
        prices = {sku.code: tiers for sku, tiers in await pricing.price_list(session=session, code=enterprise.code)}
        [campaign] = await campaigns.list_campaigns(session=session, code=enterprise.code)
        report = await campaigns.report(session=session, campaign=campaign)
    assert prices["STAR-VIP-1M"][0] == pricing.Tier(1, 1880) and len(prices["CLOUD-MUSIC-1M"]) == 2
    assert campaign.status == "active" and campaign.funded_cents == 3 * 1880
    assert account.balance_cents == 2_000_000 - 3 * 1880  # paid in, less the campaign's budget
    assert (report.employees, report.claimed, report.balance_cents) == (3, 0, 3 * 1880)


async def test_a_shop_loaded_before_the_modes_existed_gets_them_once(shop):
    assert await demo._load_catalog(shop.ctx, None) is True  # noqa: SLF001 - the old demo, as shops have it
    before = await _counts(shop)
    assert await _sku(shop, demo_modes.SHARED_SKU) is None
    assert await demo.load_demo(shop.ctx) is True
    after = await _counts(shop)
    assert after[0] == before[0] + 3 and after[3] == 1 and after[4] == 3  # three products, one code, three staff
    assert await demo.load_demo(shop.ctx) is False and await _counts(shop) == after
