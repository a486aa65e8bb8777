"""A statement line's description as the enterprise reads it: the ledger writes its own memos in English for the
shop's books ("budget of benefit campaign C…", "refund R… credited to customer account 7"); the portal says them
in the page's language through console/said.py, the one place that says the ledger's memos (the console's ledger
pages say the same memos the same way). A charge says nothing more than its kind (采购付款); a refund names its
refund number in the portal's own words (the books' memo names the shop's internal account number, which the
enterprise has no use for); a top-up keeps the note it was recorded with (written by the shop's staff or the online
top-up, for the customer)."""

from __future__ import annotations

import re
from typing import Any

from quanyi.console.i18n import console_text
from quanyi.console.said import say

__all__ = ["statement_memo"]

_REFUND = re.compile(r"refund (\S+) credited to customer account \d+")  # ledger.customer_accounts' memo


def statement_memo(line: Any, locale: str) -> str:
    """The description under a statement line's kind (`line`: a customer account statement line)."""
    memo = str(line.memo or "")
    if line.kind == "customer_charge":
        return ""  # "paid from customer account 7": the kind (采购付款) says it all
    if line.kind == "customer_top_up":
        return memo  # a note for the customer, as it was written
    if line.kind == "customer_refund":  # never the internal account number, in any language
        found = _REFUND.fullmatch(memo)
        return console_text(locale, "portal.statement.memo.refund", refund_no=found.group(1)) if found else ""
    return str(say(memo, locale))
