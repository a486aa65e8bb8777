"""Chinese console pages say refusals in Chinese (console/said.py): the coupon form's shape errors, the catalog
forms' and the services' refusals; the API keeps its English messages and stable codes; an English page still says
the English message."""

from __future__ import annotations

import html
import re

import pytest
from pydantic import ValidationError

from console.support import logged_in, post_form
from coupons.support import make_coupon
from helpers import Shop
from quanyi.catalog.schemas import ProductCreate
from quanyi.console.said import Said, from_validation, say

_LATIN_SENTENCE = re.compile(r"[A-Za-z]{3,} [a-z]{2,} [a-z]{2,}")  # three English words in a row


def _refusals(page: str) -> list[str]:
    """What a page says went wrong: field errors and the refused-action headline."""
    found = re.findall(r'class="c-(?:field-error|flash err)"[^>]*>(.*?)</p>', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for text in found]


def _all_chinese(said: list[str]) -> None:
    assert said, "the page says nothing went wrong"
    english = [text for text in said if _LATIN_SENTENCE.search(text)]
    assert not english, english


async def test_the_coupon_form_says_its_shape_errors_in_chinese(shop: Shop):
    client = await logged_in(shop, "boss", roles=("owner",))
    refused = await post_form(client, "/console/coupons", {
        "name": "x" * 150, "kind": "amount_off", "amount_off": "abc", "currency": "CNY", "distribution": "code",
        "code": "a b!", "starts_at": "2026-01-01T00:00", "ends_at": "2026-02-01T00:00", "per_member_limit": "0",
        "threshold": "1.234", "scope": "some", "skus": "NOPE"}, page_url="/console/coupons/new")
    assert refused.status_code == 422
    said = _refusals(refused.text)
    _all_chinese(said)
    assert {"最多 100 个字符", "请填写金额，如 12.34", "金额最多 2 位小数", "格式不正确", "不能小于 1"} <= set(said)

    unknown = await post_form(client, "/console/coupons", {
        "name": "满10减3", "kind": "amount_off", "amount_off": "3", "currency": "CNY", "distribution": "claim",
        "starts_at": "2026-01-01T00:00", "ends_at": "2026-02-01T00:00", "scope": "some", "skus": "NOPE"},
        page_url="/console/coupons/new")
    assert "本店商品中没有此规格（SKU）：NOPE" in _refusals(unknown.text)

    english = await client.get("/console/coupons/new?lang=en")
    assert english.status_code == 200
    again = await post_form(client, "/console/coupons", {
        "name": "x" * 150, "kind": "amount_off", "amount_off": "3", "currency": "CNY", "distribution": "claim",
        "starts_at": "2026-01-01T00:00", "ends_at": "2026-02-01T00:00"}, page_url="/console/coupons/new")
    assert "String should have at most 100 characters" in _refusals(again.text)


