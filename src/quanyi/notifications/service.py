"""Notifications (通知): what must be said, recorded in the outbox inside the transaction of the state change.

Hooks (`on_order_delivered`, `on_order_refund_pending`, `on_stock_taken`, `on_risk_hold`) are called by
other features' services in their own transaction: if it rolls back, the message never existed; if it
commits, the worker will send it (at least once). The shop's channel configuration travels with the
session (`install_policy` puts it into every session's `info`), so hooks need no settings argument.
A channel that is not configured is not enqueued, and that is logged once per process.
The worker's side of the outbox (claim, lease, record) is `notifications/outbox.py`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.config import Settings
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory import service as inventory_service
from quanyi.merchants import service as merchants_service
from quanyi.notifications.models import Channel, Kind, MessageStatus, OutboxMessage
from quanyi.orders.contact import mask_contact
from quanyi.orders.models import Order
from quanyi.scope import PLATFORM, PLATFORM_MERCHANT_ID, Scope

__all__ = [
    "NotificationPolicy", "NotificationNotFound", "NotificationNotRetryable", "install_policy", "policy_of",
    "enqueue", "on_order_delivered", "on_orders_delivered", "on_order_refund_pending", "on_order_refunded",
    "on_stock_taken", "on_risk_hold", "on_enterprise_top_up", "on_refund_awaiting_staff",
    "on_verification_code", "can_send_verification_code", "on_member_code", "ONE_TIME_CODES",
    "list_messages", "count_messages", "resend_order_delivered", "get_message", "retry_message", "discard_message",
    "ROBOT_CHANNELS",
]

logger = logging.getLogger(__name__)
_POLICY_KEY = "quanyi.notifications.policy"
ROBOT_CHANNELS = (Channel.WECOM, Channel.DINGTALK)
_LOW_STOCK_BUCKET_SECONDS = 3600
_warned: set[str] = set()


class NotificationNotFound(NotFound):
    code = "notification_not_found"


class NotificationNotRetryable(Conflict):
    code = "notification_not_retryable"


@dataclass(frozen=True, slots=True)
class NotificationPolicy:
    """Which channels are configured, decided once from Settings."""

    channels: frozenset[Channel]
    low_stock_threshold: int
    merchant_locale: str
    # The provider only sends registered templates: each kind of buyer SMS needs its own.
    sms_codes: bool = False  # QUANYI_SMS_TEMPLATE_VERIFICATION_CODE
    sms_delivery: bool = False  # QUANYI_SMS_TEMPLATE_ORDER_DELIVERED
    operator_email: str = ""  # QUANYI_OPERATOR_ALERT_EMAIL: operator alerts are e-mailed there too

    @classmethod
    def from_settings(cls, settings: Settings) -> NotificationPolicy:
        channels = set()
        if settings.smtp_host and settings.smtp_from:
            channels.add(Channel.EMAIL)
        sms_gateway = bool(settings.sms_access_key_id and settings.sms_access_key_secret.get_secret_value()
                           and settings.sms_sign_name)
        sms_codes = sms_gateway and bool(settings.sms_template_verification_code)
        sms_delivery = sms_gateway and bool(settings.sms_template_order_delivered)
        if sms_codes or sms_delivery:
            channels.add(Channel.SMS)
        if settings.wecom_webhook_url:
            channels.add(Channel.WECOM)
        if settings.dingtalk_webhook_url:
            channels.add(Channel.DINGTALK)
        return cls(frozenset(channels), settings.low_stock_threshold, settings.default_locale,
                   sms_codes=sms_codes, sms_delivery=sms_delivery,
                   operator_email=settings.operator_alert_email.strip())

    def sms_template_missing(self, kind: Kind) -> str | None:
        """The setting an SMS of this kind lacks, or None when it can be sent (given the channel is on)."""
        if kind in ONE_TIME_CODES:
            return None if self.sms_codes else "QUANYI_SMS_TEMPLATE_VERIFICATION_CODE"
        return None if self.sms_delivery else "QUANYI_SMS_TEMPLATE_ORDER_DELIVERED"

    def robots(self) -> list[Channel]:
        return [c for c in ROBOT_CHANNELS if c in self.channels]


def install_policy(db: Database, settings: Settings) -> NotificationPolicy:
    """Make every session of this database carry the shop's notification policy."""
    policy = NotificationPolicy.from_settings(settings)
    db.session_info[_POLICY_KEY] = policy
    return policy


