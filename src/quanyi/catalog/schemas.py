"""Request/response shapes of the catalog API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from quanyi.catalog.models import DeliveryType
from quanyi.money import CURRENCIES
from quanyi.schema_types import Cents, Code, DbId, LongText, Name, Slug

__all__ = [
    "CategoryCreate", "CategoryUpdate", "CategoryRead",
    "ProductCreate", "ProductUpdate", "ProductRead", "ProductSummary", "MerchantRef",
    "SkuCreate", "SkuUpdate", "SkuRead", "StockState", "PickableKeyRead", "ProductType",
]


def _known_currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"unsupported currency; use one of {', '.join(sorted(CURRENCIES))}")
    return value


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not (value.startswith("https://") or value.startswith("http://") or value.startswith("/")):
        raise ValueError("must be an http(s) URL or a path on this shop")
    if any(c in value for c in "\"'<> \n\r\t\\"):
        raise ValueError("contains characters not allowed in a URL")
    return value


PICK_SURCHARGE_DOC = ("自选卡密: set (0 or more) to let buyers pick one specific card key, by the label the operator "
                      "gave it, for this much more per unit; null: keys are handed out in stock order only.")
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True), AfterValidator(_known_currency)]
ImageUrl = Annotated[str | None, StringConstraints(max_length=500), AfterValidator(_http_url)]
SkuCode = Code
Quantity = Annotated[int, Field(ge=1, le=1000)]


class StockState(BaseModel):
    """What a buyer may know about stock: a number for card keys, and whether it can be bought."""

    available: int
    purchasable: bool
    # in_stock | sold_out | off_sale | coming_soon
    status: str


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug
    name: Name
    description: LongText = ""
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    is_active: bool = True


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug | None = None
    name: Name | None = None
    description: LongText | None = None
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] | None = None
    is_active: bool | None = None


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    name: str
    description: str
    sort_order: int
    is_active: bool


class SkuCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: SkuCode
    name: Name
    face_value_cents: Cents = 0
    price_cents: Cents
    currency: Currency = "CNY"
    delivery_type: DeliveryType = DeliveryType.CARD_KEY
    min_quantity: Quantity = 1
    max_quantity: Quantity = 10
    on_sale: bool = True
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    pick_surcharge_cents: Cents | None = Field(default=None, description=PICK_SURCHARGE_DOC)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_quantity < self.min_quantity:
            raise ValueError("max_quantity must be at least min_quantity")
        if self.pick_surcharge_cents is not None and self.delivery_type is not DeliveryType.CARD_KEY:
            raise ValueError("only card-key SKUs let buyers pick a key (pick_surcharge_cents)")
        return self


class SkuUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    pick_surcharge_cents: Cents | None = Field(
        default=None, description=PICK_SURCHARGE_DOC + " Send null to stop offering picks.")
    face_value_cents: Cents | None = None
    price_cents: Cents | None = None
    min_quantity: Quantity | None = None
    max_quantity: Quantity | None = None
    on_sale: bool | None = None
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] | None = None


ProductType = Literal["card_key", "chosen_card_key", "shared_code", "direct_recharge", "manual"]
PRODUCT_TYPE_DOC = ("How the SKU is sold: card_key (卡密, a stored code handed over at once), "
                    "chosen_card_key (自选卡密: as card_key, and the buyer may pick a specific key from "
                    "/api/catalog/skus/{id}/pickable-keys for "
                    "pick_surcharge_cents more), shared_code (循环卡密: one code sold to many buyers up to its sale "
                    "limit; stock is what the limit leaves), direct_recharge (直充 by a supplier), "
                    "manual (手动发货: staff deliver "
                    "it by hand after payment)")


class PickableKeyRead(BaseModel):
    """A card key a buyer may pick (自选卡密): its id and the label the operator gave it, never its code."""

    id: int
    label: str


class SkuRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    product_id: int
    code: str
    name: str
    face_value_cents: int
    price_cents: int
    currency: str
    price_display: str
    delivery_type: DeliveryType
    min_quantity: int
    max_quantity: int
    on_sale: bool
    stock: StockState
    product_type: ProductType = Field(default="card_key", description=PRODUCT_TYPE_DOC)
    pick_surcharge_cents: int | None = Field(default=None, description=PICK_SURCHARGE_DOC)


# A merchant's code (商户编码) in requests; resolved through the caller's scope (unknown or not theirs: 404).
MerchantRef = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_code: MerchantRef | None = Field(
        default=None, description="Platform staff: the merchant to create it for (default: the platform's own "
                                  "store). A merchant's staff always create for their own merchant.")
    category_id: DbId
    slug: Slug
    name: Name
    description: LongText = ""
    redemption_guide: LongText = ""
    cover_image_url: ImageUrl = None
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    is_active: bool = True
    skus: Annotated[list[SkuCreate], Field(max_length=50)] = []


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_id: DbId | None = None
    slug: Slug | None = None
    name: Name | None = None
    description: LongText | None = None
    redemption_guide: LongText | None = None
    cover_image_url: ImageUrl = None
    sort_order: Annotated[int, Field(ge=-10_000, le=10_000)] | None = None
    is_active: bool | None = None


class ProductSummary(BaseModel):
    id: int
    merchant_id: int
    merchant_code: str = Field(description="The shop selling it (商户); its page is /m/<merchant_code>")
    merchant_name: str
    slug: str
    name: str
    category_id: int
    cover_image_url: str | None
    min_price_cents: int | None
    currency: str | None
    price_display: str | None
    in_stock: bool
    stock_status: Literal["in_stock", "sold_out", "coming_soon", "off_sale"] = Field(
        description="in_stock: some SKU can be bought now; sold_out: listed SKUs have no stock; "
                    "coming_soon: listed SKUs cannot be ordered yet; off_sale: nothing is on sale")


class ProductRead(BaseModel):
    id: int
    merchant_id: int
    merchant_code: str = Field(description="The shop selling it (商户); its page is /m/<merchant_code>")
    merchant_name: str
    slug: str
    name: str
    category_id: int
    description: str
    redemption_guide: str
    redemption_guide_html: str
    cover_image_url: str | None
    is_active: bool
    updated_at: dt.datetime
    skus: list[SkuRead]
