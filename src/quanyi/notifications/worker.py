"""The outbox worker: claim due messages, send them outside any transaction, record the outcome.

Runs inside `quanyi serve` (tasks.py) and as `quanyi worker` processes; any number of workers share the
outbox safely (see `outbox.claim_due`). Delivery is at least once: a worker that dies after sending but
before recording leaves a lease that expires, and the message is sent again, carrying the same
idempotency key (SMS OutId, e-mail Message-ID) so the receiving side can recognise the copy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

import jinja2

from quanyi.context import ShopContext
from quanyi.db import is_database_unavailable, utcnow
from quanyi.errors import DomainError
from quanyi.inventory.schemas import RevealedKey
from quanyi.leased_worker import LeasedWorker, worker_owner
from quanyi.notifications import outbox
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, MessageStatus
from quanyi.notifications.rendering import render_email, render_robot
from quanyi.notifications.senders import (
    AliyunSmsSender,
    DingTalkRobotSender,
    Outgoing,
    Sender,
    SendFailed,
    SmtpSender,
    WebhookRequest,
    WebhookSender,
    WeComRobotSender,
)
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_link_token
from quanyi.shoptime import shop_zone
from quanyi.urls import shop_base_url

__all__ = ["OutboxWorker", "build_senders", "order_link", "ClaimedMessage"]

logger = logging.getLogger(__name__)
# Retrying to record a sent message: about 15 s in all, far inside the lease (notification_lease_seconds >= 60).
_RECORD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 7.0)


def build_senders(ctx: ShopContext) -> dict[Channel, Sender]:
    """One sender per configured channel (the same rule that decides what gets enqueued)."""
    s = ctx.settings
    policy = notifications_service.NotificationPolicy.from_settings(s)
    senders: dict[Channel, Sender] = {Channel.WEBHOOK: WebhookSender(http=ctx.http)}
    if Channel.EMAIL in policy.channels:
        senders[Channel.EMAIL] = SmtpSender(
            host=s.smtp_host or "", port=s.smtp_port, username=s.smtp_username,
            password=s.smtp_password.get_secret_value(), security=s.smtp_security, from_address=s.smtp_from)
    if Channel.SMS in policy.channels:
        senders[Channel.SMS] = AliyunSmsSender(
            http=ctx.http, api_url=s.sms_api_url, access_key_id=s.sms_access_key_id,
            access_key_secret=s.sms_access_key_secret.get_secret_value(), sign_name=s.sms_sign_name)
    if Channel.WECOM in policy.channels:
        senders[Channel.WECOM] = WeComRobotSender(http=ctx.http, webhook_url=s.wecom_webhook_url or "")
    if Channel.DINGTALK in policy.channels:
        senders[Channel.DINGTALK] = DingTalkRobotSender(
            http=ctx.http, webhook_url=s.dingtalk_webhook_url or "", secret=s.dingtalk_secret.get_secret_value())
    return senders


def order_link(ctx: ShopContext, order_no: str) -> str:
    """Absolute link that opens the order without re-entering details, for QUANYI_ORDER_LINK_TTL_DAYS (signed with
    its expiry; see web `/orders/{no}/open`)."""
    base = shop_base_url(ctx.settings)
    expires_at = utcnow() + dt.timedelta(days=ctx.settings.order_link_ttl_days)
    token = order_link_token(ctx.settings.app_secret.get_secret_value(), order_no, expires_at)
    # In the fragment: browsers never send it, so no server or proxy log holds it; the page posts it.
    return f"{base}/orders/{order_no}/open#t={token}"


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A plain copy of a claimed row, used after its claim transaction has ended."""

    id: int
    channel: Channel
    recipient: str
    kind: str
    locale: str
    payload: dict
    idempotency_key: str
    attempts: int


