"""Built-in rule types (规则类型): the parameters each accepts (Pydantic, strict) and when it hits.

A rule sees the `Signals` of one checkout / payment / delivery and a `Probe` onto the counters and the
order history; it hits or stays quiet. The engine adds up the scores of the rules that hit and takes the
strictest action. Counter keys are `<what>:<dimension>:<value>`; what is recorded for every checkout
attempt is in `attempt_events`, rule-specific events come from `extra_events`.

Devices (risk.device): the `device` dimension counts the shop-issued device cookie, else the client's
`X-Device-Id` header; the `*_without_device` dimensions count the addresses that check out without a
shop-issued cookie, header or not, so a script that invents a new device id for every checkout is still
counted there.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from quanyi.errors import InvalidInput
from quanyi.risk.counters import Event, fresh_member
from quanyi.schema_types import reject_control_chars
from quanyi.scope import PLATFORM_MERCHANT_ID

__all__ = ["Decision", "Stage", "Signals", "Probe", "Hit", "RULE_PARAMS", "validate_params", "params_model",
           "rule_hits", "attempt_events", "extra_events", "payer_events", "payer_hash", "InvalidRuleParams",
           "STRICTNESS", "CheckoutOutcome", "checkout_outcome"]


class InvalidRuleParams(InvalidInput):
    code = "invalid_rule_params"


class Decision(enum.StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"  # extra verification: one-time code or captcha
    REVIEW = "review"  # hold the paid order for a human
    DENY = "deny"


STRICTNESS = {Decision.ALLOW: 0, Decision.CHALLENGE: 1, Decision.REVIEW: 2, Decision.DENY: 3}


@dataclass(frozen=True)
class CheckoutOutcome:
    """What a decision demands of a checkout. The ladder allow < challenge < review < deny: each step demands
    everything the step below it does and more, so a higher score (which only ever raises the decision) can never
    let an order through more easily. `review` is a challenge *and* a hold: a buyer a code was asked of at a lower
    score is asked it at a higher one too (and refused the same way when no code can reach them)."""

    verify: bool  # the buyer proves the contact (one-time code or captcha) before the order exists
    hold: bool  # the paid order waits for staff (风控审核) instead of being delivered
    refuse: bool  # no order at all

    def at_least(self, other: CheckoutOutcome) -> bool:
        return all(mine >= theirs for mine, theirs in zip(
            (self.verify, self.hold, self.refuse), (other.verify, other.hold, other.refuse), strict=True))


_LADDER = {
    Decision.ALLOW: CheckoutOutcome(verify=False, hold=False, refuse=False),
    Decision.CHALLENGE: CheckoutOutcome(verify=True, hold=False, refuse=False),
    Decision.REVIEW: CheckoutOutcome(verify=True, hold=True, refuse=False),
    Decision.DENY: CheckoutOutcome(verify=True, hold=True, refuse=True),  # refused: nothing milder is left
}


def checkout_outcome(decision: Decision) -> CheckoutOutcome:
    """The one place a checkout decision becomes what happens to the buyer (risk.engine.screen_checkout)."""
    return _LADDER[decision]


class Stage(enum.StrEnum):
    ORDER = "order"  # order creation
    PAYMENT = "payment"  # payment confirmed
    DELIVERY = "delivery"  # just before the goods are handed over


@dataclass
class Signals:
    stage: Stage
    ip: str
    device: str  # "" when none; counted per device whether shop-issued or only claimed
    contact: str
    contact_kind: str
    sku_id: int
    quantity: int
    amount_cents: int
    at: float  # unix seconds (risk clock)
    local_time: dt.time
    order_id: int | None = None
    # A keyed hash of the payer account the gateway named (payment stage only; "" when unknown).
    payer: str = ""
    # The device is a shop-issued, signed cookie (risk.device). A checkout "without device" is one without
    # such a cookie: a client-chosen X-Device-Id header is free to rotate, so it does not count as a device there.
    device_verified: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The merchant whose goods these are: the `shop` dimensions count each merchant's shop on its own, so one
    # merchant's flash sale never makes another merchant's buyers answer a code.
    merchant_id: int = PLATFORM_MERCHANT_ID

    def value(self, dimension: str) -> str:
        if dimension == "shop":
            return "all" if self.merchant_id == PLATFORM_MERCHANT_ID else f"m{self.merchant_id}"
        if dimension == "shop_without_device":  # a surge of cookieless (scripted) checkouts shop-wide
            return "" if self.device_verified else self.value("shop")
        if dimension == "sku_without_device":  # ... of one SKU (a flash-sale bot run)
            return "" if self.device_verified else str(self.sku_id)
        return {"ip": self.ip, "device": self.device, "contact": self.contact, "payer": self.payer}.get(dimension, "")

    def public(self) -> dict[str, Any]:
        # Whether the device was shop-issued is known at checkout only (it is not stored with the order).
        verified = {"device_verified": self.device_verified} if self.stage is Stage.ORDER else {}
        return {"ip": self.ip, "device": self.device, **verified, "contact": self.contact, "sku_id": self.sku_id,
                "quantity": self.quantity, "amount_cents": self.amount_cents, "local_time": self.local_time.isoformat(
                    timespec="minutes"), **({"payer": self.payer[:12]} if self.payer else {}), **self.extra}


class Probe(Protocol):
    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int: ...
    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int: ...
    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int: ...
    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]: ...
    async def has_paid_before(self, contact: str) -> bool: ...
    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]: ...


@dataclass(frozen=True)
class Hit:
    detail: str


# ---------------------------------------------------------------- parameters per rule type

class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


Dimension = Literal["ip", "device", "contact"]
Window = Annotated[int, Field(ge=10, le=7 * 86_400, description="Sliding window in seconds")]


class VelocityParams(_Params):
    """More than `max_count` checkout attempts by one IP / device / contact within the window; `shop`
    counts every checkout. `shop_without_device` counts the client addresses (IPs) that checked out without
    a shop-issued device cookie (an X-Device-Id header alone does not count as a device here: a script can
    send a new one every time), `sku_without_device` those that did so for the same SKU: a surge of
    cookieless checkouts from many addresses (a bot on a proxy pool). One address's burst counts once (the
    `ip` rules judge it), so it does not make every other cookieless buyer of the SKU answer a code.
    `payer` counts the orders one payer account (as the gateway names it) paid for: it only has a value at
    the payment and delivery stages."""
    dimension: Literal["ip", "device", "contact", "shop", "shop_without_device", "sku_without_device", "payer"]
    window_seconds: Window
    max_count: Annotated[int, Field(ge=1, le=100_000)]


class DistinctContactsParams(_Params):
    """One IP, device or payer account using more than `max_distinct` different contacts within the window
    (`payer`: one paying account paying for orders of many contacts; payment and delivery stages only)."""
    dimension: Literal["ip", "device", "payer"]
    window_seconds: Window
    max_distinct: Annotated[int, Field(ge=1, le=100_000)]


class CardTestingParams(_Params):
    """More than `max_count` small orders (amount <= max_amount_cents) by one dimension in the window."""
    dimension: Dimension
    window_seconds: Window
    max_count: Annotated[int, Field(ge=1, le=100_000)]
    max_amount_cents: Annotated[int, Field(ge=1, le=10**9)]


class FailedPaymentsParams(_Params):
    """More than `max_unpaid` orders left unpaid (abandoned or failed) by one dimension in the window.
    Orders younger than `grace_seconds` may still be paid and are not counted."""
    dimension: Dimension
    window_seconds: Window
    max_unpaid: Annotated[int, Field(ge=1, le=100_000)]
    grace_seconds: Annotated[int, Field(ge=0, le=86_400)] = 900


class AmountLimitParams(_Params):
    """Quantity / amount thresholds: per order, per buyer (contact) per shop day, or per SKU per shop day over
    all buyers (day scopes: orders paid or still payable, plus this one). `sku_id`: only that SKU; `per_sku`
    (buyer_day): each SKU counted on its own instead of all together."""
    scope: Literal["order", "buyer_day", "sku_day"]
    sku_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    per_sku: bool = False
    max_quantity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    max_amount_cents: Annotated[int, Field(ge=1, le=10**12)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> AmountLimitParams:
        if self.max_quantity is None and self.max_amount_cents is None:
            raise ValueError("set max_quantity, max_amount_cents or both")
        return self


class TimeWindowParams(_Params):
    """Orders placed between `start` and `end` shop time (HH:MM; may wrap midnight)."""
    start: dt.time
    end: dt.time
    new_accounts_only: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindowParams:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class NewAccountParams(_Params):
    """A contact that has never paid for an order before, ordering at least `min_amount_cents`."""
    min_amount_cents: Annotated[int, Field(ge=0, le=10**12)] = 0


Entry = Annotated[str, Field(min_length=1, max_length=254)]


class NewDeviceParams(_Params):
    """A contact that has paid before, now ordering from a device and an IP it never paid from (account
    takeover). Checkouts without a device id are not judged."""
    ip_must_be_new: bool = True


class ListParams(_Params):
    """Block list (deny) or allow list (skip every other rule): IPs or CIDRs, e-mail domains, phones, devices."""
    ips: Annotated[list[Entry], Field(max_length=10_000)] = []
    email_domains: Annotated[list[Entry], Field(max_length=10_000)] = []
    phones: Annotated[list[Entry], Field(max_length=10_000)] = []
    devices: Annotated[list[Entry], Field(max_length=10_000)] = []

    @field_validator("ips", "email_domains", "phones", "devices")
    @classmethod
    def _printable(cls, value: list[str]) -> list[str]:
        return [reject_control_chars(v) for v in value]

    @field_validator("ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in value if d.strip()]

    @model_validator(mode="after")
    def _some_entry(self) -> ListParams:
        if not (self.ips or self.email_domains or self.phones or self.devices):
            raise ValueError("a list needs at least one entry")
        return self


RULE_PARAMS: dict[str, type[_Params]] = {
    "velocity": VelocityParams, "distinct_contacts": DistinctContactsParams, "card_testing": CardTestingParams,
    "failed_payments": FailedPaymentsParams, "amount_limit": AmountLimitParams, "time_window": TimeWindowParams,
    "new_account": NewAccountParams, "new_device": NewDeviceParams, "block_list": ListParams, "allow_list": ListParams,
}


def params_model(kind: str, params: Mapping[str, Any]) -> _Params:
    """A stored rule's parameters as its kind's model (what `rule_hits` judges with)."""
    return RULE_PARAMS[kind].model_validate(params)


def _checked(kind: str, params: Mapping[str, Any] | _Params) -> _Params:
    return params if isinstance(params, _Params) else params_model(kind, params)


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a rule's parameters against its type; the normalized JSON form is what gets stored."""
    model = RULE_PARAMS.get(kind)
    if model is None:
        raise InvalidRuleParams(f"unknown rule kind {kind!r}", known=sorted(RULE_PARAMS))
    try:
        return model.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidRuleParams(f"params.{first['field']}: {first['message']}" if first["field"]
                                else first["message"], errors=errors) from None