def policy_of(session: AsyncSession) -> NotificationPolicy | None:
    policy = session.info.get(_POLICY_KEY)
    return policy if isinstance(policy, NotificationPolicy) else None


def _say_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.info(message, *args)


def _not_sent_because(session: AsyncSession, channel: Channel, kind: Kind) -> str | None:
    """Why a buyer message of `kind` would not go out on `channel`, or None when it would."""
    policy = policy_of(session)
    if policy is None:
        return "no notification policy is installed on this database"
    if channel not in policy.channels:
        return f"channel {channel.value} is not configured"
    if channel is Channel.SMS:
        missing = policy.sms_template_missing(kind)
        return f"{missing} is not set" if missing else None
    return None


def _enabled(session: AsyncSession, channel: Channel, kind: Kind) -> bool:
    reason = _not_sent_because(session, channel, kind)
    if reason:
        _say_once(f"off:{channel}:{kind}", "notifications: %s; %s messages are not sent by %s", reason, kind.value,
                  channel.value)
    return reason is None


# ---------------------------------------------------------------- enqueue

def _message(channel: Channel, recipient: str, kind: Kind, locale: str, payload: dict[str, Any], dedupe_key: str,
             order_id: int | None, merchant_id: int, now: dt.datetime) -> dict[str, Any]:
    """An outbox row's values."""
    return {
        "channel": channel.value, "recipient": recipient[:254], "kind": kind.value, "locale": locale[:8],
        "payload": payload, "dedupe_key": dedupe_key[:200], "status": MessageStatus.PENDING.value, "attempts": 0,
        "next_attempt_at": now, "order_id": order_id, "merchant_id": merchant_id, "created_at": now,
        "updated_at": now,
    }


async def enqueue(
    *,
    session: AsyncSession,
    channel: Channel,
    recipient: str,
    kind: Kind,
    locale: str,
    payload: dict[str, Any],
    dedupe_key: str,
    order_id: int | None = None,
    now: dt.datetime | None = None,
    merchant_id: int = PLATFORM_MERCHANT_ID,
) -> bool:
    """Record a message to send, in the caller's transaction. Returns False if `dedupe_key` already exists.
    `merchant_id`: whose message it is (the order's or SKU's merchant; platform messages: the platform's store)."""
    values = _message(channel, recipient, kind, locale, payload, dedupe_key, order_id, merchant_id, now or utcnow())
    # ON CONFLICT DO NOTHING on the unique dedupe_key: the same event enqueued twice (even by two concurrent
    # transactions) leaves one row, and never aborts the caller's transaction as an IntegrityError would.
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _order_payload(order: Order) -> dict[str, Any]:
    return {
        "order_no": order.order_no, "product_name": order.product_name, "sku_name": order.sku_name,
        "quantity": order.quantity, "total_cents": order.total_cents, "currency": order.currency,
    }


async def _account_callback(session: AsyncSession, order: Order, kind: Kind, key: str,
                            now: dt.datetime | None) -> bool:
    """An account customer's order (reseller, enterprise) moved on: its callback goes through the outbox. Where
    it goes (or whether anywhere) is decided when it is sent, from the account's settings."""
    return await enqueue(session=session, channel=Channel.WEBHOOK, recipient=f"account:{order.customer_account_id}",
                         kind=kind, locale=order.locale, payload={"order_id": order.id, "order_no": order.order_no},
                         order_id=order.id, now=now, dedupe_key=f"{kind}:{key}:{Channel.WEBHOOK}")


