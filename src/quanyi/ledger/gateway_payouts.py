"""Gateway settlements (渠道结算/打款): the gateway pays what it collected for the shop into the shop's bank, less its
fee and the refunds it already paid back out of the same money. Recording one empties the clearing account:

    D platform_cash                 net      (what arrived in the bank)
    D gateway_fees:<gateway>        fee      (手续费, kept by the gateway)
    C gateway_clearing:<gateway>    net + fee

The refunds the statement nets out are not credited again: each refund left `gateway_clearing:<gateway>` when the
gateway paid it (ledger.order_events.record_refund_paid); the payout row keeps their figure so the statement's gross
(net + fee + refunds) can be read back. A settlement is booked once per (gateway, settlement number): a repeat is
refused (GatewayPayoutExists), never booked twice. What remains on the clearing account is what the gateway still
owes the shop.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput
from quanyi.ledger import accounts
from quanyi.ledger.models import GatewayPayout, LedgerAccount, LedgerEntry, LedgerPosting
from quanyi.ledger.postings import Line, post
from quanyi.money import CURRENCIES, MAX_AMOUNT_CENTS, format_money
from quanyi.shoptime import day_bounds, shop_zone

__all__ = ["InvalidGatewayPayout", "UnknownPayoutGateway", "GatewayPayoutExists", "PayoutExceedsClearing",
           "GatewayClearing", "PayoutView", "record_gateway_payout", "list_gateway_payouts",
           "gateway_clearing_balances", "payout_reference", "period_movements", "PAYOUT_KIND", "MAX_PERIOD_DAYS"]

PAYOUT_KIND = "gateway_payout"
MAX_PERIOD_DAYS = 366
EARLIEST_DAY = dt.date(2000, 1, 1)  # before any gateway this shop talks to; keeps day arithmetic far from year 1
_GATEWAY = re.compile(r"[a-z0-9_]{1,32}")
# Alipay / WeChat Pay settlement and bill numbers: digits and letters, sometimes a date with dashes.
_SETTLEMENT_NO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}")
_CLEARING_FAMILY = "gateway_clearing:"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidGatewayPayout(InvalidInput):
    code = "invalid_gateway_payout"


class UnknownPayoutGateway(InvalidInput):
    code = "payout_gateway_unknown"


class GatewayPayoutExists(Conflict):
    code = "gateway_payout_exists"


class PayoutExceedsClearing(Conflict):
    code = "payout_exceeds_clearing"


def payout_reference(gateway: str, settlement_no: str) -> str:
    """The reference of a payout's posting (unique, like every posting's)."""
    return f"{PAYOUT_KIND}:{gateway}:{settlement_no}"


def _cents(value: object, name: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_AMOUNT_CENTS:
        raise InvalidGatewayPayout(f"{name} must be a whole number of cents from {minimum} to {MAX_AMOUNT_CENTS}",
                                   field=name)
    return value


def _check(*, gateway: str, settlement_no: str, period_from: dt.date, period_to: dt.date, net_cents: int,
           fee_cents: int, refunds_cents: int, currency: str, note: str, today: dt.date | None) -> int:
    """Everything that can be said about a payout without the books; returns what leaves clearing (net + fee)."""
    if _CONTROL.search(note):  # PostgreSQL refuses NUL in text: a clear 422, not a 500
        raise InvalidGatewayPayout("must not contain control characters", field="note")
    if not _GATEWAY.fullmatch(gateway):
        raise InvalidGatewayPayout("gateway must be a gateway name like alipay or wechat", field="gateway")
    if gateway == accounts.BALANCE_CLEARING.partition(":")[2]:
        raise UnknownPayoutGateway("payments from prepaid balances never leave the shop: there is no payout of "
                                   "the 'balance' method", field="gateway")
    if not _SETTLEMENT_NO.fullmatch(settlement_no):
        raise InvalidGatewayPayout("settlement_no must be the gateway's settlement id: 1-64 letters, digits or "
                                   "_ . : / -", field="settlement_no")
    if currency not in CURRENCIES:
        raise InvalidGatewayPayout(f"currency must be one of {', '.join(CURRENCIES)}", field="currency")
    net = _cents(net_cents, "net_cents", minimum=1)
    fee = _cents(fee_cents, "fee_cents", minimum=0)
    _cents(refunds_cents, "refunds_cents", minimum=0)
    if net + fee > MAX_AMOUNT_CENTS:
        raise InvalidGatewayPayout(f"net_cents + fee_cents must not exceed {MAX_AMOUNT_CENTS}", field="fee_cents")
    if period_from < EARLIEST_DAY:
        raise InvalidGatewayPayout(f"the period must begin on {EARLIEST_DAY.isoformat()} or later",
                                   field="period_from")
    if period_from > period_to:
        raise InvalidGatewayPayout("the period must not end before it begins", field="period_to")
    if today is not None and period_to > today:
        raise InvalidGatewayPayout(f"the period ends after today ({today.isoformat()}): the gateway cannot have "
                                   "settled it yet", field="period_to")
    if (period_to - period_from).days >= MAX_PERIOD_DAYS:
        raise InvalidGatewayPayout(f"a settlement period is at most {MAX_PERIOD_DAYS} days", field="period_from")
    return net + fee


async def _clearing_balance(session: AsyncSession, account_id: int, currency: str) -> int:
    return int(await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.account_id == account_id, LedgerEntry.currency == currency)) or 0)


async def record_gateway_payout(
    session: AsyncSession, *, gateway: str, settlement_no: str, period_from: dt.date, period_to: dt.date,
    net_cents: int, fee_cents: int, refunds_cents: int = 0, currency: str = "CNY", note: str = "", actor: str,
    configured: Collection[str] = (), today: dt.date | None = None, now: dt.datetime | None = None,
) -> GatewayPayout:
    """Book a gateway's settlement paid into the bank (see the module docstring), in the caller's transaction.

    Refuses, writing nothing: bad figures or period (InvalidGatewayPayout); a gateway that neither is `configured`
    nor ever had money booked to its clearing account (UnknownPayoutGateway); a settlement number already recorded
    for this gateway (GatewayPayoutExists); net + fee more than the clearing account holds (PayoutExceedsClearing).
    Book the payments' deferred postings first (ledger.deferred.post_all_deferred), or the balance lags."""
    settlement_no = settlement_no.strip()
    cleared = _check(gateway=gateway, settlement_no=settlement_no, period_from=period_from, period_to=period_to,
                     net_cents=net_cents, fee_cents=fee_cents, refunds_cents=refunds_cents, currency=currency,
                     note=note, today=today)
    clearing = accounts.gateway_clearing(gateway)
    # Payouts of one gateway one at a time (PostgreSQL; SQLite has one writer): the balance read below cannot
    # be spent twice by a concurrent payout, and a concurrent copy of this settlement waits and then finds it.
    # FOR NO KEY UPDATE, not FOR UPDATE: payments inserting entries of this account (their foreign key takes
    # FOR KEY SHARE) must not wait for us.
    account_id = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.code == clearing)
                                      .with_for_update(key_share=True))
    if account_id is None and gateway not in configured:
        raise UnknownPayoutGateway(f"no gateway {gateway!r}: it is not configured and nothing was ever paid "
                                   "through it", field="gateway")
    existing = await session.scalar(select(GatewayPayout).where(GatewayPayout.gateway == gateway,
                                                               GatewayPayout.settlement_no == settlement_no))
    if existing is not None:
        raise _exists(existing)
    balance = 0 if account_id is None else await _clearing_balance(session, account_id, currency)
    if cleared > balance:
        raise PayoutExceedsClearing(
            f"net + fee ({format_money(cleared, currency)}) is more than {gateway} owes the shop: its clearing "
            f"account holds {format_money(balance, currency)}", clearing_cents=balance, payout_cents=cleared)
    now = now or utcnow()
    memo = (f"{gateway} settlement {settlement_no} {period_from.isoformat()}..{period_to.isoformat()}: "
            f"net {net_cents} fee {fee_cents} refunds {refunds_cents} {currency}" + (f"; {note}" if note else ""))
    posting, created = await post(
        session, reference=payout_reference(gateway, settlement_no), kind=PAYOUT_KIND, memo=memo, actor=actor,
        now=now, lines=[Line(accounts.PLATFORM_CASH, net_cents, currency),
                        Line(accounts.gateway_fees(gateway), fee_cents, currency),
                        Line(clearing, -cleared, currency)])
    if not created or posting is None:  # booked under this reference, its row gone: never twice
        raise GatewayPayoutExists(f"settlement {settlement_no} of {gateway} is already booked")
    payout = GatewayPayout(gateway=gateway, settlement_no=settlement_no, period_from=period_from, period_to=period_to,
                           currency=currency, net_cents=net_cents, fee_cents=fee_cents, refunds_cents=refunds_cents,
                           note=note[:500], posting_id=posting.id, recorded_by=actor[:64], recorded_at=now)
    try:
        async with session.begin_nested():  # the unique (gateway, settlement_no): the last word on a repeat
            session.add(payout)
            await session.flush()
    except IntegrityError:
        raise GatewayPayoutExists(f"settlement {settlement_no} of {gateway} was recorded at the same time") from None
    return payout


