"""TEST PEER — WeChat Pay API v3 (微信支付) server side, for tests and the demo. Never for production.

Plays api.mch.weixin.qq.com for one merchant: verifies the merchant's `WECHATPAY2-SHA256-RSA2048`
request signatures (401 SIGN_ERROR otherwise), answers Native orders with a `weixin://` code_url, trade
queries, refunds (idempotent on out_refund_no, never above the trade in total) and refund queries, signs
every answer with its own WeChat Pay platform key, and builds TRANSACTION.SUCCESS notifications encrypted
with the APIv3 key (AEAD_AES_256_GCM) and signed like the real ones. The signature code here is written
independently of quanyi.payments.wechat so that one side's mistake is not mirrored by the other.

Notification delivery: `auto` POSTs to notify_url with retries and backoff until the shop answers 2xx;
`manual` queues them for `take_notifications()`. Knobs: `pay`, `fail_next`, `latency`, `lose_next`,
`forge_answers`, `clock` (the time by which unpaid trades close), and `notification(...)` for duplicate /
stale / out-of-order / forged / tampered ones.

    python -m quanyi.testpeers.wechat --port 8720   # auto mode, fresh keys, prints the merchant config JSON
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from quanyi.money import format_money
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.wechat_wire import (
    AUTH,
    OUT_NO,
    PAIR,
    Refund,
    SimNotification,
    Trade,
    new_rsa_key,
    now_text,
    pem_private,
    pem_public,
    platform_certificate,
)

__all__ = ["WechatPaySimulator", "SimNotification", "new_rsa_key", "pem_private", "pem_public"]

class WechatPaySimulator:
    """One merchant's view of WeChat Pay. All state is behind one lock (uvicorn thread + test thread)."""

    def __init__(self, *, mode: Literal["auto", "manual"] = "manual", mchid: str = "1900009191",
                 appid: str = "wxd678efh567hg6787", retry_delays: tuple[float, ...] = (0.2, 1, 3, 10, 30),
                 refund_status: str = "PROCESSING",
                 verify_with: Literal["public_key", "certificate"] = "public_key") -> None:
        """`verify_with`: the merchant verifies with the WeChat Pay public key (Wechatpay-Serial PUB_KEY_ID_...) or,
        the older scheme, with the platform certificate (Wechatpay-Serial = the certificate's serial)."""
        self.mode = mode
        self.verify_with = verify_with
        self.mchid, self.appid = mchid, appid
        self.merchant_key = new_rsa_key()  # the merchant's apiclient_key.pem: handed out by merchant_config()
        self.merchant_serial_no = secrets.token_hex(20).upper()
        self.platform_key = new_rsa_key()
        self.platform_key_id = "PUB_KEY_ID_" + "".join(secrets.choice("0123456789") for _ in range(30))
        # The platform certificate of the same key: WeChat's are valid five years, serials 40 hex digits.
        issued = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        self.platform_serial = f"{secrets.randbits(159) | 1 << 158:X}"
        self.platform_certificate = platform_certificate(self.platform_key, serial=int(self.platform_serial, 16),
                                                         not_before=issued,
                                                         not_after=issued + dt.timedelta(days=5 * 365))
        self.apiv3_key = secrets.token_hex(16)  # 32 ASCII characters
        self.retry_delays = retry_delays
        self.refund_status = refund_status
        self.base_url = ""
        self.fail_next_status = 500
        self.latency = 0.0
        self.forge_answers = False
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # trades close by this clock
        self.deliveries: list[tuple[str, int | str]] = []  # auto mode: (event id, HTTP status or error)
        self.lost: list[SimNotification] = []
        self._fail_next = 0
        self._lose_next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._trades: dict[str, Trade] = {}
        self._codes: dict[str, str] = {}  # code_url token -> out_trade_no
        self._refunds: dict[str, Refund] = {}
        self._queue: list[SimNotification] = []
        self._threads: list[threading.Thread] = []
        self.app = self._build_app()

    # ------------------------------------------------------------ test / demo knobs

    def merchant_config(self, base_url: str | None = None) -> dict[str, Any]:
        """What the shop's WechatConfig needs to talk to this simulator."""
        verify: dict[str, str] = (
            {"platform_certificate": self.platform_certificate} if self.verify_with == "certificate" else
            {"platform_public_key": pem_public(self.platform_key), "platform_public_key_id": self.platform_key_id})
        return {"mchid": self.mchid, "appid": self.appid, "merchant_serial_no": self.merchant_serial_no,
                "merchant_private_key": pem_private(self.merchant_key), "apiv3_key": self.apiv3_key,
                **verify, "base_url": base_url or self.base_url}

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_next, self.fail_next_status = count, status

    def lose_next(self, count: int = 1) -> None:
        """The next `count` notifications are never sent (the shop must find the payment by querying)."""
        with self._lock:
            self._lose_next = count

    def trade_state(self, out_trade_no: str) -> str | None:
        with self._lock:
            trade = self._trades.get(out_trade_no)
            return None if trade is None else self._current_state(trade)

    def pay(self, out_trade_no: str, *, late: bool = False, payer_openid: str | None = None) -> str:
        """The buyer scans and pays; emits the notification; returns the transaction_id.

        `late`: pay even past the trade's time_expire (a payment racing the order's expiry).
        `payer_openid`: who pays (payer.openid); a fixed default buyer otherwise."""
        with self._lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                raise KeyError(f"no trade {out_trade_no}")
            state = self._current_state(trade) if not late else trade.state
            if state not in ("NOTPAY", "USERPAYING"):
                raise ValueError(f"trade {out_trade_no} is {state}, cannot pay")
            trade.state = "SUCCESS"
            trade.transaction_id = "4200" + "".join(secrets.choice("0123456789") for _ in range(24))
            trade.success_time = now_text()
            if payer_openid is not None:
                trade.payer_openid = payer_openid
            transaction_id = trade.transaction_id
        self._emit(self.notification(out_trade_no))
        return transaction_id

    def notification(self, out_trade_no: str, *, trade_state: str | None = None, total: int | None = None,
                     timestamp: int | None = None, forged: bool = False, tamper_total: int | None = None,
                     event_id: str | None = None, event_type: str = "TRANSACTION.SUCCESS") -> SimNotification:
        """A notification about a trade as it is now, optionally altered: another state (out of order), another
        amount signed correctly (`total`), a stale `timestamp`, a wrong signing key (`forged`), or the amount
        changed after signing (`tamper_total`)."""
        with self._lock:
            trade = self._trades[out_trade_no]
            transaction = self._transaction_json(trade)
        if trade_state is not None:
            transaction["trade_state"] = trade_state
        if total is not None:
            transaction["amount"]["total"] = transaction["amount"]["payer_total"] = total
        event_id = event_id or f"EV-{secrets.token_hex(10)}"
        body = self._envelope(event_id, event_type, transaction)
        headers = self._signed_headers(body, key=new_rsa_key() if forged else self.platform_key, timestamp=timestamp)
        if tamper_total is not None:
            transaction["amount"]["total"] = transaction["amount"]["payer_total"] = tamper_total
            body = self._envelope(event_id, event_type, transaction)
        headers["Content-Type"] = "application/json"
        return SimNotification(trade.notify_url, headers, body, event_id, out_trade_no)

    def resigned(self, notification: SimNotification) -> SimNotification:
        """The same notification (same id and body) signed again now, as WeChat Pay does for each retry."""
        headers = {**self._signed_headers(notification.body, key=self.platform_key), "Content-Type": "application/json"}
        return SimNotification(notification.url, headers, notification.body, notification.event_id,
                               notification.out_trade_no)

    def take_notifications(self) -> list[SimNotification]:
        with self._lock:
            taken, self._queue = self._queue, []
        return taken

    def settle_refunds(self, status: str = "SUCCESS", *, from_status: str = "PROCESSING") -> None:
        """Refunds still PROCESSING reach `status` (SUCCESS, ABNORMAL or CLOSED). `from_status="ABNORMAL"`: the
        merchant handled its abnormal refunds on the merchant platform (发起异常退款), which then reach `status`."""
        with self._lock:
            for refund in self._refunds.values():
                if refund.status == from_status:
                    refund.status = status
                    refund.success_time = now_text() if status == "SUCCESS" else None

    def scan_url(self, code_url: str) -> str:
        """The demo's stand-in for scanning code_url with the WeChat app: a page with a pay button."""
        return f"{self.base_url}/sim/scan?pr={code_url.rsplit('pr=', 1)[-1]}"

    @contextmanager
    def serve(self, port: int | None = None) -> Iterator[str]:
        with serve_in_thread(self.app, port=port) as url:
            self.base_url = url
            try:
                yield url
            finally:
                self.close()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    # ------------------------------------------------------------ signatures (independent of the shop's code)

    def _signed_headers(self, body: bytes, *, key: rsa.RSAPrivateKey, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(16)
        message = b"%s\n%s\n%s\n" % (stamp.encode(), nonce.encode(), body)
        signature = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
        return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
                "Wechatpay-Serial": self.platform_serial if self.verify_with == "certificate" else self.platform_key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Request-ID": secrets.token_hex(16)}

    def _envelope(self, event_id: str, event_type: str, transaction: dict[str, Any]) -> bytes:
        nonce = secrets.token_hex(6)
        plaintext = json.dumps(transaction, ensure_ascii=False).encode()
        ciphertext = AESGCM(self.apiv3_key.encode()).encrypt(nonce.encode(), plaintext, b"transaction")
        return json.dumps({
            "id": event_id, "create_time": now_text(), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": "transaction",
                         "nonce": nonce},
        }, ensure_ascii=False).encode()

    def _authenticate(self, request: Request, body: bytes) -> str | None:
        """Why the merchant's request signature is not acceptable, or None."""
        match = AUTH.match(request.headers.get("authorization", ""))
        if not match:
            return "Authorization is not WECHATPAY2-SHA256-RSA2048"
        fields = dict(PAIR.findall(match.group(1).replace(",", " ")))
        if fields.get("mchid") != self.mchid or fields.get("serial_no") != self.merchant_serial_no:
            return "mchid or serial_no does not match"
        stamp, nonce = fields.get("timestamp", ""), fields.get("nonce_str", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300 or not nonce:
            return "timestamp expired or nonce missing"
        target = request.scope["raw_path"].decode() + (f"?{request.url.query}" if request.url.query else "")
        message = f"{request.method}\n{target}\n{stamp}\n{nonce}\n".encode() + body + b"\n"
        try:
            self.merchant_key.public_key().verify(base64.b64decode(fields.get("signature", "")), message,
                                                  padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 - any failure is a bad signature
            return "signature does not verify"
        return None

    def _answer(self, status: int, payload: dict[str, Any] | None) -> Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        key = new_rsa_key() if self.forge_answers else self.platform_key
        return Response(body, status_code=status, media_type="application/json",
                        headers=self._signed_headers(body, key=key))

    def _error(self, status: int, code: str, message: str) -> Response:
        return self._answer(status, {"code": code, "message": message})

    # ------------------------------------------------------------ state

    def _current_state(self, trade: Trade) -> str:
        if trade.state == "NOTPAY" and trade.time_expire and trade.time_expire <= self.clock():
            trade.state = "CLOSED"
        return trade.state

    def _transaction_json(self, trade: Trade) -> dict[str, Any]:
        state = self._current_state(trade)
        data: dict[str, Any] = {
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": trade.out_trade_no, "trade_type": "NATIVE",
            "trade_state": state, "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付"}.get(state, state),
            "attach": "", "amount": {"total": trade.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if trade.transaction_id:
            data.update(transaction_id=trade.transaction_id, bank_type="OTHERS", success_time=trade.success_time,
                        payer={"openid": trade.payer_openid})
            data["amount"]["payer_total"] = trade.total
        return data

    def _refund_json(self, refund: Refund) -> dict[str, Any]:
        total = refund.trade.total
        return {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.trade.transaction_id, "out_trade_no": refund.trade.out_trade_no,
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱", "success_time": refund.success_time,
            "create_time": refund.create_time, "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {"total": total, "refund": refund.amount, "payer_total": total, "payer_refund": refund.amount,
                       "settlement_refund": refund.amount, "settlement_total": total, "discount_refund": 0,
                       "currency": "CNY", "refund_fee": 0},
        }

    # ------------------------------------------------------------ notification delivery

    def _emit(self, notification: SimNotification) -> None:
        with self._lock:
            if self._lose_next > 0:
                self._lose_next -= 1
                self.lost.append(notification)
                return
            if self.mode == "manual":
                self._queue.append(notification)
                return
        thread = threading.Thread(target=self._deliver, args=(notification,), daemon=True,
                                  name=f"wechat-notify:{notification.event_id}")
        self._threads.append(thread)
        thread.start()

    def _deliver(self, notification: SimNotification) -> None:
        """Re-send the same notification (same id and body, fresh signature) until a 2xx, like WeChat Pay."""
        with httpx.Client(timeout=30.0) as client:
            for delay in (0.0, *self.retry_delays):
                if self._stop.wait(delay):
                    return
                fresh = self.resigned(notification)
                try:
                    status: int | str = client.post(fresh.url, content=fresh.body, headers=fresh.headers).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self._lock:
                    self.deliveries.append((notification.event_id, status))
                if isinstance(status, int) and 200 <= status < 300:
                    return

    # ------------------------------------------------------------ the HTTP API

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="WeChat Pay v3 simulator (TEST PEER)", docs_url=None, redoc_url=None)

        async def guarded(request: Request) -> tuple[Response | None, dict[str, Any]]:
            if self.latency:
                await asyncio.sleep(self.latency)
            with self._lock:
                if self._fail_next > 0:
                    self._fail_next -= 1
                    return Response('{"code":"SYSTEM_ERROR","message":"系统错误"}', self.fail_next_status,
                                    media_type="application/json"), {}
            body = await request.body()
            problem = self._authenticate(request, body)
            if problem:  # not signed: the merchant's identity is unknown
                return Response(json.dumps({"code": "SIGN_ERROR", "message": problem}), 401,
                                media_type="application/json"), {}
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                return self._error(400, "PARAM_ERROR", "body is not JSON"), {}
            if not isinstance(data, dict):
                return self._error(400, "PARAM_ERROR", "body is not a JSON object"), {}
            return None, data

        @app.post("/v3/pay/transactions/native")
        async def native(request: Request) -> Response:
            refused, data = await guarded(request)
            if refused:
                return refused
            amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
            total, no = amount.get("total"), data.get("out_trade_no")
            if data.get("appid") != self.appid or data.get("mchid") != self.mchid:
                return self._error(400, "PARAM_ERROR", "appid和mch_id不匹配")
            if not isinstance(total, int) or isinstance(total, bool) or total <= 0 or amount.get("currency") != "CNY":
                return self._error(400, "PARAM_ERROR", "amount.total must be a positive integer in fen, CNY")
            description, notify_url = data.get("description"), data.get("notify_url")
            if not isinstance(no, str) or not 6 <= len(no) <= 32 or not OUT_NO.match(no):
                return self._error(400, "PARAM_ERROR", "out_trade_no invalid")
            if not isinstance(description, str) or not 1 <= len(description) <= 127:
                return self._error(400, "PARAM_ERROR", "description invalid")
            if not isinstance(notify_url, str) or not re.match(r"^https?://[^?#\s]+$", notify_url):
                return self._error(400, "PARAM_ERROR", "notify_url must be an http(s) URL without parameters")
            expire = None
            if "time_expire" in data:
                try:
                    expire = dt.datetime.fromisoformat(str(data["time_expire"]))
                except ValueError:
                    expire = None
                if expire is None or expire.tzinfo is None:
                    return self._error(400, "PARAM_ERROR", "time_expire is not RFC 3339 with an offset")
            with self._lock:
                trade = self._trades.get(no)
                if trade is None:
                    token = secrets.token_urlsafe(9)
                    trade = Trade(no, description, total, notify_url, f"weixin://wxpay/bizpayurl?pr={token}", expire)
                    self._trades[no], self._codes[token] = trade, no
                state = self._current_state(trade)
                if state in ("SUCCESS", "REFUND"):
                    return self._error(400, "ORDERPAID", "该订单已支付")
                if state == "CLOSED":
                    return self._error(400, "ORDER_CLOSED", "订单已关闭")
                if (trade.total, trade.description) != (total, description):
                    return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
                return self._answer(200, {"code_url": trade.code_url})

        @app.get("/v3/pay/transactions/out-trade-no/{out_trade_no}")
        async def query(out_trade_no: str, request: Request) -> Response:
            refused, _ = await guarded(request)
            if refused:
                return refused
            if request.query_params.get("mchid") != self.mchid:
                return self._error(400, "PARAM_ERROR", "mchid invalid")
            with self._lock:
                trade = self._trades.get(out_trade_no)
                if trade is None:
                    return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
                return self._answer(200, self._transaction_json(trade))

        @app.post("/v3/refund/domestic/refunds")
        async def refund(request: Request) -> Response:
            refused, data = await guarded(request)
            if refused:
                return refused
            amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
            asked, total, no = amount.get("refund"), amount.get("total"), data.get("out_refund_no")
            if not isinstance(no, str) or not OUT_NO.match(no):
                return self._error(400, "PARAM_ERROR", "out_refund_no invalid")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (asked, total)) \
                    or amount.get("currency") != "CNY":
                return self._error(400, "PARAM_ERROR", "amount.refund/total must be positive integers in fen, CNY")
            with self._lock:
                trade = self._trades.get(str(data.get("out_trade_no")))
                if trade is None or trade.transaction_id is None:
                    return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
                existing = self._refunds.get(no)
                if existing is not None:
                    if (existing.trade is not trade or existing.amount != asked):
                        return self._error(400, "INVALID_REQUEST", "退款请求参数与原请求不一致")
                    return self._answer(200, self._refund_json(existing))
                if total != trade.total:
                    return self._error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
                refunded = sum(self._refunds[r].amount for r in trade.refunds
                               if self._refunds[r].status in ("SUCCESS", "PROCESSING"))
                if refunded + asked > trade.total:  # type: ignore[operator]
                    return self._error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
                item = Refund(no, "50" + "".join(secrets.choice("0123456789") for _ in range(28)), trade,
                               asked, str(data.get("reason", "")), now_text(), self.refund_status)  # type: ignore[arg-type]
                if item.status == "SUCCESS":
                    item.success_time = now_text()
                self._refunds[no] = item
                trade.refunds.append(no)
                trade.state = "REFUND"
                return self._answer(200, self._refund_json(item))

        @app.get("/v3/refund/domestic/refunds/{out_refund_no}")
        async def refund_query(out_refund_no: str, request: Request) -> Response:
            refused, _ = await guarded(request)
            if refused:
                return refused
            with self._lock:
                item = self._refunds.get(out_refund_no)
                if item is None:
                    return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                return self._answer(200, self._refund_json(item))

        @app.get("/sim/scan", response_class=HTMLResponse)
        async def scan_page(pr: str) -> HTMLResponse:
            with self._lock:
                trade = self._trades.get(self._codes.get(pr, ""))
                if trade is None:
                    return HTMLResponse("<h1>二维码无效</h1>", 404)
                state, text = self._current_state(trade), f"{trade.description} — {format_money(trade.total, 'CNY')}"
            button = ('<form method="post" action="/sim/scan"><input type="hidden" name="pr" value="'
                      f'{html.escape(pr)}"><button>确认支付 Pay</button></form>' if state == "NOTPAY" else "")
            return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>微信支付 (simulator)</title>"
                                f"<h1>微信支付 (simulator)</h1><p>{html.escape(text)}</p><p>{state}</p>{button}")

        @app.post("/sim/scan", response_class=HTMLResponse)
        async def scan_pay(request: Request) -> HTMLResponse:
            form = await request.form()
            no = self._codes.get(str(form.get("pr", "")))
            try:
                await asyncio.to_thread(self.pay, no or "")
            except (KeyError, ValueError) as exc:
                return HTMLResponse(f"<h1>支付失败</h1><p>{html.escape(str(exc))}</p>", 409)
            return HTMLResponse("<!doctype html><meta charset=utf-8><h1>支付成功 Paid</h1>")

        return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="WeChat Pay v3 simulator (TEST PEER, auto notifications)")
    parser.add_argument("--port", type=int, default=8720)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    sim = WechatPaySimulator(mode="auto")
    sim.base_url = f"http://{args.host}:{args.port}"
    print(json.dumps(sim.merchant_config(), indent=2), flush=True)
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