# ---------------------------------------------------------------- events and hits

def payer_hash(secret: bytes, payer_account: str) -> str:
    """The payer account as counters and logs see it: a keyed hash (HMAC-SHA256, app secret), so a
    gateway's buyer id never appears in Redis, the database or the decision log."""
    return hmac.new(secret, b"risk-payer:" + payer_account.encode(), hashlib.sha256).hexdigest()[:40]


_PER_ADDRESS = ("shop_without_device", "sku_without_device")  # velocity counts addresses, not checkouts


def attempt_events(s: Signals) -> list[Event]:
    """What every checkout attempt leaves in the counters, refused or not."""
    events: list[Event] = []
    for dim in ("ip", "device", "contact", "shop", *_PER_ADDRESS):
        if value := s.value(dim):
            events.append((f"att:{dim}:{value}", s.ip if dim in _PER_ADDRESS and s.ip else fresh_member()))
    for dim in ("ip", "device"):
        if (value := s.value(dim)) and s.contact:
            events.append((f"contacts:{dim}:{value}", s.contact))
    return events


def placed_events(s: Signals, what: str) -> list[Event]:
    """`placed` when an order was created, `paid` when it was paid; unpaid = placed - paid. `placed` events are
    written to Redis counters only: in the database the orders placed are counted from their signals rows
    (`Probe.placed_orders`, risk.engine.placed_orders_count), which hold the same ip, device, contact and moment.
    `paid` events likewise, for the payments whose risk-clock moment the signals row keeps (`paid_risk_at`,
    `Probe.paid_orders`, risk.engine.paid_orders_count): the others still write them."""
    return [(f"{what}:{dim}:{s.value(dim)}", str(s.order_id)) for dim in ("ip", "device", "contact") if s.value(dim)]