class OutboxWorker(LeasedWorker):
    kind = "notification worker"
    max_batches = 10_000

    def __init__(self, ctx: ShopContext, *, owner: str | None = None, batch_size: int = 10,
                 senders: dict[Channel, Sender] | None = None) -> None:
        self.ctx = ctx
        self.owner = owner or worker_owner()
        self.batch_size = batch_size
        self.senders = senders if senders is not None else build_senders(ctx)

    async def claim(self, now: dt.datetime | None = None) -> list[ClaimedMessage]:
        s = self.ctx.settings
        async with self.ctx.db.transaction() as session:
            rows = await outbox.claim_due(
                session=session, owner=self.owner, limit=self.batch_size, now=now,
                lease=dt.timedelta(seconds=s.notification_lease_seconds), max_attempts=s.notification_max_attempts)
            return [ClaimedMessage(row.id, Channel(row.channel), row.recipient, row.kind, row.locale,
                                   dict(row.payload), outbox.idempotency_key(row), row.attempts)
                    for row in rows]

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Claim one batch and try each message once; returns how many were attempted."""
        claimed = await self.claim(now)
        # Concurrently: every message of the batch must finish within its own lease, and each send is
        # bounded by its client timeout (HTTP 10 s, SMTP 30 s), well under the lease (120 s by default).
        results = await asyncio.gather(*(self.deliver(message) for message in claimed), return_exceptions=True)
        for message, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                # Recording the outcome failed (database gone?): the lease expires and the message is retried.
                logger.error("notification %s: could not record the outcome: %r", message.id, result)
        return len(claimed)

    def poll_seconds(self) -> float:
        return self.ctx.settings.notification_poll_seconds

    def started_message(self) -> str:
        channels = ", ".join(sorted(c.value for c in self.senders)) or "none configured"
        return f"notification worker {self.owner} started (channels: {channels})"

    # ------------------------------------------------------------ one message

    async def deliver(self, message: ClaimedMessage) -> None:
        sender = self.senders.get(message.channel)
        try:
            if sender is None:
                raise SendFailed(f"channel {message.channel} is not configured on this worker", permanent=True)
            outgoing = await self._render(message)
            provider_id = await sender.send(outgoing)
        except SendFailed as exc:
            await self._failed(message, str(exc), permanent=exc.permanent)
            return
        except (jinja2.TemplateError, KeyError, ValueError, DomainError) as exc:
            # A template or payload that cannot render (or an order that cannot be revealed) will not get
            # better by waiting.
            await self._failed(message, f"cannot render: {type(exc).__name__}: {exc}", permanent=True)
            return
        except Exception as exc:
            logger.exception("notification %s: unexpected error while sending", message.id)
            await self._failed(message, f"unexpected: {type(exc).__name__}: {exc}", permanent=False)
            return
        recorded = await self._record_sent(message, provider_id)
        if not recorded:
            logger.warning("notification %s was sent but our lease had expired; another worker owns it now",
                           message.id)

    async def _record_sent(self, message: ClaimedMessage, provider_id: str | None) -> bool:
        """Record a message the provider accepted. It is out already: a database that is briefly unavailable
        (connection dropped, too many clients) is retried for a while, well within the lease, because giving
        up means the message goes out a second time when the lease runs out."""
        delays = _RECORD_RETRY_DELAYS
        for attempt in range(len(delays) + 1):
            try:
                async with self.ctx.db.transaction() as session:
                    return await outbox.record_sent(
                        session=session, message_id=message.id, owner=self.owner, provider_message_id=provider_id)
            except Exception as exc:
                if attempt == len(delays) or not is_database_unavailable(exc):
                    raise
                logger.warning("notification %s was sent; recording it failed (%s), retrying in %.1f s",
                               message.id, type(exc).__name__, delays[attempt])
                await asyncio.sleep(delays[attempt])
        raise AssertionError("unreachable")

    async def _failed(self, message: ClaimedMessage, error: str, *, permanent: bool) -> None:
        s = self.ctx.settings
        async with self.ctx.db.transaction() as session:
            status = await outbox.record_failure(
                session=session, message_id=message.id, owner=self.owner, error=error, permanent=permanent,
                max_attempts=s.notification_max_attempts, backoff_seconds=s.notification_backoff_seconds)
        level = logging.ERROR if status is MessageStatus.DEAD else logging.WARNING
        logger.log(level, "notification %s (%s %s) attempt %d failed -> %s: %s", message.id, message.channel,
                   message.kind, message.attempts, status.value if status else "lease lost", error)

    async def _render(self, message: ClaimedMessage) -> Outgoing:
        base = {"outbox_id": message.id, "idempotency_key": message.idempotency_key, "recipient": message.recipient}
        p = message.payload
        if message.channel is Channel.WEBHOOK:
            return await self._render_callback(base, message)
        if message.channel is Channel.EMAIL:
            keys = await self._reveal_for_email(message) if self.ctx.settings.email_include_keys and \
                message.kind == Kind.ORDER_DELIVERED else None  # only a delivery e-mail carries keys
            content = render_email(message.kind, message.locale, p, shop_name=self.ctx.settings.shop_name,
                                   order_url=order_link(self.ctx, p["order_no"]) if "order_no" in p else "",
                                   keys=keys, zone=shop_zone(self.ctx.settings.shop_timezone))
            return Outgoing(**base, email=content)
        if message.channel is Channel.SMS and message.kind in notifications_service.ONE_TIME_CODES:
            return Outgoing(**base, sms_template=self._sms_template(message),
                            sms_params={"code": str(p["code"]), "minutes": str(p["minutes"])})
        if message.channel is Channel.SMS:
            return Outgoing(**base, sms_template=self._sms_template(message), sms_params={
                "order_no": str(p["order_no"]), "product": str(p["product_name"])[:20],
                "link": order_link(self.ctx, p["order_no"]),
            })
        return Outgoing(**base, robot=render_robot(message.kind, message.locale, p))

    async def _render_callback(self, base: dict, message: ClaimedMessage) -> Outgoing:  # type: ignore[type-arg]
        """An account customer's callback, signed now with its current secret (resellers feature)."""
        from quanyi.resellers import callbacks as reseller_callbacks

        async with self.ctx.db.read_session() as session:
            built = await reseller_callbacks.build_callback(session=session, cipher=self.ctx.cipher,
                                                            order_id=int(message.payload["order_id"]),
                                                            event=message.kind)
        if built is None:
            return Outgoing(**base, skip_reason="no callback URL for this account")
        return Outgoing(**base, webhook=WebhookRequest(url=built.url, body=built.body, headers=built.headers))

    def _sms_template(self, message: ClaimedMessage) -> str:
        s = self.ctx.settings
        template = ""
        if message.kind in notifications_service.ONE_TIME_CODES:
            template = s.sms_template_verification_code
        elif message.kind == Kind.ORDER_DELIVERED:
            english = message.locale == "en" and s.sms_template_order_delivered_en
            template = s.sms_template_order_delivered_en if english else s.sms_template_order_delivered
        if not template:  # enqueued before its template setting was removed
            raise SendFailed(f"no SMS template for {message.kind}", permanent=True)
        return template

    async def _reveal_for_email(self, message: ClaimedMessage) -> list[RevealedKey]:
        """Decrypt the keys only now, and record it in the reveal audit as channel "email"."""
        async with self.ctx.db.transaction() as session:
            order = await orders_service.get_order_by_id(session=session, order_id=int(message.payload["order_id"]))
            return await orders_service.reveal_order_keys(
                session=session, cipher=self.ctx.cipher, order=order, channel="email", ip="",
                user_agent=f"notification worker {self.owner} (outbox {message.id})")
