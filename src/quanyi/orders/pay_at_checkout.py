"""Checkout and pay in one request (下单即支付): `POST /api/orders` with `pay` places the order and starts its payment,
so a purchase is three requests (checkout, the gateway's notification, the reveal) instead of four.

`pay` is the start-payment route's body (`PaymentStartRequest`). Before anything is written, the gateway it names
must be one buyers can choose (else 422 `unknown_gateway`, and no order). Once the order is committed, its payment
is started by the function the start-payment route calls (`payments.routes.payment_started`, so the same checks,
refusals and rows), and the answer is the order (201) with `payment`: what that route answers.

If the payment cannot be started, the order stays placed and answered as placed (201, pending payment), with
`payment_error` stating the problem that route would have answered (status, code, detail): the client retries
with `POST /api/orders/{order_no}/payments` and the access token of this answer. Never a 5xx for a placed order.
What is left is what the start-payment route leaves: a refusal before the gateway (the order not payable, the
database failing) rolls back and leaves no payment; a gateway that refuses or cannot be reached after the payment
was recorded leaves it `created`, and the retry reuses it (the same payment number at the gateway). The risk
rules of the payment stage run on the gateway's notification, as for a payment started the two-step way.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from quanyi.context import ShopContext
from quanyi.errors import DomainError, InvalidInput
from quanyi.orders.schemas import OrderCreated, PaymentNotStarted, PaymentStartRequest
from quanyi.payments.gateway import UnknownGateway

__all__ = ["UnknownPayGateway", "check_pay", "with_payment"]

logger = logging.getLogger("quanyi.orders.pay_at_checkout")


class UnknownPayGateway(InvalidInput):
    """Checkout's `pay.gateway` is not a gateway buyers can choose: bad input, refused before the order."""

    code = "unknown_gateway"


def check_pay(ctx: ShopContext, pay: PaymentStartRequest) -> None:
    """Refuse a `pay` that could never start (before the order is placed, so nothing is written)."""
    try:
        ctx.gateways.get(pay.gateway)
    except UnknownGateway:
        raise UnknownPayGateway(f"payment gateway {pay.gateway!r} is not configured; choose one the shop takes "
                                "(pay.gateway), or leave out pay and start the payment later") from None


async def with_payment(ctx: ShopContext, created: OrderCreated, pay: PaymentStartRequest, ip: str) -> OrderCreated:
    """The placed order's answer with its payment started (`payment`), or why it was not (`payment_error`)."""
    from quanyi.payments.routes import payment_started  # payments.routes imports orders: import at first use
    from quanyi.problems import status_for

    try:
        started = await payment_started(ctx, created.order_no, pay, ip)
    except DomainError as exc:
        logger.info("checkout %s placed, payment at %s not started: %s", created.order_no, pay.gateway, exc.code)
        refusal = PaymentNotStarted(status=status_for(exc), code=exc.code, detail=exc.message)
    except (SQLAlchemyError, OSError) as exc:  # the database (or its connection) failed: the order is committed
        logger.warning("checkout %s placed, payment at %s not started: %s", created.order_no, pay.gateway,
                       str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
        refusal = PaymentNotStarted(status=503, code="database_unavailable",
                                    detail="the payment could not be started right now; the order is placed: "
                                           "start its payment again shortly")
    except Exception:
        logger.exception("checkout %s placed, starting its payment at %s failed", created.order_no, pay.gateway)
        refusal = PaymentNotStarted(status=500, code="internal_error",
                                    detail="the payment could not be started; the order is placed: start its "
                                           "payment again")
    else:
        return created.model_copy(update={"payment": started})
    return created.model_copy(update={"payment_error": refusal})