async def test_catalog_pages_say_form_and_service_refusals_in_chinese(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100")
    client = await logged_in(shop, "boss", roles=("owner",))
    bad = await post_form(client, "/console/catalog/products", {
        "category_id": "1", "slug": "Bad Slug", "name": "", "redemption_guide": "", "sort_order": "0"},
        page_url="/console/catalog/products/new")
    assert bad.status_code == 422
    _all_chinese(_refusals(bad.text))
    assert "只能使用小写字母、数字和单个连字符，如 video-vip" in _refusals(bad.text)

    taken = await post_form(client, "/console/catalog/products", {
        "category_id": "1", "slug": "product-1", "name": "视频会员", "redemption_guide": "", "sort_order": "0"},
        page_url="/console/catalog/products/new")
    assert "标识 product-1 已被其他商品使用" in _refusals(taken.text)

    price = await post_form(client, f"/console/catalog/products/{sku.product_id}/skus", {
        "code": "GIFT-100", "name": "月卡", "price": "-1", "currency": "CNY", "delivery_type": "card_key",
        "min_quantity": "5", "max_quantity": "2"}, page_url=f"/console/catalog/products/{sku.product_id}")
    _all_chinese(_refusals(price.text))

    # a European decimal comma is not read as a thousands separator (1,50 is not 150 yuan)
    comma = await post_form(client, f"/console/catalog/products/{sku.product_id}/skus", {
        "code": "GIFT-150", "name": "月卡", "price": "1,50", "currency": "CNY", "delivery_type": "card_key",
        "min_quantity": "1", "max_quantity": "2"}, page_url=f"/console/catalog/products/{sku.product_id}")
    assert comma.status_code == 422
    assert any("逗号只能用作千位分隔符" in text for text in _refusals(comma.text)), _refusals(comma.text)

    coupon = await make_coupon(shop, name="新年券", code="NY1", targets=[{"kind": "sku", "id": sku.id}])
    kept = await post_form(client, f"/console/catalog/skus/{sku.id}/delete",
                           page_url=f"/console/catalog/products/{sku.product_id}")
    assert kept.status_code == 409
    said = _refusals(kept.text)
    _all_chinese(said)
    assert any(f"未结束的优惠券 #{coupon['id']} 新年券" in text for text in said), said

    by_product = await make_coupon(shop, name="商品券", code="P1", targets=[{"kind": "product", "id": sku.product_id}])
    product = await post_form(client, f"/console/catalog/products/{sku.product_id}/delete",
                              page_url=f"/console/catalog/products/{sku.product_id}")
    assert product.status_code == 409
    said = _refusals(product.text)
    _all_chinese(said)
    assert any(f"张未结束优惠券的适用范围内（#{coupon['id']} 新年券" in text for text in said) or any(
        "未结束的优惠券" in text for text in said), (said, by_product)

    category = await post_form(client, "/console/catalog/categories/1/delete", page_url="/console/catalog/categories")
    assert category.status_code == 409
    said = _refusals(category.text)
    _all_chinese(said)
    assert any("下还有商品" in text for text in said), said


async def test_the_api_keeps_its_english_messages_and_codes(shop: Shop):
    sku = await shop.make_sku(code="GIFT-100")
    await make_coupon(shop, name="新年券", code="NY1", targets=[{"kind": "sku", "id": sku.id}])
    answer = await shop.client.delete(f"/api/admin/skus/{sku.id}", headers=shop.admin)
    assert answer.status_code == 409 and answer.json()["code"] == "in_use"
    assert answer.json()["detail"].startswith("SKU GIFT-100 cannot be deleted")


@pytest.mark.parametrize(("english", "chinese"), [
    ("ends_at must be after starts_at", "结束时间须晚于开始时间"),
    ("category 'games' does not exist", "分类 games 不存在"),
    ("merchant 'ACME' does not exist", "商户 ACME 不存在"),
    ("SKU code 'GIFT-1' is already used", "SKU 编码 GIFT-1 已被使用"),
    ("3 are already taken: the total cannot be less", "已领取或使用 3 张，总量不能少于此数"),
    ("a batch has 1 to 5000 codes", "每批 1 至 5000 个券码"),
    ("quantity must be between 1 and 1000", "须在 1 至 1000 之间（quantity）"),
    ("budget must be an amount like 12.34", "请填写金额，如 12.34（budget）"),
    ("required", "必填"),
    ("the second factor is already on; turn it off with a current code first",
     "两步验证已经开启：如需更换验证器，请先用当前验证码关闭"),
    ("the code does not match; check the time on the phone and try the next code",
     "验证码不正确：请检查手机时间是否准确，并输入下一个验证码"),
    ("'1,50': commas may only separate thousands, like 1,500 or 12,345.60",
     "逗号只能用作千位分隔符（每组三位数字），如 1,500 或 12,345.60；小数请用小数点"),
    ("refund of 12345 cents exceeds the 300 cents left to refund", "退款 ¥123.45 超过了可退的 ¥3.00"),
    ("3 keys are worth 3000 cents but only 1000 are left to refund", "3 个卡密价值 ¥30.00，但这笔付款只剩 ¥10.00 可退"),
    ("an order that is refunded cannot be refunded", "订单当前为「已退款」，不能退款"),
    ("a refund cannot go from succeeded to failed", "退款不能从「成功」变为「失败」（可能已被其他人处理，请刷新页面）"),
    ("payment P123 was never paid", "付款 P123 没有支付成功，不能退款"),
    ("order not found", "订单不存在"),
    ("SKU GIFT-1 is already mapped to ACME/P-9", "规格 GIFT-1 已对接 ACME/P-9"),
    ("SKU GIFT-1 is card_key but ACME/P-9 is direct_recharge",
     "规格 GIFT-1 的发货方式（card_key）与供应商商品 ACME/P-9（direct_recharge）不一致"),
    ("SKU GIFT-1 is sold in CNY but the supplier product costs USD",
     "规格 GIFT-1 以 CNY 售卖，但供应商商品以 USD 计价"),
    ("supplier 'ACME' does not exist", "供应商 ACME 不存在"),
    ("supplier code 'ACME' is already used", "供应商编码 ACME 已被使用"),
    ("supplier ACME is being synced right now", "供应商 ACME 正在同步，请稍后再试"),
    ("a rule named 'big orders' exists", "已有名为 big orders 的风控规则"),
    ("something the console has no words for", "something the console has no words for"),
])
def test_messages_are_said_in_chinese_and_kept_in_english(english: str, chinese: str):
    assert say(english, "zh-CN") == chinese
    assert say(english, "en") in (english, "required")


def test_request_shape_errors_say_money_limits_in_yuan():
    try:
        ProductCreate.model_validate({"category_id": 1, "slug": "ok", "name": "n" * 300,
                                      "skus": [{"code": "A", "name": "a", "price_cents": -5}]})
    except ValidationError as exc:
        said = {".".join(str(p) for p in e["loc"]): from_validation(e) for e in exc.errors()}
    assert isinstance(said["name"], Said) and say(said["name"], "zh-CN") == "最多 200 个字符"
    assert say(said["skus.0.price_cents"], "zh-CN") == "金额不能小于 0.00"
    assert say(said["name"], "en") == "String should have at most 200 characters"


def test_every_message_text_fills_only_what_its_pattern_finds():
    from quanyi.console.i18n import MESSAGES
    from quanyi.console.said import _MESSAGES

    for pattern, key in _MESSAGES:
        for locale in ("zh-CN", "en"):
            used = {int(n) for n in re.findall(r"\{(\d+)\}", MESSAGES[locale][f"said.m.{key}"])}
            assert used <= set(range(pattern.groups)), (key, locale)


def test_a_general_invalid_input_is_not_said_as_a_missing_review_reason():
    from quanyi.console.i18n import console_text

    assert console_text("zh-CN", "err.invalid_input") == "输入有误，未做任何更改"
    assert console_text("zh-CN", "review.err.invalid_input") == "请填写审核理由"


def test_each_pattern_names_how_its_own_groups_are_said():
    """The way a message's groups are said sits beside its pattern in the area's file (console/texts/said*.py):
    never more ways than the pattern has groups, and one key is never said two ways."""
    import re

    from quanyi.console import said

    for pattern, key, *how in said._PATTERNS:
        assert not how or len(how[0]) <= re.compile(pattern).groups, (key, how)
        assert not how or set(how[0]) <= set("spceymfgt-"), (key, how)
    assert said._GROUPS["payout_exists"] == "---t" and said._GROUPS["memo_payment"] == "g"
    with pytest.raises(ValueError, match="said.m.k: its groups are said as 's' and as 'y'"):
        said._groups_of(((r"a (\w+)", "k", "s"), (r"b (\d+)", "k", "y")))
    assert said._groups_of(((r"a (\w+)", "k", "s"), (r"b (\w+)", "k", "s"), (r"c", "other"))) == {"k": "s"}