def payer_events(s: Signals) -> list[Event]:
    """What a confirmed payment by a known payer account leaves: the order (counted once, however often
    its payment is reported) and its contact, under the payer's keyed hash, never the raw account."""
    if not s.payer or s.order_id is None:
        return []
    events: list[Event] = [(f"att:payer:{s.payer}", str(s.order_id))]
    if s.contact:
        events.append((f"contacts:payer:{s.payer}", s.contact))
    return events


def extra_events(kind: str, params: Mapping[str, Any] | _Params, s: Signals) -> list[Event]:
    """`params`: the stored dict, or the model the rules cache validated once (`ruleset.CachedRule.checked`)."""
    if kind == "card_testing":
        p = _checked(kind, params)
        assert isinstance(p, CardTestingParams)
        if s.amount_cents <= p.max_amount_cents and (value := s.value(p.dimension)):
            return [(f"small{p.max_amount_cents}:{p.dimension}:{value}", fresh_member())]
    return []


def _in_window(now: dt.time, start: dt.time, end: dt.time) -> bool:
    return start <= now < end if start < end else (now >= start or now < end)


def _on_list(p: ListParams, s: Signals) -> str | None:
    if s.ip and p.ips:
        try:
            address = ipaddress.ip_address(s.ip)
            for net in p.ips:
                if address in ipaddress.ip_network(net, strict=False):
                    return f"ip {s.ip} in {net}"
        except ValueError:
            pass
    if s.contact_kind == "email" and "@" in s.contact:
        domain = s.contact.rsplit("@", 1)[1].lower()
        if domain in p.email_domains:
            return f"e-mail domain {domain}"
    if s.contact_kind == "phone" and s.contact in p.phones:
        return "phone number"
    if s.device and s.device in p.devices:
        return "device"
    return None


