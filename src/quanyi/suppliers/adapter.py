"""One interface over every supplier API (供应商接口), whatever its wire dialect.

An adapter speaks one dialect to one supplier endpoint. It never touches our database: it turns our
requests into the supplier's wire format and the supplier's answers (and callbacks) into the plain
records below. Routing, sync and the ledger work only with these records.

Errors say what we know about the outcome, because that decides whether a retry may buy twice:
- `SupplierRejected`, `SupplierOutOfStock`, `SupplierPriceChanged`, `SupplierUnavailable`: the supplier
  did not take the order; trying the next supplier is safe.
- `SupplierOutcomeUnknown` (timeouts after the request was sent, broken responses): the supplier may have
  taken it. Ask `query_order` with the same idempotency key before trying anyone else.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import httpx

__all__ = [
    "SupplierDialect", "ProductKind", "SupplierEndpoint", "CatalogItem", "StockQuote", "SupplierCode",
    "CardPurchaseRequest", "CardPurchaseResult", "RechargeRequest", "RechargeState", "RechargeStatus",
    "OrderQueryResult", "QueryState", "StockEvent", "RechargeEvent", "PurchaseNews", "CallbackEvent", "CallbackAck",
    "SupplierAdapter", "SupplierError", "SupplierUnavailable", "SupplierOutcomeUnknown", "SupplierPurchasePending",
    "SupplierRejected",
    "SupplierOutOfStock", "SupplierPriceChanged", "SupplierUnsupported", "CallbackRejected",
    "register_dialect", "build_adapter", "known_dialects", "CredentialField", "credential_fields",
]


class SupplierDialect(enum.StrEnum):
    QUANYI = "quanyi"  # our own JSON-over-HTTP protocol, HMAC-SHA256 signed (docs/supplier-protocol.md)
    CARD_PLATFORM = "card_platform"  # form-encoded, MD5-signed wholesale card platform (卡密平台), synchronous
    ASYNC_RECHARGE = "async_recharge"  # asynchronous direct recharge (直充): submit, then callback + polling


class ProductKind(enum.StrEnum):
    CARD_KEY = "card_key"  # the supplier hands over codes (卡密)
    DIRECT_RECHARGE = "direct_recharge"  # the supplier credits an account (直充)


@dataclass(frozen=True)
class SupplierEndpoint:
    """Where and how to reach one supplier. `credentials` are decrypted, dialect-specific fields
    (e.g. {"app_id": ..., "secret": ...}); never logged."""

    supplier_code: str
    base_url: str
    credentials: Mapping[str, str]
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class CatalogItem:
    """One product in a supplier's catalog."""

    product_code: str
    name: str
    kind: ProductKind
    face_value_cents: int
    cost_cents: int  # what we pay per unit
    currency: str = "CNY"
    stock: int | None = None  # None: not counted (typical for direct recharge)
    available: bool = True


@dataclass(frozen=True)
class StockQuote:
    """Current stock and cost of one supplier product."""

    product_code: str
    cost_cents: int
    stock: int | None
    available: bool = True


@dataclass(frozen=True)
class SupplierCode:
    """A card key bought from a supplier, still plaintext: store it encrypted at once."""

    code: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class CardPurchaseRequest:
    idempotency_key: str  # same key => the supplier returns the same purchase, never a second one
    product_code: str
    quantity: int
    max_unit_cost_cents: int  # refuse (SupplierPriceChanged) rather than pay more than this


@dataclass(frozen=True)
class CardPurchaseResult:
    supplier_order_no: str
    unit_cost_cents: int
    codes: Sequence[SupplierCode]


class RechargeState(enum.StrEnum):
    SUBMITTED = "submitted"  # accepted by the supplier, not started
    PROCESSING = "processing"  # being credited
    SUCCEEDED = "succeeded"  # the account was credited
    FAILED = "failed"  # definitely not credited; money not owed to the supplier


@dataclass(frozen=True)
class RechargeRequest:
    idempotency_key: str
    product_code: str
    account: str  # phone number or game/platform account to credit
    quantity: int
    max_unit_cost_cents: int
    callback_url: str | None = None


@dataclass(frozen=True)
class RechargeStatus:
    supplier_order_no: str | None
    state: RechargeState
    unit_cost_cents: int | None = None
    message: str = ""


class QueryState(enum.StrEnum):
    NOT_FOUND = "not_found"  # the supplier never took an order with this idempotency key
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class OrderQueryResult:
    """What the supplier says about an order we may have placed (recovery and reconciliation)."""

    idempotency_key: str
    state: QueryState
    supplier_order_no: str | None = None
    unit_cost_cents: int | None = None
    quantity: int | None = None
    codes: Sequence[SupplierCode] = ()  # card purchases: the codes it delivered
    message: str = ""


@dataclass(frozen=True)
class StockEvent:
    """Pushed by a supplier: stock and/or cost of a product changed."""

    product_code: str
    stock: int | None
    cost_cents: int | None = None
    available: bool = True


