"""A refused key import sent as a plain form says its detail once (the page draws its flash with
console/_ui.html flash_message): a message whose text already carries the detail ("单个成本不是有效金额：{detail}")
is not followed by the same detail again in brackets, while a message without it still shows the detail in
brackets (the key-import page used to drop it)."""

from __future__ import annotations

import html
import re

from sqlalchemy import update

from console.support import csrf_token, logged_in
from console.test_console_said import _refusals
from quanyi.catalog.models import Sku


async def _form_upload(shop, sku_id: int, content: bytes, data: dict[str, str] | None = None) -> tuple[int, str]:
    client = await logged_in(shop, "kim", roles=("owner",))
    page = await client.get(f"/console/keys/skus/{sku_id}/import")
    assert page.status_code == 200
    refused = await client.post(f"/console/keys/skus/{sku_id}/imports",
                                files={"file": ("keys.txt", content, "text/plain")},
                                data={**(data or {}), "csrf_token": csrf_token(page.text)},
                                headers={"Origin": "http://test"})
    flashes = re.findall(r'data-testid="flash">(.*?)</p>', refused.text, re.S)
    assert len(flashes) == 1, _refusals(refused.text)
    return refused.status_code, html.unescape(re.sub(r"<[^>]+>", "", flashes[0])).strip()


async def test_a_bad_unit_cost_sent_as_a_form_says_its_reason_once(shop, sku):
    status, flash = await _form_upload(shop, sku.id, b"CODE-1\n", {"unit_cost": "1,50"})
    assert status == 422
    assert flash.startswith("单个成本不是有效金额：逗号只能用作千位分隔符"), flash
    assert flash.count("逗号只能用作千位分隔符") == 1 and not flash.endswith(")"), flash


async def test_an_empty_file_sent_as_a_form_says_why_once(shop, sku):
    status, flash = await _form_upload(shop, sku.id, b"")
    assert status == 422
    assert flash.startswith("文件无法导入："), flash
    detail = flash.removeprefix("文件无法导入：")
    assert detail and flash.count(detail) == 1 and "(" not in flash, flash


async def test_a_message_without_its_detail_still_shows_it_in_brackets(shop, sku):
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Sku).where(Sku.id == sku.id).values(delivery_type="manual"))
    status, flash = await _form_upload(shop, sku.id, b"CODE-1\n")
    assert status == 422
    assert re.fullmatch(r"此 SKU 不是卡密发货，不能导入卡密（.+）", flash), flash
