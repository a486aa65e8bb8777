"""TEST PEER: the Alipay open platform (支付宝开放平台) as a real HTTP server, for tests and the demo.

It plays Alipay's side with its own keys (generated at start, never committed): it verifies the shop's
RSA2 request signatures like the real gateway (`isv.invalid-signature`, `isv.invalid-timestamp`, ...),
keeps trades and refunds in memory (thread-safe: it runs in a uvicorn thread), serves the hosted cashier
for page/wap checkouts, answers precreate / query / refund / refund query with signed
`{"..._response": {...}, "sign": ...}` bodies, and builds signed `trade_status_sync` notifications.

Its wire formats and its own RSA2 signing (independent of the shop's) are in `alipay_wire`.

Notifications: `manual` mode queues them for a test (`take_notifications()`), `auto` mode POSTs them to
the notify_url from a background thread, re-sending with backoff until the shop answers `success`.
Refund sends (new / re-send of a known out_request_no / refused) and refund queries are kept in `refund_calls`.
Knobs: `fail_next(n)` (5xx), `latency` (a timeout: the call is still carried out, its answer comes too late),
`lose_next_notifications(n)`, `duplicates`, `hold_refunds`, `refuse_refunds(sub_code)`, and builders for
out-of-order, late, forged and tampered notifications (`notification`, `forged`, `tampered`).

    python -m quanyi.testpeers.alipay --port 9010   # auto mode; prints the shop's AlipayConfig JSON
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import heapq
import html
import json
import secrets
import threading
import time
from dataclasses import replace
from typing import Literal
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from quanyi.testpeers.alipay_wire import (
    BEIJING,
    PAGE_METHODS,
    REQUEST_WINDOW,
    AlipayKeys,
    Refusal,
    SimNotification,
    SimRefundCall,
    SimTrade,
    beijing_time,
    cents_or_none,
    invalid,
    rsa2_sign,
    string_to_sign,
    yuan,
)

__all__ = ["AlipayKeys", "AlipaySimulator", "SimNotification", "SimTrade", "main"]


class AlipaySimulator:
    def __init__(self, *, keys: AlipayKeys | None = None, app_id: str = "2021000000000001",
                 seller_id: str = "2088000000000001", mode: Literal["manual", "auto"] = "manual",
                 retry_delays: tuple[float, ...] = (0, 2, 5, 15, 60, 300, 900, 3600)) -> None:
        self.keys = keys or AlipayKeys.generate()
        self.app_id, self.seller_id, self.mode, self.retry_delays = app_id, seller_id, mode, retry_delays
        self._merchant_key = serialization.load_pem_public_key(self.keys.merchant_public_pem.encode())
        self._platform_key = serialization.load_pem_private_key(self.keys.alipay_private_pem.encode(), None)
        self._wrong_key: rsa.RSAPrivateKey | None = None
        self._lock = threading.RLock()
        self.trades: dict[str, SimTrade] = {}
        self.calls: list[str] = []  # API methods the peer answered, in order
        self.refund_calls: list[SimRefundCall] = []  # refund sends (new / resend / refused) and queries, in order
        self.latency = 0.0  # seconds added before every API answer
        self.duplicates = 0  # extra copies of every notification
        self.hold_refunds = False  # accept refunds without moving money yet (fund_change=N) until settle_refunds()
        self._held: set[tuple[str, str]] = set()  # (out_trade_no, out_request_no) accepted, not yet refunded
        self._fail_next, self._fail_status, self._lose_next = 0, 503, 0
        self._refusing: Refusal | None = None  # every new refund is refused with this (refuse_refunds)
        self._queue: list[SimNotification] = []
        self.delivered: list[SimNotification] = []  # auto mode: acknowledged by the shop
        self.given_up: list[SimNotification] = []  # auto mode: never acknowledged
        self._pending: list[tuple[float, int, int, SimNotification]] = []  # (due, seq, attempt, notification)
        self._sending = 0  # popped from _pending, its POST not answered yet
        self._seq = 0
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._worker: threading.Thread | None = None
        self.app = Starlette(routes=[
            Route("/gateway.do", self._gateway, methods=["GET", "POST"]),
            Route("/cashier", self._cashier_page, methods=["GET"]),
            Route("/cashier/pay", self._cashier_pay, methods=["POST"]),
        ])

    # ------------------------------------------------------------ setup and knobs

    def merchant_config(self, base_url: str) -> dict[str, str]:
        """What the shop needs (AlipayConfig fields) to talk to this peer at `base_url`."""
        return {"app_id": self.app_id, "merchant_private_key": self.keys.merchant_private_pem,
                "alipay_public_key": self.keys.alipay_public_pem, "gateway_url": f"{base_url}/gateway.do",
                "seller_id": self.seller_id}

    def fail_next(self, count: int, *, status: int = 503) -> None:
        """The next `count` API calls answer HTTP `status` (an outage at Alipay)."""
        with self._lock:
            self._fail_next, self._fail_status = count, status

    def refuse_refunds(self, sub_code: str | None = "ACQ.SELLER_BALANCE_NOT_ENOUGH",
                       sub_msg: str = "卖家余额不足") -> None:
        """Refuse every new refund with this business error (a definite no, like Alipay's); None: refund again.
        A refund number already refunded is still answered as before (a repeat)."""
        with self._lock:
            self._refusing = Refusal(sub_code, sub_msg) if sub_code else None

    def lose_next_notifications(self, count: int = 1) -> None:
        """The next `count` notifications are never sent (the shop must find out by querying)."""
        with self._lock:
            self._lose_next = count

    def trade(self, out_trade_no: str) -> SimTrade:
        with self._lock:
            return replace(self.trades[out_trade_no], refunds=dict(self.trades[out_trade_no].refunds))

    def pay(self, out_trade_no: str, *, at: dt.datetime | None = None, buyer_id: str | None = None) -> SimTrade:
        """The buyer pays an open trade (scan or cashier button); queues/sends the notification.
        `buyer_id`: the paying Alipay account (2088...); a random one per trade otherwise."""
        at = at or dt.datetime.now(dt.UTC)
        with self._lock:
            trade = self.trades[out_trade_no]
            if trade.status == "WAIT_BUYER_PAY":
                trade.status, trade.paid_at = "TRADE_SUCCESS", at
                if buyer_id is not None:
                    trade.buyer_id = buyer_id
                self._emit(trade)
            return self.trade(out_trade_no)

    def close(self, out_trade_no: str) -> None:
        """Alipay closes an unpaid trade (time_expire reached); no notification, like Alipay."""
        with self._lock:
            trade = self.trades[out_trade_no]
            if trade.status == "WAIT_BUYER_PAY":
                trade.status, trade.closed_at = "TRADE_CLOSED", dt.datetime.now(dt.UTC)

    def settle_refunds(self) -> None:
        """Held refunds complete: the money moves and the refund query starts to show them."""
        with self._lock:
            held, self._held = self._held, set()
            for out_trade_no, _ in sorted(held):
                self._emit(self.trades[out_trade_no])

    def take_notifications(self) -> list[SimNotification]:
        with self._lock:
            taken, self._queue = self._queue, []
            return taken

    # ------------------------------------------------------------ notifications

    def notification(self, out_trade_no: str, *, trade_status: str | None = None,
                     notify_time: dt.datetime | None = None, **overrides: str) -> SimNotification:
        """A correctly signed notification about a trade; `overrides` change fields before signing."""
        now = notify_time or dt.datetime.now(dt.UTC)
        with self._lock:
            trade = self.trades[out_trade_no]
            status = trade_status or trade.status
            params = {
                "notify_time": beijing_time(now), "notify_type": "trade_status_sync",
                "notify_id": secrets.token_hex(16), "app_id": self.app_id, "auth_app_id": self.app_id,
                "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no, "buyer_id": trade.buyer_id, "seller_id": self.seller_id,
                "trade_status": status, "total_amount": yuan(trade.amount_cents), "subject": trade.subject,
                "gmt_create": beijing_time(trade.created_at),
            }
            if status != "WAIT_BUYER_PAY" and trade.paid_at is not None:
                amount = yuan(trade.amount_cents)
                params.update(receipt_amount=amount, buyer_pay_amount=amount, invoice_amount=amount,
                              gmt_payment=beijing_time(trade.paid_at),
                              fund_bill_list=json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}]))
            if trade.refunds:
                params.update(refund_fee=yuan(trade.refunded_cents),
                              gmt_refund=beijing_time(max(at for _, at in trade.refunds.values())) + ".000")
            if status == "TRADE_CLOSED" and trade.closed_at is not None:
                params["gmt_close"] = beijing_time(trade.closed_at)
            params.update(overrides)  # an empty override ("body": "") is sent, and signed, as Alipay does
            params["sign"] = rsa2_sign(string_to_sign(params, ("sign", "sign_type"), keep_empty=True),
                                       self._platform_key)
            return SimNotification(url=trade.notify_url, params=params)

    def forged(self, notification: SimNotification) -> SimNotification:
        """The same notification signed with a key that is not Alipay's."""
        with self._lock:
            self._wrong_key = self._wrong_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
            params = {k: v for k, v in notification.params.items() if k != "sign"}
            params["sign"] = rsa2_sign(string_to_sign(params, ("sign", "sign_type"), keep_empty=True), self._wrong_key)
            return SimNotification(notification.url, params)

    @staticmethod
    def tampered(notification: SimNotification, **changes: str) -> SimNotification:
        """The notification with fields changed after it was signed (a man in the middle)."""
        return SimNotification(notification.url, {**notification.params, **changes})

    def _emit(self, trade: SimTrade) -> None:
        """A trade changed state: Alipay tells the merchant (unless a knob loses it). Holds the lock."""
        if not trade.notify_url:
            return
        if self._lose_next > 0:
            self._lose_next -= 1
            return
        notification = self.notification(trade.out_trade_no)
        for _ in range(1 + self.duplicates):
            if self.mode == "manual":
                self._queue.append(notification)
            else:
                self._schedule(notification, attempt=0, delay=self.retry_delays[0])

    def _schedule(self, notification: SimNotification, *, attempt: int, delay: float) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (time.monotonic() + delay, self._seq, attempt, notification))
        if self._worker is None:
            self._worker = threading.Thread(target=self._deliver_loop, name="alipay-peer-notify", daemon=True)
            self._worker.start()
        self._wake.notify()

    def _deliver_loop(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while True:
                with self._lock:
                    while not self._stopping and (not self._pending or self._pending[0][0] > time.monotonic()):
                        self._wake.wait(None if not self._pending else self._pending[0][0] - time.monotonic())
                    if self._stopping:
                        return
                    _, _, attempt, notification = heapq.heappop(self._pending)
                    self._sending += 1
                try:
                    answer = client.post(notification.url, content=notification.body, headers=notification.headers)
                    acknowledged = answer.status_code == 200 and answer.text.strip() == "success"
                except httpx.HTTPError:
                    acknowledged = False
                with self._lock:
                    self._sending -= 1
                    if acknowledged:
                        self.delivered.append(notification)
                    elif attempt + 1 < len(self.retry_delays):
                        self._schedule(notification, attempt=attempt + 1, delay=self.retry_delays[attempt + 1])
                    else:
                        self.given_up.append(notification)

    def wait_until_idle(self, timeout: float = 60.0) -> bool:
        """Auto mode: wait until nothing is left to deliver (acknowledged or given up), none being sent either."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._sending:
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(5)

    # ------------------------------------------------------------ HTTP: the gateway

    async def _params(self, request: Request) -> dict[str, str]:
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            pairs += parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(pairs)
        if len(params) != len(pairs):
            raise invalid("isv.invalid-parameter", "重复的参数")
        return params

    def _authenticate(self, params: dict[str, str]) -> dict[str, object]:
        """Alipay's gateway checks on every request; returns the parsed biz_content."""
        missing = [k for k in ("app_id", "method", "charset", "sign_type", "sign", "timestamp", "version")
                   if not params.get(k)]
        if missing:
            raise invalid(f"isv.missing-{missing[0].replace('_', '-')}", f"缺少参数 {missing[0]}")
        if params["app_id"] != self.app_id:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        if params["sign_type"] != "RSA2":
            raise invalid("isv.invalid-signature-type", "无效的签名类型")
        if params["charset"].lower() != "utf-8" or params.get("format", "JSON").upper() != "JSON":
            raise invalid("isv.invalid-charset", "字符集或格式错误")
        try:
            self._merchant_key.verify(base64.b64decode(params["sign"], validate=True),  # type: ignore[union-attr,call-arg]
                                      string_to_sign(params, ("sign",)), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise invalid("isv.invalid-signature", "验签出错，建议检查签名私钥与应用公钥是否匹配") from None
        try:
            sent = dt.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        if abs(dt.datetime.now(dt.UTC) - sent) > REQUEST_WINDOW:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数")
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise invalid("isv.invalid-parameter", "biz_content 不是 JSON") from None
        if not isinstance(biz, dict):
            raise invalid("isv.invalid-parameter", "biz_content 不是 JSON 对象")
        return biz

    def _answer(self, method: str, content: dict[str, object]) -> Response:
        raw = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        node = method.replace(".", "_") + "_response"
        sign = rsa2_sign(raw.encode(), self._platform_key)  # type: ignore[arg-type]
        return Response(f'{{"{node}":{raw},"sign":"{sign}"}}', media_type="text/html;charset=utf-8")

    async def _gateway(self, request: Request) -> Response:
        method = "error"
        try:
            params = await self._params(request)
            method = params.get("method", "") or "error"
            if method not in PAGE_METHODS:
                with self._lock:
                    failing = self._fail_next > 0
                    if failing:
                        self._fail_next -= 1
                if failing:
                    return PlainTextResponse("Service Unavailable", status_code=self._fail_status)
                if self.latency:
                    await asyncio.sleep(self.latency)
            biz = self._authenticate(params)
            with self._lock:
                if method in PAGE_METHODS:
                    trade = self._open_trade(params, biz)
                    return RedirectResponse(f"/cashier?{urlencode({'out_trade_no': trade.out_trade_no})}", 302)
                self.calls.append(method)
                content = self._api(method, params, biz, str(request.base_url).rstrip("/"))
        except Refusal as refusal:
            content = refusal.answer
        return self._answer(method, {"code": "10000", "msg": "Success", **content}
                            if "code" not in content else content)

    def _open_trade(self, params: dict[str, str], biz: dict[str, object]) -> SimTrade:
        """page.pay / wap.pay / precreate: create the trade, or return the open one for this out_trade_no."""
        out_trade_no, subject = biz.get("out_trade_no"), biz.get("subject")
        amount = cents_or_none(biz.get("total_amount"))
        if not isinstance(out_trade_no, str) or not out_trade_no or not isinstance(subject, str) or not subject:
            raise invalid("isv.missing-parameter", "缺少 out_trade_no 或 subject")
        if amount is None or amount > 10_000_000_000:
            raise Refusal("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额或格式错误")
        existing = self.trades.get(out_trade_no)
        if existing is not None:
            if existing.amount_cents != amount:
                raise Refusal("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            if existing.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise Refusal("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.status == "TRADE_CLOSED":
                raise Refusal("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            return existing
        now = dt.datetime.now(dt.UTC)
        trade = SimTrade(
            out_trade_no=out_trade_no, amount_cents=amount, subject=subject, status="WAIT_BUYER_PAY",
            trade_no=now.strftime("%Y%m%d") + "22001" + "".join(secrets.choice("0123456789") for _ in range(15)),
            notify_url=params.get("notify_url", ""), return_url=params.get("return_url", ""), created_at=now,
            buyer_id="2088" + "".join(secrets.choice("0123456789") for _ in range(12)),
            time_expire=str(biz.get("time_expire", "")),
        )
        self.trades[out_trade_no] = trade
        return trade

    def _find(self, biz: dict[str, object]) -> SimTrade:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        if trade is None and biz.get("trade_no"):
            trade = next((t for t in self.trades.values() if t.trade_no == biz["trade_no"]), None)
        if trade is None:
            raise Refusal("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return trade

    def _api(self, method: str, params: dict[str, str], biz: dict[str, object], base: str) -> dict[str, object]:
        """The open-platform methods the shop calls. Holds the lock."""
        if method == "alipay.trade.precreate":
            trade = self._open_trade(params, biz)
            return {"out_trade_no": trade.out_trade_no,
                    "qr_code": f"{base}/cashier?{urlencode({'out_trade_no': trade.out_trade_no})}"}
        if method == "alipay.trade.query":
            trade = self._find(biz)
            answer: dict[str, object] = {
                "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
                "total_amount": yuan(trade.amount_cents), "buyer_logon_id": "138******00",
                "buyer_user_id": trade.buyer_id}
            if trade.paid_at is not None:
                answer.update(send_pay_date=beijing_time(trade.paid_at), receipt_amount=yuan(trade.amount_cents),
                              buyer_pay_amount=yuan(trade.amount_cents))
            return answer
        if method == "alipay.trade.refund":
            return self._refund(biz)
        if method == "alipay.trade.fastpay.refund.query":
            trade = self._find(biz)
            request_no = str(biz.get("out_request_no") or trade.out_trade_no)
            base_answer: dict[str, object] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
            shown = request_no in trade.refunds and (trade.out_trade_no, request_no) not in self._held
            self.refund_calls.append(SimRefundCall("query", trade.out_trade_no, request_no,
                                                   "shown" if shown else "not_shown"))
            if not shown:
                return base_answer  # Alipay: a success answer without refund data = no such refund
            amount, at = trade.refunds[request_no]
            return {**base_answer, "out_request_no": request_no, "total_amount": yuan(trade.amount_cents),
                    "refund_amount": yuan(amount), "refund_status": "REFUND_SUCCESS",
                    "gmt_refund_pay": beijing_time(at) + ".000"}
        raise invalid("isv.invalid-method", f"不存在的方法名 {method[:60]}")

    def _refund(self, biz: dict[str, object]) -> dict[str, object]:
        trade = self._find(biz)
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        known = request_no in trade.refunds  # a re-send: Alipay answers the refund it has, nothing moves again
        try:
            answer = self._refund_trade(trade, request_no, biz)
        except Refusal:
            self.refund_calls.append(SimRefundCall("send", trade.out_trade_no, request_no, "refused"))
            raise
        self.refund_calls.append(SimRefundCall("send", trade.out_trade_no, request_no, "resend" if known else "new"))
        return answer

    def _refund_trade(self, trade: SimTrade, request_no: str, biz: dict[str, object]) -> dict[str, object]:
        amount = cents_or_none(biz.get("refund_amount"))
        if amount is None:
            raise Refusal("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
        answer: dict[str, object] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                                     "buyer_user_id": trade.buyer_id}
        if request_no in trade.refunds:
            if trade.refunds[request_no][0] != amount:
                raise Refusal("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
            return {**answer, "fund_change": "N", "refund_fee": yuan(trade.refunded_cents)}
        if self._refusing is not None:
            raise self._refusing
        if trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED") and not trade.refunds:
            raise Refusal("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.refunded_cents + amount > trade.amount_cents:
            raise Refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        now = dt.datetime.now(dt.UTC)
        trade.refunds[request_no] = (amount, now)
        if self.hold_refunds:
            self._held.add((trade.out_trade_no, request_no))
            return {**answer, "fund_change": "N", "refund_fee": yuan(trade.refunded_cents - amount)}
        if trade.refunded_cents == trade.amount_cents:
            trade.status, trade.closed_at = "TRADE_CLOSED", now  # fully refunded trades close
        self._emit(trade)
        return {**answer, "fund_change": "Y", "refund_fee": yuan(trade.refunded_cents),
                "gmt_refund_pay": beijing_time(now)}

    # ------------------------------------------------------------ HTTP: the hosted cashier (收银台)

    async def _cashier_page(self, request: Request) -> Response:
        with self._lock:
            trade = self.trades.get(request.query_params.get("out_trade_no", ""))
            if trade is None:
                return HTMLResponse("<h1>交易不存在</h1>", status_code=404)
            subject, amount, status, no = trade.subject, yuan(trade.amount_cents), trade.status, trade.out_trade_no
        button = ('<form method="post" action="/cashier/pay"><input type="hidden" name="out_trade_no" '
                  f'value="{html.escape(no)}"><button type="submit">确认付款 Pay</button></form>'
                  if status == "WAIT_BUYER_PAY" else f"<p>{html.escape(status)}</p>")
        return HTMLResponse(
            "<!doctype html><html lang=zh><meta charset=utf-8><title>支付宝 (test peer)</title>"
            f"<h1>支付宝 收银台 (模拟)</h1><p>{html.escape(subject)}</p><p>¥{amount}</p>{button}</html>")

    async def _cashier_pay(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        with self._lock:
            if form.get("out_trade_no", "") not in self.trades:
                return HTMLResponse("<h1>交易不存在</h1>", status_code=404)
            trade = self.pay(form["out_trade_no"])
            if not trade.return_url:
                return HTMLResponse("<h1>支付成功</h1>")
            back = {"charset": "utf-8", "out_trade_no": trade.out_trade_no, "method": "alipay.trade.page.pay.return",
                    "total_amount": yuan(trade.amount_cents), "trade_no": trade.trade_no, "auth_app_id": self.app_id,
                    "version": "1.0", "app_id": self.app_id, "sign_type": "RSA2", "seller_id": self.seller_id,
                    "timestamp": beijing_time(dt.datetime.now(dt.UTC))}
            back["sign"] = rsa2_sign(string_to_sign(back, ("sign", "sign_type"), keep_empty=True), self._platform_key)
        separator = "&" if "?" in trade.return_url else "?"
        return RedirectResponse(f"{trade.return_url}{separator}{urlencode(back)}", status_code=303)


def main(argv: list[str] | None = None) -> None:
    """Serve the peer in auto mode with fresh keys; print the shop's AlipayConfig as JSON."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m quanyi.testpeers.alipay", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9010)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    simulator = AlipaySimulator(mode="auto")
    print(json.dumps(simulator.merchant_config(f"http://{args.host}:{args.port}"), indent=2), flush=True)
    try:
        uvicorn.run(simulator.app, host=args.host, port=args.port, log_level="info")
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
