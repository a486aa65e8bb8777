"""Channels behind one `Sender` interface: SMTP e-mail, Aliyun-style SMS, WeCom and DingTalk group robots.

A sender sends one message and returns the provider's message id, or raises SendFailed: `permanent`
when retrying cannot help (a refused recipient, a rejected template), otherwise the worker retries with
backoff. Every sender is handed the outbox id as its idempotency key where the provider has one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosmtplib
import httpx

from quanyi.notifications.aliyun import rpc_signature
from quanyi.notifications.models import Channel
from quanyi.notifications.rendering import EmailContent, RobotContent

__all__ = ["SendFailed", "Sender", "Outgoing", "SmtpSender", "AliyunSmsSender", "WeComRobotSender",
           "DingTalkRobotSender", "WebhookRequest", "WebhookSender", "email_message_id", "dingtalk_sign"]


class SendFailed(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A signed HTTP callback, ready to send (built by the feature that owns the account)."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message. `idempotency_key` is stable across retries of the same outbox row."""

    outbox_id: int
    idempotency_key: str
    recipient: str
    email: EmailContent | None = None
    sms_template: str = ""
    sms_params: dict[str, str] = field(default_factory=dict)
    robot: RobotContent | None = None
    webhook: WebhookRequest | None = None
    skip_reason: str = ""  # a webhook with nowhere to go: recorded as handled, nothing sent


class Sender(Protocol):
    channel: Channel

    async def send(self, message: Outgoing) -> str | None: ...


def email_message_id(idempotency_key: str, from_address: str) -> str:
    """Deterministic Message-ID: a retried e-mail carries the same id, so mail systems can drop the copy."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "quanyi.invalid"
    return f"<{idempotency_key}@{domain}>"


class SmtpSender:
    channel = Channel.EMAIL

    def __init__(self, *, host: str, port: int, username: str | None, password: str, security: str,
                 from_address: str, timeout: float = 30.0) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.security, self.from_address, self.timeout = security, from_address, timeout

    def build(self, message: Outgoing) -> EmailMessage:
        assert message.email is not None
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = message.email.subject
        mail["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        mail["Message-ID"] = email_message_id(message.idempotency_key, self.from_address)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the shop
        mail.set_content(message.email.text)
        mail.add_alternative(message.email.html, subtype="html")
        return mail

    async def send(self, message: Outgoing) -> str | None:
        mail = self.build(message)
        try:
            await aiosmtplib.send(
                mail, hostname=self.host, port=self.port, username=self.username or None,
                password=self.password or None, use_tls=self.security == "ssl",
                start_tls=self.security == "starttls", timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            raise SendFailed(f"SMTP refused the recipient: {exc}", permanent=all(c >= 500 for c in codes)) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx: try later; 5xx: the server will not take this message (or our login) as it is.
            raise SendFailed(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
        return str(mail["Message-ID"])


# Aliyun SMS error codes that no retry can fix (bad number, template or signature, bad credentials).
_SMS_PERMANENT = {
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL", "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT", "isv.ACCOUNT_NOT_EXISTS",
    "InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch", "isv.BLACK_KEY_CONTROL_LIMIT",
}


class AliyunSmsSender:
    """SendSms of Aliyun's dysmsapi (Version 2017-05-25), signed RPC style (see quanyi.notifications.aliyun)."""

    channel = Channel.SMS

    def __init__(self, *, http: httpx.AsyncClient, api_url: str, access_key_id: str, access_key_secret: str,
                 sign_name: str, region: str = "cn-hangzhou") -> None:
        self.http, self.api_url = http, api_url
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.sign_name, self.region = sign_name, region

    def signed_params(self, message: Outgoing, *, now: dt.datetime | None = None) -> dict[str, str]:
        now = now or dt.datetime.now(dt.UTC)
        params = {
            "Action": "SendSms", "Version": "2017-05-25", "RegionId": self.region, "Format": "JSON",
            "AccessKeyId": self.access_key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
            "SignatureNonce": secrets.token_hex(16), "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": message.recipient, "SignName": self.sign_name, "TemplateCode": message.sms_template,
            "TemplateParam": json.dumps(message.sms_params, ensure_ascii=False, separators=(",", ":")),
            # OutId: the provider echoes it in delivery receipts; ours is the outbox idempotency key.
            "OutId": message.idempotency_key,
        }
        params["Signature"] = rpc_signature("POST", params, self.access_key_secret)
        return params

    async def send(self, message: Outgoing) -> str | None:
        try:
            response = await self.http.post(self.api_url, data=self.signed_params(message))
        except httpx.HTTPError as exc:
            raise SendFailed(f"SMS API unreachable: {type(exc).__name__}: {exc}") from None
        body = _json_or_none(response)
        code = str(body.get("Code", "")) if body else ""
        if response.status_code >= 500 or body is None:
            raise SendFailed(f"SMS API answered HTTP {response.status_code}: {response.text[:200]}")
        if code != "OK":
            raise SendFailed(f"SMS API refused: {code} {body.get('Message', '')}", permanent=code in _SMS_PERMANENT)
        return str(body.get("BizId") or "") or None


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _post_robot(http: httpx.AsyncClient, url: str, payload: dict[str, Any], name: str) -> None:
    """Both robots answer {"errcode": 0, "errmsg": "ok"} on success; anything else is a failure."""
    try:
        response = await http.post(url, json=payload)
    except httpx.HTTPError as exc:
        raise SendFailed(f"{name} robot unreachable: {type(exc).__name__}: {exc}") from None
    body = _json_or_none(response)
    if response.status_code != 200 or body is None:
        raise SendFailed(f"{name} robot answered HTTP {response.status_code}: {response.text[:200]}")
    if body.get("errcode") != 0:
        raise SendFailed(f"{name} robot refused: errcode={body.get('errcode')} {body.get('errmsg', '')}")


