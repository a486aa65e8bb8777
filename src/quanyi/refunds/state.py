"""The refund lifecycle: one table of allowed transitions; anything else raises."""

from __future__ import annotations

import enum

from quanyi.errors import Conflict

__all__ = ["RefundStatus", "OPEN", "NOT_PAYING", "TRANSITIONS", "IllegalRefundTransition", "check_transition"]


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # 退款申请: recorded, the gateway has not accepted it yet (or was unreachable)
    PROCESSING = "processing"  # 退款中: the gateway accepted it and has not finished
    SUCCEEDED = "succeeded"  # 退款成功: money went back
    FAILED = "failed"  # 退款失败: the gateway refused; an operator retries it (same refund_no) or withdraws it
    WITHDRAWN = "withdrawn"  # 已撤回: a refused refund an operator gave up; the buyer keeps (or gets) the goods


OPEN = (RefundStatus.REQUESTED, RefundStatus.PROCESSING)

TRANSITIONS: dict[tuple[RefundStatus, RefundStatus], str] = {
    (RefundStatus.REQUESTED, RefundStatus.PROCESSING): "accepted by the gateway, in progress",
    (RefundStatus.REQUESTED, RefundStatus.SUCCEEDED): "refunded by the gateway",
    (RefundStatus.REQUESTED, RefundStatus.FAILED): "refused by the gateway",
    (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED): "the gateway finished the refund",
    (RefundStatus.PROCESSING, RefundStatus.FAILED): "the gateway gave up on the refund",
    # Same refund_no again, so a gateway that did refund the first time cannot refund twice.
    (RefundStatus.FAILED, RefundStatus.REQUESTED): "retried by an operator",
    # Only a refusal: the gateway said no to this refund_no, so no money went back and none will. A refund that
    # got no answer (requested) may have been paid out and can only be retried.
    (RefundStatus.FAILED, RefundStatus.WITHDRAWN): "withdrawn by an operator",
}

# Refunds whose money is not (and will not be) on its way back: the payment's amount they name is free again.
NOT_PAYING = (RefundStatus.FAILED, RefundStatus.WITHDRAWN)


class IllegalRefundTransition(Conflict):
    code = "illegal_refund_transition"


def check_transition(current: RefundStatus, target: RefundStatus) -> str:
    """Return the reason the move is allowed, or raise IllegalRefundTransition."""
    try:
        return TRANSITIONS[(current, target)]
    except KeyError:
        raise IllegalRefundTransition(f"a refund cannot go from {current.value} to {target.value}",
                                      current=current.value, target=target.value) from None
