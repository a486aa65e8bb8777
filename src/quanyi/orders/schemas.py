"""Request/response shapes of the order API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from quanyi.inventory.schemas import RevealedKey
from quanyi.orders.contact import normalize_contact
from quanyi.orders.recharge_account import normalize_recharge_account
from quanyi.orders.state import OrderStatus
from quanyi.schema_types import DbId, reject_control_chars

__all__ = [
    "OrderCreate", "OrderRead", "OrderCreated", "PaymentStartRequest", "PaymentStart", "PaymentNotStarted",
    "LookupRequest", "LookupResult", "RevealResponse", "ContactText", "QueryPassword", "FulfilmentProgress",
    "RechargeAccountText",
]


def _valid_contact(value: str) -> str:
    normalize_contact(value)  # raises ValueError with a readable message
    return value


ContactText = Annotated[
    str, StringConstraints(max_length=254), AfterValidator(reject_control_chars), AfterValidator(_valid_contact)
]
QueryPassword = Annotated[
    str, StringConstraints(min_length=4, max_length=64), AfterValidator(reject_control_chars)
]
CouponCodeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                                  pattern=r"^[A-Za-z0-9 \-]+$")]
GatewayName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


def _valid_recharge_account(value: str) -> str:
    normalize_recharge_account(value)  # raises ValueError with a readable message
    return value


RechargeAccountText = Annotated[
    str, StringConstraints(max_length=128), AfterValidator(reject_control_chars),
    AfterValidator(_valid_recharge_account),
]


class PaymentStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: GatewayName = "sandbox"
    mode: Literal["page", "wap", "qr"] = Field(
        default="page", description="page: desktop cashier; wap: mobile browser cashier; qr: a code to scan "
                                    "(gateways that only do one of these use it whatever is asked)")


class PaymentStart(BaseModel):
    payment_no: str
    gateway: str
    cashier_url: str | None = Field(description="Send the buyer here to pay (absent for QR-only checkouts)")
    qr_code: str | None = Field(default=None, description="Text to show as a QR code for the buyer's wallet app")
    amount_cents: int
    currency: str


class PaymentNotStarted(BaseModel):
    """Checkout with `pay`: the order was placed, but its payment could not be started. The problem the start-payment
    route would have answered; nothing of the payment was kept but what that route keeps (see orders.pay_at_checkout),
    so the client retries with `POST /api/orders/{order_no}/payments`."""

    status: int = Field(description="The HTTP status the start-payment route answers this refusal with")
    code: str = Field(description="The problem's stable code (e.g. order_not_payable, gateway_unavailable)")
    detail: str


def _absent(value: object) -> bool:
    return value is None


class FulfilmentProgress(BaseModel):
    """How far suppliers got with a paid order they fill (card purchase or direct recharge)."""

    kind: Literal["card_key", "direct_recharge"]
    # queued: waiting for a worker; purchasing: asking a supplier; submitted / processing: a recharge is with a
    # supplier; succeeded; failed: no supplier could do it (refund follows)
    stage: Literal["queued", "purchasing", "submitted", "processing", "succeeded", "failed"]
    attempts: int
    updated_at: dt.datetime


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku_id: DbId
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    contact: ContactText = Field(description="Buyer e-mail address or mobile number")
    query_password: QueryPassword | None = Field(
        default=None, description="Optional password to look the order up later without the contact"
    )
    locale: Literal["zh-CN", "en"] | None = None
    recharge_account: RechargeAccountText | None = Field(
        default=None, description="Direct-recharge SKUs only (required there): the mobile number or account to "
                                  "credit")
    card_key_id: DbId | None = Field(
        default=None, description="自选卡密 (SKUs with `pick_surcharge_cents` set): the card key the buyer picked from "
                                  "GET /api/catalog/skus/{sku_id}/pickable-keys; quantity must be 1 and the SKU's "
                                  "surcharge is added to the price. 409 card_key_taken if another buyer got it first.")
    # Distribution (分销): the promoter who referred the buyer (an approved promoter's code, not the buyer's own).
    distributor_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] | None = None
    points: Annotated[int, Field(ge=0, le=1_000_000_000)] = Field(
        default=0, description="Points (积分) to spend (a signed-in member; capped by the balance and the maximum "
                               "share, see the breakdown)")
    # Coupons (优惠券): codes typed at checkout, and a signed-in member's own coupons; priced by quanyi/pricing.
    coupon_codes: Annotated[list[CouponCodeText], Field(max_length=3)] = Field(
        default_factory=list, description="Coupon codes (a public code or a single-use code)")
    member_coupon_ids: Annotated[list[DbId], Field(max_length=3)] = Field(
        default_factory=list, description="Signed-in members: ids of their own coupons (GET /api/coupons/mine)")
    # Risk control: answering a `verification_required` problem (its challenge_id + the code sent), or a captcha.
    challenge_id: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    verification_code: Annotated[str, Field(max_length=12, pattern=r"^[A-Za-z0-9]+$")] | None = None
    captcha_token: Annotated[str, Field(max_length=2048, pattern=r"^[\x21-\x7e]+$")] | None = None
    # Pay in the same request (orders.pay_at_checkout): the start-payment route's body, answered in `payment`.
    pay: PaymentStartRequest | None = Field(
        default=None, description="Start the payment in the same request (what POST /api/orders/{order_no}/payments "
                                  "takes); the answer's `payment` (or `payment_error`) tells how it went")


class OrderRead(BaseModel):
    order_no: str
    status: OrderStatus
    product_id: int
    product_name: str
    sku_name: str
    quantity: int
    unit_price_cents: int
    total_cents: int = Field(description="The payable: list_total_cents less every discount (quanyi/pricing)")
    list_total_cents: int = 0
    member_discount_cents: int = 0
    coupon_discount_cents: int = 0
    points_used: int = 0
    points_discount_cents: int = 0
    currency: str
    total_display: str
    contact_masked: str
    created_at: dt.datetime
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    delivered_at: dt.datetime | None
    delivered_keys: int
    status_reason: str | None
    refunded_cents: int = 0
    refunded_display: str = ""
    delivery_type: str = "card_key"
    recharge_account_masked: str | None = None
    picked_card_key_label: str | None = Field(
        default=None, description="自选卡密: the label of the card key the buyer picked (never its code)")
    fulfilment: FulfilmentProgress | None = Field(
        default=None, description="Paid orders filled by suppliers: live progress of the purchase or recharge")


class OrderCreated(OrderRead):
    access_token: str = Field(description="Send as X-Order-Token to read, pay for or reveal this order")
    # Only with `pay` in the request (left out of the answer otherwise): one of the two.
    payment: PaymentStart | None = Field(
        default=None, exclude_if=_absent,
        description="Checkout with `pay`: the payment started, as POST /api/orders/{order_no}/payments answers it")
    payment_error: PaymentNotStarted | None = Field(
        default=None, exclude_if=_absent,
        description="Checkout with `pay`: the order is placed (pending payment) but its payment was not started; "
                    "retry with POST /api/orders/{order_no}/payments")


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    contact: Annotated[str, StringConstraints(max_length=254)] | None = None
    query_password: Annotated[str, StringConstraints(max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if not (self.contact or self.query_password):
            raise ValueError("give the contact used at checkout or the order's query password")
        return self


class LookupResult(BaseModel):
    order_no: str
    access_token: str


class RevealResponse(BaseModel):
    order_no: str
    keys: list[RevealedKey]
    redemption_guide_html: str