async def on_order_delivered(*, session: AsyncSession, order: Order, now: dt.datetime | None = None,
                             resend_key: str | None = None) -> bool:
    """An order was delivered: tell the buyer (e-mail or SMS by contact kind; an account customer by its
    callback) and alert the merchant.
    `resend_key`: an operator sends the buyer's message again (once per key); no merchant alert then.
    Returns whether a message to the buyer was recorded (False: their channel is not configured)."""
    policy = policy_of(session)
    buyer_channel = Channel.EMAIL if order.contact_kind == "email" else Channel.SMS
    enqueued = False
    if order.customer_account_id is not None:
        key = f"{order.order_no}:resend:{resend_key}" if resend_key else order.order_no
        await _account_callback(session, order, Kind.ORDER_DELIVERED, key, now)
        enqueued = True
    elif _enabled(session, buyer_channel, Kind.ORDER_DELIVERED):
        product = await catalog_service.get_product(session=session, product_id=order.product_id, active_only=False)
        payload = _delivered_payload(order, product.redemption_guide)
        key = f"{Kind.ORDER_DELIVERED}:{order.order_no}:{buyer_channel}"
        await enqueue(session=session, channel=buyer_channel, recipient=order.contact, kind=Kind.ORDER_DELIVERED,
                      locale=order.locale, payload=payload, order_id=order.id, now=now, merchant_id=order.merchant_id,
                      dedupe_key=f"{key}:resend:{resend_key}" if resend_key else key)
        enqueued = True
    if resend_key:
        return enqueued
    for robot in policy.robots() if policy else []:
        payload = {**_order_payload(order), "contact_masked": mask_contact(order.contact_kind, order.contact)}
        await enqueue(session=session, channel=robot, recipient="group", kind=Kind.ORDER_PAID,
                      locale=policy.merchant_locale, payload=payload, order_id=order.id, now=now,  # type: ignore[union-attr]
                      merchant_id=order.merchant_id, dedupe_key=f"{Kind.ORDER_PAID}:{order.order_no}:{robot}")
    return enqueued


def _delivered_payload(order: Order, guide: str | None) -> dict[str, Any]:
    # No card keys here: the worker decrypts them at send time if the shop mails keys at all.
    return {**_order_payload(order), "order_id": order.id, "guide_markdown": guide}


async def on_orders_delivered(*, session: AsyncSession, orders: Sequence[Order],
                              now: dt.datetime | None = None) -> None:
    """`on_order_delivered` for many orders at once (the ledger worker's batch of paid orders, ledger.deferred):
    the same messages with the same dedupe keys, the products' guides read in one query, one insert."""
    if not orders:
        return
    now = now or utcnow()
    policy = policy_of(session)
    robots = policy.robots() if policy else []
    buyers = {order.id: order for order in orders if order.customer_account_id is None and _enabled(
        session, Channel.EMAIL if order.contact_kind == "email" else Channel.SMS, Kind.ORDER_DELIVERED)}
    guides = await catalog_service.redemption_guides(
        session=session, product_ids={order.product_id for order in buyers.values()})
    rows: list[dict[str, Any]] = []
    for order in orders:
        if order.customer_account_id is not None:
            await _account_callback(session, order, Kind.ORDER_DELIVERED, order.order_no, now)
        elif order.id in buyers:
            channel = Channel.EMAIL if order.contact_kind == "email" else Channel.SMS
            key = f"{Kind.ORDER_DELIVERED}:{order.order_no}:{channel}"
            rows.append(_message(channel, order.contact, Kind.ORDER_DELIVERED, order.locale,
                                 _delivered_payload(order, guides.get(order.product_id)), key, order.id,
                                 order.merchant_id, now))
        for robot in robots:
            payload = {**_order_payload(order), "contact_masked": mask_contact(order.contact_kind, order.contact)}
            rows.append(_message(robot, "group", Kind.ORDER_PAID, policy.merchant_locale, payload,  # type: ignore[union-attr]
                                 f"{Kind.ORDER_PAID}:{order.order_no}:{robot}", order.id, order.merchant_id, now))
    if rows:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(OutboxMessage).values(rows).on_conflict_do_nothing(index_elements=["dedupe_key"]))


