"""The two records a reconciliation difference (对账差异) compares, as the console shows them: the report gives
each side as one line for the API, the CSV and the logs ("succeeded 2500 CNY", "paid 2500 CNY 2088…",
"not_found", "?"); the page says the state in the page's language, the amount as money (¥25.00) and the gateway's
transaction number on its own. The rest of the page's texts (rc.*) are in texts/ledger.py; its explanations are
English messages said through console/said.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from quanyi.console.i18n import MESSAGES, add_messages, console_text
from quanyi.money import CURRENCIES, format_money

if TYPE_CHECKING:
    from quanyi.payments.schemas import Mismatch

__all__ = ["ShownRecord", "shown_records"]

# Whose state a record names: ours a payment's, a refund's or an enterprise top-up's; theirs the gateway's trade
# (主动查单) or refund (退款查询).
add_messages({
    "rc.state.payment.created": "待支付", "rc.state.payment.succeeded": "已支付",
    "rc.state.payment.duplicate": "重复支付",
    "rc.state.refund.requested": "退款申请中", "rc.state.refund.processing": "退款中",
    "rc.state.refund.succeeded": "退款成功", "rc.state.refund.failed": "退款失败",
    "rc.state.top_up.pending": "待入账", "rc.state.top_up.credited": "已入账", "rc.state.top_up.refused": "已拒绝",
    "rc.state.trade.paid": "已支付", "rc.state.trade.pending": "未支付", "rc.state.trade.closed": "已关闭",
    "rc.state.trade.not_found": "渠道无此交易",
    "rc.state.gateway_refund.succeeded": "已退款", "rc.state.gateway_refund.processing": "退款中",
    "rc.state.gateway_refund.failed": "退款失败",
    "rc.state.unknown": "未能查询",
    "rc.trade_no": "渠道流水号",
}, {
    "rc.state.payment.created": "unpaid", "rc.state.payment.succeeded": "paid",
    "rc.state.payment.duplicate": "duplicate",
    "rc.state.refund.requested": "refund requested", "rc.state.refund.processing": "refund in progress",
    "rc.state.refund.succeeded": "refunded", "rc.state.refund.failed": "refund failed",
    "rc.state.top_up.pending": "pending", "rc.state.top_up.credited": "credited", "rc.state.top_up.refused": "refused",
    "rc.state.trade.paid": "paid", "rc.state.trade.pending": "not paid", "rc.state.trade.closed": "closed",
    "rc.state.trade.not_found": "no such trade",
    "rc.state.gateway_refund.succeeded": "refunded", "rc.state.gateway_refund.processing": "refund in progress",
    "rc.state.gateway_refund.failed": "refund failed",
    "rc.state.unknown": "not asked",
    "rc.trade_no": "Gateway transaction",
})

# "<state>[ <cents> <currency>[ <gateway transaction>]]", as payments/reconciliation.py and
# enterprises/top_up_reconciliation.py write a side; "?" when the gateway could not be asked.
_RECORD = re.compile(r"(\w+)(?: (-?\d+) ([A-Z]{3})(?: (\S+))?)?")


class ShownRecord(NamedTuple):
    state: str
    amount: str  # "" when the record names no amount
    trade_no: str  # "" when it names no gateway transaction


def _shown(record: str, family: str, locale: str) -> ShownRecord:
    if record == "?":
        return ShownRecord(console_text(locale, "rc.state.unknown"), "", "")
    found = _RECORD.fullmatch(record)
    if found is None:
        return ShownRecord(record, "", "")
    state, cents, currency, trade_no = found.groups()
    key = f"rc.state.{family}.{state}"
    said = console_text(locale, key) if key in MESSAGES["zh-CN"] else state
    amount = format_money(int(cents), currency) if cents is not None and currency in CURRENCIES else \
        " ".join(part for part in (cents, currency) if part)
    return ShownRecord(said, amount, "" if trade_no in (None, "None") else trade_no)


def shown_records(mismatch: Mismatch, locale: str) -> tuple[ShownRecord, ShownRecord]:
    """The shop's record and the gateway's of one difference, in the page's language."""
    ours = "refund" if mismatch.refund_no else "top_up" if mismatch.enterprise_code else "payment"
    theirs = "gateway_refund" if mismatch.refund_no else "trade"
    return _shown(mismatch.ours, ours, locale), _shown(mismatch.theirs, theirs, locale)