def _exists(existing: GatewayPayout) -> GatewayPayoutExists:
    return GatewayPayoutExists(
        f"settlement {existing.settlement_no} of {existing.gateway} was already recorded by {existing.recorded_by} "
        f"at {existing.recorded_at.isoformat(timespec='seconds')}; nothing was booked again",
        recorded_by=existing.recorded_by, recorded_at=existing.recorded_at.isoformat())


@dataclass(frozen=True, slots=True)
class PayoutView:
    """A recorded payout, with what the books say the gateway took in its period: `book_receipts_cents` debited
    to clearing (payments, top-ups) and `book_refunds_cents` credited (refunds paid), payouts left out.
    `difference_cents` = (net + fee) - (receipts - refunds): not 0 when the statement and the books disagree (or
    a payment was booked on the other side of a midnight than the gateway counted it)."""

    payout: GatewayPayout
    book_receipts_cents: int
    book_refunds_cents: int

    @property
    def posting_reference(self) -> str:
        return payout_reference(self.payout.gateway, self.payout.settlement_no)

    @property
    def cleared_cents(self) -> int:
        return self.payout.net_cents + self.payout.fee_cents

    @property
    def gross_cents(self) -> int:
        """The statement's gross takings: net + fee + the refunds it netted."""
        return self.cleared_cents + self.payout.refunds_cents

    @property
    def difference_cents(self) -> int:
        return self.cleared_cents - (self.book_receipts_cents - self.book_refunds_cents)