async def resend_order_delivered(*, session: AsyncSession, order: Order, request_key: str,
                                 now: dt.datetime | None = None) -> bool:
    """Send a delivered order's message to the buyer again (补发通知); a repeated `request_key` (a double
    submit) sends it once. False when the buyer's channel is not configured."""
    return await on_order_delivered(session=session, order=order, now=now, resend_key=request_key[:64])


async def _alert(session: AsyncSession, kind: Kind, key: str, payload: dict[str, Any], *, merchant_id: int,
                 order_id: int | None = None, now: dt.datetime | None = None) -> int:
    policy = policy_of(session)
    robots = policy.robots() if policy else []
    if not robots:
        _say_once("no-robots", "notifications: no group robot configured; merchant alerts are not sent")
    count = 0
    for robot in robots:
        count += await enqueue(session=session, channel=robot, recipient="group", kind=kind,
                               locale=policy.merchant_locale, payload=payload, order_id=order_id,  # type: ignore[union-attr]
                               dedupe_key=f"{kind}:{key}:{robot}", now=now, merchant_id=merchant_id)
    return count


async def on_order_refund_pending(
    *, session: AsyncSession, order: Order, reason: str, now: dt.datetime | None = None
) -> None:
    """A paid order could not be delivered: the merchant must refund it (an account customer is told)."""
    if order.customer_account_id is not None:
        await _account_callback(session, order, Kind.DELIVERY_FAILED, order.order_no, now)
    await _alert(session, Kind.DELIVERY_FAILED, order.order_no, {**_order_payload(order), "reason": reason[:300]},
                 order_id=order.id, now=now, merchant_id=order.merchant_id)


async def on_order_refunded(*, session: AsyncSession, order: Order, amount_cents: int,
                            now: dt.datetime | None = None) -> None:
    """Money of an order went back to its payer: an account customer is told (buyers see it on the order page)."""
    if order.customer_account_id is not None:
        await _account_callback(session, order, Kind.ORDER_REFUNDED, f"{order.order_no}:{order.refunded_cents}", now)


