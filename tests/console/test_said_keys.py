"""What the card-key pages say in Chinese: a refused 循环卡密 (shared code) or 自选卡密 label form names its reason
in the page's language (it used to show the service's English after "操作未完成："), and an import job's report
says why each line was refused or skipped (it listed the parser's English reasons)."""

from __future__ import annotations

import html
import re

from console.support import logged_in, post_form
from inventory.test_import_jobs import upload, wait_for_job


def _flash(page: str) -> str:
    found = re.findall(r'data-testid="flash">(.*?)</p>', page, re.S)
    assert len(found) == 1, found
    return html.unescape(re.sub(r"<[^>]+>", "", found[0])).strip()


async def test_refused_shared_code_and_label_forms_say_why_in_chinese(shop, app, stocked_sku):
    client = await logged_in(shop, "sia", roles=("operator",))
    shared = await shop.make_sku(code="SHARED-SAID", delivery_type="shared_code")
    url = f"/console/catalog/shared/{shared.id}"
    for form, said in (({"code": "QZ9", "sale_limit": "3"}, "操作未完成：卡密无效：少于 6 个字符"),
                       ({"code": "GOOD-SHARED-1", "sale_limit": "0"}, "操作未完成：限售数量须在 1 至")):
        refused = await post_form(client, url, form, page_url=url)
        assert refused.status_code == 422 and _flash(refused.text).startswith(said), _flash(refused.text)
        # The limit typed is drawn again; the code, a secret, is not echoed.
        assert f'value="{form["sale_limit"]}" data-testid="shared-limit"' in refused.text
        assert form["code"] not in re.sub(r'data-testid="flash">.*?</p>', "", refused.text, flags=re.S)

    url = f"/console/catalog/picks/{stocked_sku.id}"
    too_many = await post_form(client, url, {f"label-{i}": "x" for i in range(1, 502)}, page_url=url)
    assert too_many.status_code == 422 and _flash(too_many.text) == "操作未完成：一次最多保存 500 个卡密的标签"


async def test_an_import_reports_its_lines_reasons_in_chinese(shop, app, sku):
    mine = (await shop.stock(sku, 1))[0]
    job = await upload(shop, sku.id, "\n".join(["CODE-SAID-0001", "short", mine, "CODE-SAID-0001", "a,b,c,d"]) + "\n")
    assert (await wait_for_job(shop, job["id"]))["status"] == "done"
    client = await logged_in(shop, "ivo", roles=("owner",))
    page = await client.get(f"/console/keys/imports/{job['id']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for said in ("少于 6 个字符", "有 4 列：", "此规格的库存中已有", "与本文件第 1 行重复"):
        assert said in text, said
    assert "shorter than" not in text and "duplicate of" not in text and "already in stock" not in text
    english = await client.get(f"/console/keys/imports/{job['id']}?lang=en")
    assert "duplicate of line 1 in this file" in html.unescape(english.text)


async def test_the_batches_the_shop_names_itself_are_said_in_chinese(shop, app):
    """A 循环卡密's batch is recorded as "shared code", a hand delivery's as "manual:<order>": the stock pages say
    what they are (they showed the English name)."""
    client = await logged_in(shop, "sam", roles=("operator",))
    shared = await shop.make_sku(code="SHARED-BATCH", delivery_type="shared_code")
    url = f"/console/catalog/shared/{shared.id}"
    saved = await post_form(client, url, {"code": "GOOD-SHARED-BATCH-1", "sale_limit": "3"}, page_url=url)
    assert saved.status_code == 303, saved.text
    stock = await client.get(f"/console/keys/skus/{shared.id}")
    assert stock.status_code == 200
    batch_id = re.search(r'href="/console/keys/batches/(\d+)"', stock.text)
    assert batch_id, stock.text
    row = stock.text[stock.text.index(f'/console/keys/batches/{batch_id.group(1)}'):][:600]
    assert "循环卡密" in row and "shared code" not in stock.text, row
    batch = await client.get(f"/console/keys/batches/{batch_id.group(1)}")
    assert batch.status_code == 200 and "循环卡密" in batch.text and "shared code" not in batch.text


def test_a_hand_delivery_and_a_supplier_purchase_batch_name_their_order_and_purchase():
    from quanyi.console.said import say

    assert say("manual:261205ABCDEF12", "zh-CN") == "手动发货（订单 261205ABCDEF12）"
    assert say("supplier:SUP-1:PO-77:x", "zh-CN") == "供应商 SUP-1 采购 PO-77:x"
    assert say("manual:261205ABCDEF12", "en") == "manual:261205ABCDEF12"  # English pages: the name as recorded
    assert say("上游 3 月发票", "zh-CN") == "上游 3 月发票"  # a name staff typed: as it is
