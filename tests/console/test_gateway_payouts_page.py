"""The gateway settlements page (渠道结算): finance staff read what each gateway owes, the owner records a payout
(booked once, audited); a repeat, a payout above the balance and a bad amount are refused in Chinese, booking
nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from console.support import logged_in, post_form
from quanyi.ledger.models import GatewayPayout
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff.models import StaffAuditEntry

PAGE = "/console/gateway-payouts"


async def _payouts(shop) -> int:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(GatewayPayout)) or 0)


async def test_owner_records_a_payout_and_repeats_are_refused_in_chinese(shop):
    sku = await shop.make_sku(code="PAYOUT-GOODS", price_cents=2500)
    await shop.stock(sku, 2)
    for _ in range(2):
        await shop.pay(await shop.create_order(sku.id))
    client = await logged_in(shop, "olivia", roles=("owner",))
    page = await client.get(PAGE)
    assert page.status_code == 200 and 'data-testid="payout-form"' in page.text
    assert 'data-gateway="sandbox"' in page.text and "¥50.00" in page.text  # owed by the sandbox
    assert '<span data-testid="gateway-title">Sandbox 模拟支付</span> <code class="small">sandbox</code>' in page.text
    today = shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone)).isoformat()
    form = {"gateway": "sandbox", "settlement_no": "2088PAGE01", "period_from": today, "period_to": today,
            "net": "49.70", "fee": "0.30", "refunds": "0", "currency": "CNY", "note": "招商银行 0001"}

    done = await post_form(client, PAGE, form, page_url=PAGE)
    assert done.status_code == 303, done.text
    shown = await client.get(done.headers["location"])
    assert "已记录 sandbox 结算单 2088PAGE01，到账 ¥49.70" in shown.text
    assert 'data-settlement="2088PAGE01"' in shown.text and "相符" in shown.text
    assert await _payouts(shop) == 1

    again = await post_form(client, PAGE, {**form, "net": "1.00", "fee": "0"}, page_url=PAGE)
    assert again.status_code == 409 and "这张结算单已经记录过，没有重复入账" in again.text
    assert "sandbox 的结算单 2088PAGE01 已由 olivia 于" in again.text and "already recorded" not in again.text
    # the detail after the headline in full-width brackets, as Chinese text writes them (not an ASCII "(")
    assert "没有重复入账<span class=\"small\" data-testid=\"flash-detail\">（sandbox 的结算单" in again.text
    assert "记录过）</span>" in again.text
    # the first recording's time as the list beside it shows it: the shop's clock, not ISO UTC
    async with shop.ctx.db.read_session() as session:
        recorded_at = await session.scalar(select(GatewayPayout.recorded_at))
    assert recorded_at is not None
    local = recorded_at.replace(tzinfo=recorded_at.tzinfo or dt.UTC).astimezone(
        shop_zone(shop.ctx.settings.shop_timezone)).strftime("%Y-%m-%d %H:%M")
    assert f"已由 olivia 于 {local} 记录过" in again.text and "+00:00" not in again.text
    assert again.text.count(local) >= 2  # the refusal and the list's row
    too_much = await post_form(client, PAGE, {**form, "settlement_no": "2088PAGE02", "net": "0.01"}, page_url=PAGE)
    assert too_much.status_code == 409 and "超过了该渠道的待结算余额" in too_much.text
    assert "到账金额加手续费（¥0.31）超过 sandbox 的待结算余额 ¥0.00" in too_much.text, too_much.text[
        too_much.text.find('data-testid="flash"'):][:600]
    bad = await post_form(client, PAGE, {**form, "settlement_no": "2088PAGE03", "net": "-3"}, page_url=PAGE)
    assert bad.status_code == 422 and "表单填写有误" in bad.text and 'data-testid="net-error"' in bad.text
    assert 'value="2088PAGE03"' in bad.text  # drawn again as typed
    unknown = await post_form(client, PAGE, {**form, "gateway": "nopay", "settlement_no": "X9"}, page_url=PAGE)
    assert unknown.status_code == 422 and "没有这个支付渠道" in unknown.text and "从未经它收款" in unknown.text
    future = await post_form(client, PAGE, {**form, "settlement_no": "X10", "period_to": "2999-01-01"}, page_url=PAGE)
    assert future.status_code == 422 and "结算期间不能晚于今天" in future.text
    assert 'data-testid="period_to-error"' in future.text
    assert await _payouts(shop) == 1
    async with shop.ctx.db.read_session() as session:
        audited = (await session.scalars(select(StaffAuditEntry.object_id).where(
            StaffAuditEntry.action == "gateway_payout_recorded"))).all()
    assert audited == ["sandbox:2088PAGE01"]
    english = await post_form(client, PAGE + "?lang=en", {**form, "net": "1.00", "fee": "0"}, page_url=PAGE)
    assert "nothing was booked again<span class=\"small\" data-testid=\"flash-detail\"> (settlement" in english.text

    client.cookies.clear()  # a finance clerk on the same browser
    reader = await logged_in(shop, "fred", roles=("finance",))
    read = await reader.get(PAGE)
    assert read.status_code == 200 and 'data-testid="payout-form"' not in read.text and "2088PAGE01" in read.text
    refused = await post_form(reader, PAGE, {**form, "settlement_no": "2088PAGE04"}, page_url=PAGE)
    assert refused.status_code == 403
    assert await _payouts(shop) == 1