async def on_awaiting_manual_delivery(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> None:
    """A paid 手动发货 order waits for staff to deliver it by hand: the merchant's group gets its new-order alert
    now rather than at delivery (same alert and idempotency key, so it is sent once per order)."""
    payload = {**_order_payload(order), "contact_masked": mask_contact(order.contact_kind, order.contact)}
    await _alert(session, Kind.ORDER_PAID, order.order_no, payload, order_id=order.id, now=now,
                 merchant_id=order.merchant_id)


async def on_risk_hold(*, session: AsyncSession, order: Order, reason: str, now: dt.datetime | None = None) -> None:
    """An order is held by risk control for manual review (风控拦截)."""
    await _alert(session, Kind.RISK_HOLD, order.order_no, {**_order_payload(order), "reason": reason[:300]},
                 order_id=order.id, now=now, merchant_id=order.merchant_id)


async def on_enterprise_top_up(*, session: AsyncSession, kind: Kind, key: str, payload: dict[str, Any],
                               now: dt.datetime | None = None) -> int:
    """Operators must act on an enterprise's top-up (企业充值): a bank transfer to check and confirm
    (ENTERPRISE_TOP_UP_REQUESTED), or a second payment of a credited request to refund at the gateway
    (ENTERPRISE_TOP_UP_PAID_TWICE). To the group robots, and e-mailed to QUANYI_OPERATOR_ALERT_EMAIL when set;
    once per `key`. Returns how many messages were enqueued."""
    count = await _alert(session, kind, key, payload, merchant_id=PLATFORM_MERCHANT_ID, now=now)
    policy = policy_of(session)
    if policy is not None and policy.operator_email and _enabled(session, Channel.EMAIL, kind):
        count += await enqueue(session=session, channel=Channel.EMAIL, recipient=policy.operator_email, kind=kind,
                               locale=policy.merchant_locale, payload=payload, dedupe_key=f"{kind}:{key}:email",
                               now=now)
    return count


async def on_refund_awaiting_staff(*, session: AsyncSession, order: Order, key: str, payload: dict[str, Any],
                                   now: dt.datetime | None = None) -> bool:
    """A refund now waits for staff (退款待处理: refused by the gateway, or stalled without answers): e-mail the
    order's merchant, at its contact address (the platform's own store: QUANYI_OPERATOR_ALERT_EMAIL, else its
    contact address). Once per `key` (one per refund and state change). False when nobody can be e-mailed."""
    policy = policy_of(session)
    merchant = await merchants_service.get_merchant_by_id(session=session, merchant_id=order.merchant_id)
    own_store = order.merchant_id == PLATFORM_MERCHANT_ID
    recipient = ((policy.operator_email if policy and own_store else "") or merchant.contact_email).strip()
    if not recipient:
        _say_once(f"no-refund-staff:{order.merchant_id}", "notifications: merchant %s has no contact e-mail; "
                  "refunds waiting for its staff are not e-mailed", merchant.code)
        return False
    if policy is None or not _enabled(session, Channel.EMAIL, Kind.REFUND_AWAITING_STAFF):
        return False
    return await enqueue(session=session, channel=Channel.EMAIL, recipient=recipient,
                         kind=Kind.REFUND_AWAITING_STAFF, locale=policy.merchant_locale, payload=payload,
                         dedupe_key=f"{Kind.REFUND_AWAITING_STAFF}:{key}", order_id=order.id, now=now,
                         merchant_id=order.merchant_id)


ONE_TIME_CODES = (Kind.VERIFICATION_CODE, Kind.MEMBER_CODE)  # SMS: the one code template


def _code_channel(contact_kind: str) -> Channel:
    return Channel.EMAIL if contact_kind == "email" else Channel.SMS


def can_send_verification_code(*, session: AsyncSession, contact_kind: str) -> bool:
    """Whether a one-time code to a contact of this kind ("email" / "phone") would be sent at all
    (SMS: the gateway and QUANYI_SMS_TEMPLATE_VERIFICATION_CODE are configured)."""
    return _not_sent_because(session, _code_channel(contact_kind), Kind.VERIFICATION_CODE) is None


async def on_verification_code(
    *, session: AsyncSession, contact_kind: str, contact: str, code: str, challenge_id: str, minutes: int,
    locale: str, amount_cents: int, currency: str, now: dt.datetime | None = None,
) -> bool:
    """Risk control asks the buyer to confirm a checkout: send the one-time code to their contact.
    Returns False when nothing was enqueued (the channel is not configured): the code cannot reach them."""
    channel = _code_channel(contact_kind)
    if not _enabled(session, channel, Kind.VERIFICATION_CODE):
        return False
    payload = {"code": code, "minutes": minutes, "total_cents": amount_cents, "currency": currency}
    return await enqueue(session=session, channel=channel, recipient=contact, kind=Kind.VERIFICATION_CODE,
                         locale=locale, payload=payload, dedupe_key=f"{Kind.VERIFICATION_CODE}:{challenge_id}", now=now)


async def on_member_code(
    *, session: AsyncSession, contact_kind: str, contact: str, code: str, code_id: str, purpose: str, minutes: int,
    locale: str, now: dt.datetime | None = None,
) -> bool:
    """A buyer asked to log in / sign up (`purpose` "sign_in") or to add a contact ("add_contact") to their account:
    send the one-time code. SMS goes with the same provider template as checkout codes
    (QUANYI_SMS_TEMPLATE_VERIFICATION_CODE). False when the code cannot reach this contact (channel not configured)."""
    channel = _code_channel(contact_kind)
    if not _enabled(session, channel, Kind.MEMBER_CODE):
        return False
    payload = {"code": code, "minutes": minutes, "purpose": purpose}
    return await enqueue(session=session, channel=channel, recipient=contact, kind=Kind.MEMBER_CODE, locale=locale,
                         payload=payload, dedupe_key=f"{Kind.MEMBER_CODE}:{code_id}", now=now)


async def on_stock_taken(*, session: AsyncSession, sku: Sku | SkuRow, quantity: int,
                         now: dt.datetime | None = None) -> None:
    """Card keys were just taken from a SKU's free stock: alert once when that crossed below the threshold.

    "Crossed" means the `quantity` keys just taken moved the count from >= threshold to below it; restocking
    and selling down again crosses again, and the hour bucket in the dedupe key bounds alerts to one an hour.
    """
    policy = policy_of(session)
    threshold = policy.low_stock_threshold if policy else 0
    if threshold <= 0 or not (policy and policy.robots()):
        return
    now = now or utcnow()
    available = (await inventory_service.available_counts(session=session, sku_ids=[sku.id], now=now)).get(sku.id, 0)
    if not (available < threshold <= available + quantity):
        return
    bucket = int(now.timestamp()) // _LOW_STOCK_BUCKET_SECONDS
    await _alert(session, Kind.LOW_STOCK, f"{sku.id}:{bucket}", {
        "sku_code": sku.code, "product_name": sku.product.name, "sku_name": sku.name,
        "available": available, "threshold": threshold,
    }, now=now, merchant_id=sku.merchant_id)


# ---------------------------------------------------------------- dead letters and operator actions

async def list_messages(
    *, session: AsyncSession, status: MessageStatus | None = None, limit: int = 100, order_id: int | None = None,
    scope: Scope = PLATFORM,
) -> Sequence[OutboxMessage]:
    """Newest first; `status=dead` is the dead-letter list; `order_id`: the messages about one order. A merchant's
    staff see their merchant's messages."""
    stmt = (select(OutboxMessage).where(scope.where(OutboxMessage.merchant_id))
            .order_by(OutboxMessage.id.desc()).limit(limit))
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status.value)
    if order_id is not None:
        stmt = stmt.where(OutboxMessage.order_id == order_id)
    return (await session.scalars(stmt)).all()