class WeComRobotSender:
    """WeCom (企业微信) group robot: POST {webhook}/cgi-bin/webhook/send?key=... markdown message."""

    channel = Channel.WECOM

    def __init__(self, *, http: httpx.AsyncClient, webhook_url: str) -> None:
        self.http, self.webhook_url = http, webhook_url

    async def send(self, message: Outgoing) -> str | None:
        assert message.robot is not None
        await _post_robot(self.http, self.webhook_url,
                          {"msgtype": "markdown", "markdown": {"content": message.robot.markdown}}, "WeCom")
        return None


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot 加签: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), to be URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class DingTalkRobotSender:
    """DingTalk (钉钉) group robot: POST /robot/send?access_token=...&timestamp=ms&sign=... markdown message."""

    channel = Channel.DINGTALK

    def __init__(self, *, http: httpx.AsyncClient, webhook_url: str, secret: str) -> None:
        self.http, self.webhook_url, self.secret = http, webhook_url, secret

    def signed_url(self, *, timestamp_ms: int | None = None) -> str:
        if not self.secret:
            return self.webhook_url
        timestamp_ms = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        parts = urlsplit(self.webhook_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("timestamp", "sign")]
        query += [("timestamp", str(timestamp_ms)), ("sign", dingtalk_sign(self.secret, timestamp_ms))]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def send(self, message: Outgoing) -> str | None:
        assert message.robot is not None
        payload = {"msgtype": "markdown", "markdown": {"title": message.robot.title, "text": message.robot.markdown}}
        await _post_robot(self.http, self.signed_url(), payload, "DingTalk")
        return None


class WebhookSender:
    """Signed callbacks to account customers (resellers): any 2xx is received; anything else is retried with
    backoff (the receiver must treat a repeat as the same event: callbacks describe a state)."""

    channel = Channel.WEBHOOK

    def __init__(self, *, http: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self.http, self.timeout = http, timeout

    async def send(self, message: Outgoing) -> str | None:
        if message.webhook is None:
            return f"not sent: {message.skip_reason or 'no callback URL'}"[:128]
        hook = message.webhook
        try:
            response = await self.http.post(hook.url, content=hook.body, headers=hook.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise SendFailed(f"callback to {hook.url} failed: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise SendFailed(f"callback to {hook.url} answered HTTP {response.status_code}: {response.text[:200]}")
        return f"HTTP {response.status_code}"