@dataclass(frozen=True)
class RechargeEvent:
    """Pushed by a supplier: a direct recharge moved on."""

    idempotency_key: str
    supplier_order_no: str | None
    state: RechargeState
    unit_cost_cents: int | None = None
    message: str = ""


@dataclass(frozen=True)
class PurchaseNews:
    """Pushed by a supplier about an order it took: a card order answered "processing" is now `succeeded` or
    `failed` (ask it with query_order), or an order was `refunded` there (refunded_cents so far)."""

    idempotency_key: str
    state: str
    refunded_cents: int | None = None


CallbackEvent = StockEvent | RechargeEvent | PurchaseNews


@dataclass(frozen=True)
class CallbackAck:
    """The body the dialect expects in answer to its callback (some want "success", some JSON)."""

    status_code: int = 200
    media_type: str = "text/plain"
    body: bytes = b"success"


class SupplierError(Exception):
    """Base for supplier failures. `retryable` says whether the same supplier may be tried again later."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class SupplierUnavailable(SupplierError):
    """Connection refused, 5xx before acceptance, circuit open: the order was not taken."""

    retryable = True


class SupplierOutcomeUnknown(SupplierError):
    """Timed out or garbled after sending: the order may exist. Query before buying elsewhere."""

    retryable = True


class SupplierPurchasePending(SupplierOutcomeUnknown):
    """The supplier took a card order and will deliver later (it buys upstream itself): ask it (query_order)
    later. Unlike a timeout this is a healthy answer."""


class SupplierRejected(SupplierError):
    """The supplier refused the request for a reason that will not go away (bad product, bad account...)."""


class SupplierOutOfStock(SupplierError):
    """The supplier has not enough stock for this purchase."""


class SupplierPriceChanged(SupplierError):
    """The supplier's unit cost is above what we accept; `context['unit_cost_cents']` when known."""


class SupplierUnsupported(SupplierError):
    """This dialect cannot do that (e.g. a card platform asked for a direct recharge)."""


class CallbackRejected(Exception):
    """A callback that is not authentic or not understood: answer 4xx, change nothing."""


class SupplierAdapter(Protocol):
    dialect: ClassVar[SupplierDialect]

    async def fetch_catalog(self) -> list[CatalogItem]:
        """Every product the supplier offers us, with cost and stock."""
        ...

    async def fetch_quotes(self, product_codes: Sequence[str]) -> list[StockQuote]:
        """Current stock and cost for these products (periodic pull sync)."""
        ...

    async def buy_card_keys(self, request: CardPurchaseRequest) -> CardPurchaseResult:
        """Buy codes in real time. Same idempotency key => same result, never a second purchase."""
        ...

    async def submit_recharge(self, request: RechargeRequest) -> RechargeStatus:
        """Submit a direct recharge; usually answers SUBMITTED/PROCESSING and finishes later."""
        ...

    async def query_order(self, idempotency_key: str, *, kind: ProductKind) -> OrderQueryResult:
        """Look up an order we may have placed, by our idempotency key."""
        ...

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> list[CallbackEvent]:
        """Verify and decode a callback the supplier sent us; raise CallbackRejected if not authentic."""
        ...

    def callback_ack(self) -> CallbackAck:
        """What to answer a callback we accepted."""
        ...


AdapterFactory = Callable[[SupplierEndpoint, httpx.AsyncClient], SupplierAdapter]
_FACTORIES: dict[SupplierDialect, AdapterFactory] = {}


def register_dialect(dialect: SupplierDialect, factory: AdapterFactory) -> None:
    _FACTORIES[dialect] = factory


def known_dialects() -> list[SupplierDialect]:
    _load_builtin_dialects()
    return sorted(_FACTORIES)


@dataclass(frozen=True)
class CredentialField:
    """One credential an adapter of a dialect needs, as a form asks for it. Every credential is sealed and never
    shown again; `secret` ones (signing keys) are typed into a password field."""

    name: str
    secret: bool


def credential_fields(dialect: SupplierDialect) -> tuple[CredentialField, ...]:
    """The credentials a dialect's adapter needs (its factory's `credential_fields`), in the order to ask for them;
    () when the dialect does not say (the adapter still checks what it is given)."""
    _load_builtin_dialects()
    return tuple(getattr(_FACTORIES.get(dialect), "credential_fields", ()))


def build_adapter(dialect: SupplierDialect, endpoint: SupplierEndpoint, http: httpx.AsyncClient) -> SupplierAdapter:
    """The adapter for one supplier; `http` is the shop's shared client (tests swap its transport)."""
    _load_builtin_dialects()
    try:
        factory = _FACTORIES[dialect]
    except KeyError:
        raise SupplierUnsupported(f"no adapter for dialect {dialect!r}") from None
    return factory(endpoint, http)


def _load_builtin_dialects() -> None:
    # Imported late: each dialect module registers itself and imports this one.
    import quanyi.suppliers.dialects  # noqa: F401


