"""A statement line's description as the enterprise reads it: the ledger writes its own memos in English for the
shop's books ("budget of benefit campaign C…", "refund R… credited to customer account 7"); the portal says
what each movement was in the page's language, with the numbers the customer knows. A top-up keeps the note
it was recorded with (written by the shop's staff or the online top-up, for the customer)."""

from __future__ import annotations

import re
from typing import Any

from quanyi.console.i18n import add_messages, console_text

__all__ = ["statement_memo"]

_TRANSFERS = ((re.compile(r"unclaimed budget of benefit campaign (\S+)"), "portal.memo.campaign_return"),
              (re.compile(r"budget of benefit campaign (\S+)"), "portal.memo.campaign_budget"))
_REFUND = re.compile(r"refund (\S+) credited to customer account \d+")


def statement_memo(line: Any, locale: str) -> str:
    """The description under a statement line's kind (`line`: a customer account statement line)."""
    memo = str(line.memo or "")
    if line.kind == "customer_transfer":
        for pattern, key in _TRANSFERS:
            found = pattern.fullmatch(memo)
            if found:
                return console_text(locale, key, campaign_no=found.group(1))
    elif line.kind == "customer_charge":
        return ""  # "paid from customer account 7": the kind (采购付款) says it all
    elif line.kind == "customer_refund":
        found = _REFUND.fullmatch(memo)
        if found:
            return console_text(locale, "portal.memo.refund", refund_no=found.group(1))
    return memo


add_messages({
    "portal.memo.campaign_budget": "福利活动 {campaign_no} 的预算",
    "portal.memo.campaign_return": "福利活动 {campaign_no} 未领取的预算退回",
    "portal.memo.refund": "退款单 {refund_no}",
}, {
    "portal.memo.campaign_budget": "budget of benefit campaign {campaign_no}",
    "portal.memo.campaign_return": "unclaimed budget of benefit campaign {campaign_no} returned",
    "portal.memo.refund": "refund {refund_no}",
})
