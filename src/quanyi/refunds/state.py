"""The refund lifecycle: one table of allowed transitions; anything else raises."""

from __future__ import annotations

import enum

from quanyi.errors import Conflict

__all__ = ["RefundStatus", "TRANSITIONS", "IllegalRefundTransition", "check_transition"]


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # 退款申请: recorded, the gateway has not accepted it yet (or was unreachable)
    PROCESSING = "processing"  # 退款中: the gateway accepted it and has not finished
    SUCCEEDED = "succeeded"  # 退款成功: money went back
    FAILED = "failed"  # 退款失败: the gateway refused; an operator may retry (same refund_no)


OPEN = (RefundStatus.REQUESTED, RefundStatus.PROCESSING)

TRANSITIONS: dict[tuple[RefundStatus, RefundStatus], str] = {
    (RefundStatus.REQUESTED, RefundStatus.PROCESSING): "accepted by the gateway, in progress",
    (RefundStatus.REQUESTED, RefundStatus.SUCCEEDED): "refunded by the gateway",
    (RefundStatus.REQUESTED, RefundStatus.FAILED): "refused by the gateway",
    (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED): "the gateway finished the refund",
    (RefundStatus.PROCESSING, RefundStatus.FAILED): "the gateway gave up on the refund",
    # Same refund_no again, so a gateway that did refund the first time cannot refund twice.
    (RefundStatus.FAILED, RefundStatus.REQUESTED): "retried by an operator",
}


class IllegalRefundTransition(Conflict):
    code = "illegal_refund_transition"


def check_transition(current: RefundStatus, target: RefundStatus) -> str:
    """Return the reason the move is allowed, or raise IllegalRefundTransition."""
    try:
        return TRANSITIONS[(current, target)]
    except KeyError:
        raise IllegalRefundTransition(f"a refund cannot go from {current.value} to {target.value}",
                                      current=current.value, target=target.value) from None
