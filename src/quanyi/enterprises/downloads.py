"""A bulk purchase's codes as CSV/XLSX, behind expiring, audited download links (下载链接).

The file is never stored: each download builds it from the encrypted card keys (each key shown is a reveal,
audited per key by inventory, channel "enterprise"), streamed through quanyi.exports. So the codes rest only
encrypted (AES-256-GCM), and a leaked old file cannot be re-downloaded once its link expired. A link is a
random token (only its SHA-256 is kept) with an expiry and a maximum number of downloads; every use and every
refused use is written to `enterprises_download_audit`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, utcnow
from quanyi.enterprises import purchases
from quanyi.enterprises.models import BulkPurchase, BulkPurchaseOrder, DownloadAudit, DownloadLink
from quanyi.errors import DomainError, InvalidInput, NotFound
from quanyi.exports import Cell, Column
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus

__all__ = ["LinkRefused", "IssuedLink", "Download", "COLUMNS", "create_link", "revoke_link", "list_links",
           "open_link", "code_rows", "audit_direct", "MAX_TTL", "MAX_DOWNLOADS"]

MAX_TTL = dt.timedelta(days=7)
MAX_DOWNLOADS = 20
COLUMNS = [Column("purchase", 20), Column("order", 18), Column("sku", 16), Column("card number", 24),
           Column("code", 32), Column("expires", 20)]
_ORDERS_PER_BATCH = 50


class LinkRefused(DomainError):
    """The link is unknown, expired, revoked or used up: the same answer for each, so it tells nothing."""

    code = "download_link_invalid"


@dataclass(frozen=True, slots=True)
class IssuedLink:
    link: DownloadLink
    token: str  # the only time it is available


@dataclass(frozen=True, slots=True)
class Download:
    purchase_id: int
    purchase_no: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_link(*, session: AsyncSession, code: str, purchase_no: str, ttl: dt.timedelta,
                      max_downloads: int, actor: str, now: dt.datetime | None = None) -> IssuedLink:
    """A new download link for a purchase's codes; the token is returned once."""
    now = now or utcnow()
    if not dt.timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise InvalidInput("a link lives between 1 minute and 7 days")
    if not 1 <= max_downloads <= MAX_DOWNLOADS:
        raise InvalidInput(f"max_downloads must be between 1 and {MAX_DOWNLOADS}")
    purchase = await purchases.get_purchase(session=session, code=code, purchase_no=purchase_no)
    token = secrets.token_urlsafe(32)
    link = DownloadLink(purchase_id=purchase.id, token_hash=_hash(token), expires_at=now + ttl,
                        max_downloads=max_downloads, downloads=0, created_by=actor[:64], created_at=now)
    session.add(link)
    await session.flush()
    return IssuedLink(link=link, token=token)


async def list_links(*, session: AsyncSession, code: str, purchase_no: str) -> Sequence[DownloadLink]:
    purchase = await purchases.get_purchase(session=session, code=code, purchase_no=purchase_no)
    return (await session.scalars(select(DownloadLink).where(DownloadLink.purchase_id == purchase.id)
                                  .order_by(DownloadLink.id))).all()


async def revoke_link(*, session: AsyncSession, code: str, purchase_no: str, link_id: int,
                      now: dt.datetime | None = None) -> None:
    purchase = await purchases.get_purchase(session=session, code=code, purchase_no=purchase_no)
    result = await session.execute(update(DownloadLink).where(
        DownloadLink.id == link_id, DownloadLink.purchase_id == purchase.id, DownloadLink.revoked_at.is_(None))
        .values(revoked_at=now or utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"purchase {purchase_no} has no live link {link_id}")


async def open_link(*, session: AsyncSession, token: str, file_format: str, ip: str, user_agent: str,
                    now: dt.datetime | None = None) -> Download | None:
    """Count one download of a live link and audit it. None: refused (expired, used up, revoked, unknown),
    the refusal audited when the link exists; commit either way, then answer. Commit before streaming: the
    use is counted whether or not the client reads the file to its end."""
    now = now or utcnow()
    link = await session.scalar(select(DownloadLink).where(DownloadLink.token_hash == _hash(token)))
    if link is None:
        return None
    # One conditional UPDATE: of concurrent downloads only max_downloads succeed.
    used = await session.execute(update(DownloadLink).where(
        DownloadLink.id == link.id, DownloadLink.revoked_at.is_(None), DownloadLink.expires_at > now,
        DownloadLink.downloads < DownloadLink.max_downloads).values(downloads=DownloadLink.downloads + 1))
    if used.rowcount == 0:  # type: ignore[attr-defined]
        outcome = ("revoked" if link.revoked_at is not None else "expired" if link.expires_at <= now
                   else "used_up")
        session.add(DownloadAudit(purchase_id=link.purchase_id, link_id=link.id, actor="link", outcome=outcome,
                                  file_format=file_format, ip=ip[:64], user_agent=user_agent[:512], at=now))
        await session.flush()
        return None
    session.add(DownloadAudit(purchase_id=link.purchase_id, link_id=link.id, actor="link", outcome="served",
                              file_format=file_format, ip=ip[:64], user_agent=user_agent[:512], at=now))
    purchase = await session.get(BulkPurchase, link.purchase_id)
    assert purchase is not None
    await session.flush()
    return Download(purchase_id=purchase.id, purchase_no=purchase.purchase_no)


async def code_rows(*, db: Database, cipher: CardKeyCipher, purchase_id: int, ip: str,
                    user_agent: str) -> AsyncIterator[Sequence[Sequence[Cell]]]:
    """The purchase's delivered codes, a batch of orders at a time, each batch one transaction whose reveals
    are audited (channel "enterprise")."""
    after = -1
    while True:
        async with db.transaction() as session:
            rows = (await session.execute(
                select(BulkPurchaseOrder.seq, Order).join(Order, Order.id == BulkPurchaseOrder.order_id)
                .where(BulkPurchaseOrder.purchase_id == purchase_id, BulkPurchaseOrder.seq > after)
                .order_by(BulkPurchaseOrder.seq).limit(_ORDERS_PER_BATCH))).all()
            if not rows:
                return
            purchase = await session.get(BulkPurchase, purchase_id)
            assert purchase is not None
            chunk: list[list[Cell]] = []
            for seq, order in rows:
                after = seq
                if order.status is not OrderStatus.DELIVERED:
                    continue  # still with suppliers or under review: in a later download
                try:
                    keys = await orders_service.reveal_order_keys(
                        session=session, cipher=cipher, order=order, channel="enterprise", ip=ip,
                        user_agent=f"download {purchase.purchase_no}: {user_agent}"[:512])
                except orders_service.OrderNotDelivered:
                    continue  # refunded while the reveal waited for its order row (a refund held it): not served
                for key in keys:
                    chunk.append([purchase.purchase_no, order.order_no, order.sku_code, key.card_no, key.code,
                                  key.expires_at])
        yield chunk


async def audit_direct(*, session: AsyncSession, purchase_id: int, actor: str, file_format: str, ip: str = "",
                       user_agent: str = "", now: dt.datetime | None = None) -> None:
    """Audit a download that took no link (an operator's `quanyi enterprises export`)."""
    session.add(DownloadAudit(purchase_id=purchase_id, link_id=None, actor=actor[:64], outcome="served",
                              file_format=file_format, ip=ip[:64], user_agent=user_agent[:512], at=now or utcnow()))
    await session.flush()
