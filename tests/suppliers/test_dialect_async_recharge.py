"""The async_recharge dialect: secret-wrapped MD5 signing, yuan amounts, ret_codes mapped to outcome-aware
errors, the exact "success" ack the platform insists on, and idempotent resubmission."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from quanyi.suppliers.adapter import (
    CallbackRejected,
    RechargeEvent,
    RechargeRequest,
    RechargeState,
    SupplierEndpoint,
    SupplierOutcomeUnknown,
    SupplierOutOfStock,
    SupplierPriceChanged,
    SupplierRejected,
)
from quanyi.suppliers.dialects.async_recharge import AsyncRechargeAdapter, beijing_timestamp, wrapped_md5_sign
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import RECHARGE_PRODUCT
from suppliers.support import adapter_for_sim


def _request(key: str, account: str = "13800138000", max_cost: int = 4900, url: str | None = None):
    return RechargeRequest(idempotency_key=key, product_code=RECHARGE_PRODUCT, account=account, quantity=1,
                           max_unit_cost_cents=max_cost, callback_url=url)


def test_sign_matches_a_fixed_vector():
    # md5("k3y" + "account13800138000max_price49.00merchant_idM10001out_trade_noord-1002-a1product_idMOBILE-50"
    #     + "quantity1timestamp20260101080000" + "k3y"), upper case; the empty notify_url is left out.
    params = {"merchant_id": "M10001", "out_trade_no": "ord-1002-a1", "product_id": "MOBILE-50",
              "account": "13800138000", "quantity": "1", "max_price": "49.00", "notify_url": "",
              "timestamp": "20260101080000"}
    assert wrapped_md5_sign("k3y", params) == "8D27D17ED5C294296942A414300B17E9"
    assert wrapped_md5_sign("k3y", {**params, "sign": "ignored"}) == "8D27D17ED5C294296942A414300B17E9"


def test_timestamps_are_beijing_time():
    assert beijing_timestamp(1767225600) == "20260101080000"  # 2026-01-01 00:00 UTC


async def test_price_rise_above_max_price_is_a_price_change_in_cents(supplier_sim, http):
    sim = supplier_sim("async_recharge")
    sim.set_cost(RECHARGE_PRODUCT, 4950)
    with pytest.raises(SupplierPriceChanged) as raised:
        await adapter_for_sim(sim, http).submit_recharge(_request("rc-p1"))
    assert raised.value.context["unit_cost_cents"] == 4950
    assert sim.orders == {}


async def test_closed_channel_is_out_of_stock_and_bad_accounts_are_refused(supplier_sim, http):
    sim = supplier_sim("async_recharge")
    adapter = adapter_for_sim(sim, http)
    sim.reject_accounts("00000")
    with pytest.raises(SupplierRejected) as raised:
        await adapter.submit_recharge(_request("rc-a1", account="00000"))
    assert raised.value.context["code"] == "2004"
    sim.set_stock(RECHARGE_PRODUCT, 0)
    with pytest.raises(SupplierOutOfStock):
        await adapter.submit_recharge(_request("rc-a2"))
    [quote] = await adapter.fetch_quotes([RECHARGE_PRODUCT])
    assert not quote.available


async def test_resubmitting_the_same_out_trade_no_returns_the_same_order(supplier_sim, http):
    sim = supplier_sim("async_recharge")
    sim.set_callback_delay(None)
    adapter = adapter_for_sim(sim, http)
    first = await adapter.submit_recharge(_request("rc-i1"))
    again = await adapter.submit_recharge(_request("rc-i1"))
    assert again.supplier_order_no == first.supplier_order_no and first.state == RechargeState.SUBMITTED
    assert (sim.requests_for("rc-i1"), sim.purchases_for("rc-i1"), sim.charged_cents) == (2, 1, 4900)
    with pytest.raises(SupplierRejected):  # same number, other account: the platform refuses (2006)
        await adapter.submit_recharge(_request("rc-i1", account="13700000000"))


async def test_the_platform_retries_until_it_hears_exactly_success(supplier_sim, http, callback_sink):
    sim = supplier_sim("async_recharge")
    adapter = adapter_for_sim(sim, http)
    callback_sink.answer(b"ok")  # not what this platform expects
    await adapter.submit_recharge(_request("rc-r1", url=callback_sink.url + "/cb"))
    await sim.await_for(lambda: len(sim.callbacks_for("recharge")) >= 3)
    assert [c.accepted for c in sim.callbacks_for("recharge")] == [False, False, False]
    assert adapter.callback_ack().body == b"success"
    callback_sink.reset()
    callback_sink.answer(adapter.callback_ack().body)
    await adapter.submit_recharge(_request("rc-r2", url=callback_sink.url + "/cb"))
    await sim.await_for(lambda: len(callback_sink.received) >= 1)
    await sim.await_for(lambda: sim.callbacks_for("recharge")[-1].accepted)
    assert len(callback_sink.received) == 1  # heard "success": no retry


async def test_callback_for_another_merchant_or_with_a_bad_sign_is_rejected(http):
    endpoint = SupplierEndpoint("ar", "http://127.0.0.1:9", {"merchant_id": "M1", "secret": "k3y"})
    adapter = AsyncRechargeAdapter(endpoint, http)
    fields = {"merchant_id": "M1", "out_trade_no": "rc-1", "order_id": "AR1", "status": "2", "price": "49.00",
              "timestamp": beijing_timestamp(time.time())}
    good = urlencode({**fields, "sign": wrapped_md5_sign("k3y", fields)}).encode()
    assert adapter.parse_callback(headers={}, body=good) == [
        RechargeEvent(idempotency_key="rc-1", supplier_order_no="AR1", state=RechargeState.SUCCEEDED,
                      unit_cost_cents=4900)]
    other = {**fields, "merchant_id": "M2"}
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers={}, body=urlencode({**other, "sign": wrapped_md5_sign("k3y", other)}).encode())
    with pytest.raises(CallbackRejected):
        forged = urlencode({**fields, "sign": wrapped_md5_sign("nope", fields)}).encode()
        adapter.parse_callback(headers={}, body=forged)
    with pytest.raises(CallbackRejected):
        adapter.parse_callback(headers={}, body=b"\xff\xfe")


@pytest.fixture
def odd_platform():
    app = FastAPI()

    @app.post("/api/v2/recharge")
    async def submit() -> JSONResponse:
        return JSONResponse({"ret_code": "8888", "ret_msg": "undocumented"})

    with serve_in_thread(app) as url:
        yield url


async def test_an_undocumented_ret_code_on_submit_is_an_unknown_outcome(odd_platform, http: httpx.AsyncClient):
    adapter = AsyncRechargeAdapter(SupplierEndpoint("ar", odd_platform, {"merchant_id": "M1", "secret": "k"}), http)
    with pytest.raises(SupplierOutcomeUnknown):
        await adapter.submit_recharge(_request("rc-u1"))