async def period_movements(session: AsyncSession, payout: GatewayPayout, timezone: str) -> PayoutView:
    """The payout with what the books say about its period (see PayoutView)."""
    start, end = day_bounds(payout.period_from, shop_zone(timezone),
                            days=(payout.period_to - payout.period_from).days + 1)
    amount = LedgerEntry.amount_cents
    row = (await session.execute(
        select(func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0),
               func.coalesce(func.sum(case((amount < 0, -amount), else_=0)), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
        .where(LedgerAccount.code == accounts.gateway_clearing(payout.gateway), LedgerEntry.currency == payout.currency,
               LedgerPosting.created_at >= start, LedgerPosting.created_at < end,
               LedgerPosting.kind != PAYOUT_KIND))).one()
    return PayoutView(payout=payout, book_receipts_cents=int(row[0]), book_refunds_cents=int(row[1]))


async def list_gateway_payouts(session: AsyncSession, *, timezone: str, gateway: str | None = None,
                               limit: int = 50) -> list[PayoutView]:
    """The latest payouts (newest first), all gateways or one, each with its period's movements in the books."""
    stmt = select(GatewayPayout).order_by(GatewayPayout.recorded_at.desc(), GatewayPayout.id.desc()).limit(limit)
    if gateway:
        stmt = stmt.where(GatewayPayout.gateway == gateway)
    return [await period_movements(session, payout, timezone) for payout in (await session.scalars(stmt)).all()]


@dataclass(frozen=True, slots=True)
class GatewayClearing:
    """One gateway's clearing account in one currency: `balance_cents` is what the gateway still owes the shop;
    `paid_out_cents` / `fees_cents` what its recorded payouts brought to the bank / it kept; `last_period_to` the
    last day its payouts covered."""

    gateway: str
    currency: str
    balance_cents: int
    paid_out_cents: int
    fees_cents: int
    payouts: int
    last_period_to: dt.date | None


async def gateway_clearing_balances(session: AsyncSession, *,
                                    configured: Collection[str] = ()) -> list[GatewayClearing]:
    """Every gateway's clearing account (the prepaid-balance method's left out), and configured gateways nothing
    was paid through yet (at 0), with their payouts' totals; sorted by gateway and currency."""
    balances = (await session.execute(
        select(LedgerAccount.code, LedgerEntry.currency, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith(_CLEARING_FAMILY, autoescape=True),
               LedgerAccount.code != accounts.BALANCE_CLEARING)
        .group_by(LedgerAccount.code, LedgerEntry.currency))).all()
    found: dict[tuple[str, str], int] = {(code.partition(":")[2], currency): int(total)
                                         for code, currency, total in balances}
    totals = {(gateway, currency): (int(net), int(fee), int(count), last) for gateway, currency, net, fee, count, last
              in (await session.execute(
                  select(GatewayPayout.gateway, GatewayPayout.currency, func.sum(GatewayPayout.net_cents),
                         func.sum(GatewayPayout.fee_cents), func.count(), func.max(GatewayPayout.period_to))
                  .group_by(GatewayPayout.gateway, GatewayPayout.currency))).all()}
    keys = set(found) | set(totals)
    listed = {gateway for gateway, _ in keys}
    keys |= {(name, "CNY") for name in configured if name not in listed and name != "balance"}
    rows = []
    for gateway, currency in sorted(keys):
        net, fee, count, last = totals.get((gateway, currency), (0, 0, 0, None))
        rows.append(GatewayClearing(gateway=gateway, currency=currency, balance_cents=found.get((gateway, currency), 0),
                                    paid_out_cents=net, fees_cents=fee, payouts=count, last_period_to=last))
    return rows
