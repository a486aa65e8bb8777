"""TEST PEER — an SMS provider speaking Aliyun's SendSms protocol (dysmsapi, RPC style, HMAC-SHA1).

It checks what the real service checks: known AccessKeyId, signature over the canonicalized parameters
(recomputed here independently of the shop's signer), timestamp within 15 minutes, nonce never reused,
registered sign name and template, every ${variable} of the template supplied. Accepted messages are
recorded with their rendered text. Knob: `fail_next` answers that many requests with HTTP 503.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["SmsSimulator", "SmsRecord"]

_WINDOW = dt.timedelta(minutes=15)
_PHONE = re.compile(r"^(1[3-9]\d{9}|\+?[1-9]\d{7,14})$")


def _pct(value: str) -> str:
    # The doc's recipe: URL-encode in UTF-8, then '+' -> %20, '*' -> %2A, %7E -> '~'.
    return quote(value, safe="", encoding="utf-8").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


@dataclass(frozen=True)
class SmsRecord:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    text: str
    out_id: str
    biz_id: str


@dataclass
class SmsSimulator:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    templates: dict[str, str]  # TemplateCode -> registered text with ${name} variables
    fail_next: int = 0
    messages: list[SmsRecord] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rejected.clear()
            self.fail_next = 0

    def _refuse(self, code: str, message: str, status: int = 400) -> JSONResponse:
        self.rejected.append(code)
        return JSONResponse({"Code": code, "Message": message, "RequestId": secrets.token_hex(8)}, status_code=status)

    async def _send(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"Code": "isp.SYSTEM_ERROR", "Message": "service unavailable"}, status_code=503)
            return self._check_and_record(request.method, params)

    def _check_and_record(self, method: str, params: dict[str, str]) -> JSONResponse:
        given = params.get("Signature", "")
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return self._refuse("InvalidAction", "unknown Action or Version")
        if params.get("AccessKeyId") != self.access_key_id:
            return self._refuse("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return self._refuse("InvalidSignatureMethod", "unsupported signature method")
        canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()) if k != "Signature")
        to_sign = f"{method}&{_pct('/')}&{_pct(canonical)}"
        expected = base64.b64encode(
            hmac.new((self.access_key_secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, given):
            return self._refuse("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        try:
            stamp = dt.datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return self._refuse("InvalidTimeStamp.Format", "Timestamp must be ISO 8601 UTC")
        if abs(dt.datetime.now(dt.UTC) - stamp) > _WINDOW:
            return self._refuse("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self._nonces:
            return self._refuse("SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(nonce)
        if params.get("SignName") != self.sign_name:
            return self._refuse("isv.SMS_SIGNATURE_ILLEGAL", "unknown sign name", 200)
        template = self.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return self._refuse("isv.SMS_TEMPLATE_ILLEGAL", "unknown template", 200)
        if not _PHONE.match(params.get("PhoneNumbers", "")):
            return self._refuse("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number", 200)
        try:
            values = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return self._refuse("isv.INVALID_JSON_PARAM", "TemplateParam is not JSON", 200)
        needed = set(re.findall(r"\$\{(\w+)\}", template))
        if not isinstance(values, dict) or not needed <= set(values):
            return self._refuse("isv.TEMPLATE_MISSING_PARAMETERS", "template parameters missing", 200)
        text = re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), template)
        biz_id = secrets.token_hex(10)
        self.messages.append(SmsRecord(
            phone=params["PhoneNumbers"], sign_name=params["SignName"], template_code=params["TemplateCode"],
            params={str(k): str(v) for k, v in values.items()}, text=f"【{params['SignName']}】{text}",
            out_id=params.get("OutId", ""), biz_id=biz_id))
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": secrets.token_hex(8)})

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._send, methods=["GET", "POST"])])