async def count_messages(*, session: AsyncSession, status: MessageStatus, scope: Scope = PLATFORM) -> int:
    return int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.status == status.value,
                                           scope.where(OutboxMessage.merchant_id))) or 0)


async def get_message(*, session: AsyncSession, message_id: int, lock: bool = False,
                      scope: Scope = PLATFORM) -> OutboxMessage:
    stmt = select(OutboxMessage).where(OutboxMessage.id == message_id).execution_options(populate_existing=True)
    message = await session.scalar(stmt.with_for_update() if lock else stmt)
    if message is None or not scope.sees(message.merchant_id):
        raise NotificationNotFound(f"notification {message_id} does not exist")
    return message


async def retry_message(*, session: AsyncSession, message_id: int, now: dt.datetime | None = None,
                        scope: Scope = PLATFORM) -> OutboxMessage:
    """Put a dead message back in the queue with a fresh set of attempts (its last error stays on record)."""
    now = now or utcnow()
    # Row lock: two operators pressing retry, or a retry racing a claim, act once.
    message = await get_message(session=session, message_id=message_id, lock=True, scope=scope)
    if message.status != MessageStatus.DEAD:
        raise NotificationNotRetryable(f"notification {message_id} is {message.status}, not dead",
                                       status=message.status)
    message.status = MessageStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = now
    message.locked_until = None
    message.lease_owner = None
    message.updated_at = now
    return message


async def discard_message(*, session: AsyncSession, message_id: int, reason: str, now: dt.datetime | None = None,
                          scope: Scope = PLATFORM) -> OutboxMessage:
    """Give up on a dead message for good (the buyer was told another way, the address is wrong ...): it leaves the
    dead-letter list and is never sent; the reason is kept with its last error."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required to discard a notification")
    # Row lock: a discard racing a retry of the same message acts on one state only.
    message = await get_message(session=session, message_id=message_id, lock=True, scope=scope)
    if message.status != MessageStatus.DEAD:
        raise NotificationNotRetryable(f"notification {message_id} is {message.status}, not dead; only a dead "
                                       "message can be discarded", status=message.status)
    message.status = MessageStatus.DISCARDED.value
    message.last_error = f"discarded: {reason}"[:300] + (f" | {message.last_error}" if message.last_error else "")
    message.last_error = message.last_error[:1000]
    message.next_attempt_at = now
    message.locked_until = None
    message.lease_owner = None
    message.updated_at = now
    return message