async def rule_hits(kind: str, params: Mapping[str, Any] | _Params, s: Signals, probe: Probe, *,
                    day_start: float) -> Hit | None:
    """Does this rule hit these signals? `day_start`: start of the current shop day (unix seconds). `params`: the
    stored dict, or the model the rules cache validated once (`ruleset.CachedRule.checked`)."""
    model = _checked(kind, params)
    if isinstance(model, VelocityParams):
        value = s.value(model.dimension)
        n = await probe.count(f"att:{model.dimension}:{value}", model.window_seconds) if value else 0
        what = {"payer": "paid orders"}.get(model.dimension, "addresses" if model.dimension in _PER_ADDRESS
                                                                          else "checkouts")
        return Hit(f"{n} {what} by {model.dimension} in {model.window_seconds}s") if n > model.max_count else None
    if isinstance(model, DistinctContactsParams):
        value = s.value(model.dimension)
        n = await probe.count(f"contacts:{model.dimension}:{value}", model.window_seconds) if value else 0
        return Hit(f"{n} contacts from one {model.dimension}") if n > model.max_distinct else None
    if isinstance(model, CardTestingParams):
        value = s.value(model.dimension)
        if not value or s.amount_cents > model.max_amount_cents:
            return None
        n = await probe.count(f"small{model.max_amount_cents}:{model.dimension}:{value}", model.window_seconds)
        return Hit(f"{n} small orders by {model.dimension}") if n > model.max_count else None
    if isinstance(model, FailedPaymentsParams):
        value = s.value(model.dimension)
        if not value:
            return None
        until = s.at - model.grace_seconds
        placed = await probe.placed_orders(model.dimension, value, model.window_seconds, until)
        paid = await probe.paid_orders(model.dimension, value, model.window_seconds)
        unpaid = max(0, placed - paid)
        return Hit(f"{unpaid} unpaid orders by {model.dimension}") if unpaid > model.max_unpaid else None
    if isinstance(model, AmountLimitParams):
        if model.sku_id is not None and model.sku_id != s.sku_id:
            return None
        quantity, amount = s.quantity, s.amount_cents
        if model.scope != "order":
            one_sku = model.sku_id or (s.sku_id if model.per_sku or model.scope == "sku_day" else None)
            buyer = s.contact if model.scope == "buyer_day" else None
            q, a = await probe.day_totals(buyer, one_sku, day_start)
            quantity, amount = quantity + q, amount + a
        if model.max_quantity is not None and quantity > model.max_quantity:
            return Hit(f"quantity {quantity} > {model.max_quantity} ({model.scope})")
        if model.max_amount_cents is not None and amount > model.max_amount_cents:
            return Hit(f"amount {amount} > {model.max_amount_cents} ({model.scope})")
        return None
    if isinstance(model, TimeWindowParams):
        if not _in_window(s.local_time, model.start, model.end):
            return None
        if model.new_accounts_only and await probe.has_paid_before(s.contact):
            return None
        return Hit(f"placed at {s.local_time.isoformat(timespec='minutes')} shop time")
    if isinstance(model, NewAccountParams):
        if s.amount_cents < model.min_amount_cents or await probe.has_paid_before(s.contact):
            return None
        return Hit("first order of this contact")
    if isinstance(model, NewDeviceParams):
        if not s.device or not await probe.has_paid_before(s.contact):
            return None
        device_known, ip_known = await probe.known_from(s.contact, s.device, s.ip)
        if device_known or (model.ip_must_be_new and ip_known):
            return None
        return Hit("known buyer on a new device")
    if isinstance(model, ListParams):
        matched = _on_list(model, s)
        return Hit(matched) if matched else None
    raise AssertionError(kind)


def describe_kinds() -> Sequence[dict[str, Any]]:
    return [{"kind": k, "description": (m.__doc__ or "").strip(), "params": m.model_json_schema()}
            for k, m in RULE_PARAMS.items()]
