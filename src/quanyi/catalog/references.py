"""What still refers to a SKU (catalog/deletion.py refuses deletes with it). Deleting a SKU is refused while anything
does, with a list the operator can act on:
configuration made for the SKU (a reseller's price, an enterprise's tier prices ...) can be removed first;
records (orders, card keys, campaigns ...) are kept, so such a SKU is taken off sale instead (on_sale=false).

The list names every table with a foreign key to catalog_sku (a test holds it to the models), so a delete never
reaches the database's foreign-key check, whose error would read like a concurrent edit.

Coupon scopes (coupons_target) name categories, products and SKUs by id without a foreign key (one column for
three tables). A coupon that has not ended (paused ones too: they can be resumed) keeps what it names from being
deleted; an ended one does not, and since catalog ids are never handed out twice (catalog/models.py
NEVER_REUSE_IDS), its scope can never come to name a newer row, even if its end is later moved forward.
UNLINKED lists every such column and why it is safe (a test holds it to the models)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, column, func, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import UTCDateTime

__all__ = ["Referrer", "Reference", "REFERRERS", "COUPONS", "UNLINKED", "SKU_INSTEAD", "PRODUCT_INSTEAD",
           "CATEGORY_INSTEAD", "references_to_sku", "coupons_naming", "describe_references", "describe_coupons"]


@dataclass(frozen=True)
class Referrer:
    """One kind of row that points at a SKU. `remove_with` says how an operator removes it (None: a record the
    shop keeps, which only taking the SKU off sale gets out of the way); `{sku}` / `{sku_id}` are filled in."""

    kind: str  # stable, machine-readable
    table: str
    one: str
    many: str
    remove_with: str | None = None


REFERRERS: tuple[Referrer, ...] = (
    # configuration made for the SKU: remove it first
    Referrer("reseller_prices", "resellers_price", "reseller price", "reseller prices",
             "DELETE /api/admin/resellers/{{code}}/prices/{sku}, or the reseller's page in the console"),
    Referrer("enterprise_prices", "enterprises_price_tier", "enterprise tier price", "enterprise tier prices",
             "DELETE /api/admin/enterprises/{{code}}/prices/{sku}"),
    Referrer("level_prices", "loyalty_level_price", "member level price", "member level prices",
             "DELETE /api/admin/loyalty/levels/{{code}}/prices/{sku_id}"),
    Referrer("supplier_mappings", "suppliers_sku_mapping", "supplier mapping", "supplier mappings",
             "DELETE /api/admin/supplier-mappings/{{id}}"),
    Referrer("price_policy", "suppliers_sku_pricing", "supplier price policy", "supplier price policies",
             "DELETE /api/admin/skus/{sku_id}/price-policy"),
    Referrer("profit_share_rules", "ledger_profit_share_rule", "profit-share rule", "profit-share rules",
             "DELETE /api/admin/ledger/share-rules?sku_id={sku_id}"),
    # records the shop keeps
    Referrer("orders", "orders_order", "order", "orders"),
    Referrer("card_keys", "inventory_card_key", "card key", "card keys"),
    Referrer("shared_codes", "inventory_shared_code", "shared code", "shared codes"),
    Referrer("import_batches", "inventory_import_batch", "card-key import", "card-key imports"),
    Referrer("import_jobs", "inventory_import_job", "card-key import job", "card-key import jobs"),
    Referrer("campaign_options", "enterprises_campaign_option", "enterprise campaign option",
             "enterprise campaign options"),
    Referrer("campaign_claims", "enterprises_campaign_claim", "campaign claim", "campaign claims"),
    Referrer("bulk_purchases", "enterprises_purchase", "enterprise bulk purchase", "enterprise bulk purchases"),
    Referrer("supplier_price_changes", "suppliers_price_change", "supplier price change", "supplier price changes"),
)


# Columns naming a catalog id without a foreign key, and what keeps each from ever meaning a newer row. Inside JSON
# (not a column, so not held by the test): a risk rule's params.sku_id (a velocity rule limited to one SKU); since
# ids are never reused, a deleted SKU's rule never matches a newer SKU, it only stops matching anything.
UNLINKED: dict[tuple[str, str], str] = {
    ("coupons_target", "target_id"): "coupon scope: coupons_naming refuses deletes; ids are never reused",
    ("orders_order", "product_id"): "snapshot of the order's SKU's product: the order's sku_id foreign key keeps "
                                    "the SKU, and with it its product",
    ("risk_order_signals", "sku_id"): "written with its order only: the order's sku_id foreign key keeps the SKU",
}

# Coupons that have not ended and whose scope names the row (not a foreign key: see the module docstring).
END_COUPON = "PATCH /api/admin/coupons/{id} with ends_at now, or end it on the coupon's console page"
COUPONS = Referrer("coupons", "coupons_target", "coupon that has not ended", "coupons that have not ended",
                   END_COUPON.replace("{", "{{").replace("}", "}}"))


@dataclass(frozen=True)
class Reference:
    referrer: Referrer
    count: int
    names: tuple[str, ...] = ()  # which ones, when the operator needs to find them (coupons)

    @property
    def kind(self) -> str:
        return self.referrer.kind

    @property
    def removable(self) -> bool:
        return self.referrer.remove_with is not None

    def phrase(self) -> str:
        named = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.count} {self.referrer.one if self.count == 1 else self.referrer.many}{named}"


async def references_to_sku(session: AsyncSession, sku_id: int) -> list[Reference]:
    """What refers to the SKU now, in REFERRERS order (one statement)."""
    counts = [
        select(func.count()).select_from(table(r.table, column("sku_id"))).where(column("sku_id") == sku_id)
        .scalar_subquery().label(r.kind)
        for r in REFERRERS
    ]
    row = (await session.execute(select(*counts))).one()
    return [Reference(r, int(n)) for r, n in zip(REFERRERS, row, strict=True) if n]


async def coupons_naming(session: AsyncSession, targets: Sequence[tuple[str, int]],
                         now: dt.datetime) -> Reference | None:
    """The coupons that have not ended (paused or not) whose scope names one of `targets` ((kind, id): kind
    category / product / SKU), as one Reference naming them; None if there are none."""
    if not targets:
        return None
    target = table("coupons_target", column("coupon_id", Integer), column("kind", String),
                   column("target_id", Integer))
    coupon = table("coupons_coupon", column("id", Integer), column("name", String), column("ends_at", UTCDateTime))
    rows = (await session.execute(
        select(coupon.c.id, coupon.c.name).where(
            coupon.c.ends_at > now,
            coupon.c.id.in_(select(target.c.coupon_id).where(
                tuple_(target.c.kind, target.c.target_id).in_([tuple(t) for t in targets]))))
        .order_by(coupon.c.id))).all()
    if not rows:
        return None
    return Reference(COUPONS, len(rows), tuple(f"#{coupon_id} {name}" for coupon_id, name in rows))


SKU_INSTEAD = "take the SKU off sale instead (on_sale=false)"
PRODUCT_INSTEAD = "deactivate the product instead (is_active=false)"
CATEGORY_INSTEAD = "deactivate the category instead (is_active=false)"


def describe_references(sku_code: str, sku_id: int, references: Sequence[Reference], *, subject: str = "",
                        instead: str = SKU_INSTEAD) -> str:
    """The operator's answer: what refers to the SKU and what to do about it. `subject`: what cannot be deleted
    (the SKU itself by default)."""
    listed = "; ".join(
        ref.phrase() + (f" (remove with {ref.referrer.remove_with.format(sku=sku_code, sku_id=sku_id)})"
                        if ref.referrer.remove_with else "")
        for ref in references)
    kept = [ref.referrer.many for ref in references if not ref.removable]
    if kept:
        advice = f"{', '.join(kept)} are records the shop keeps, so {instead}"
    else:
        advice = f"remove those first, or {instead}"
    subject = subject or f"SKU {sku_code}"
    return f"{subject} cannot be deleted: SKU {sku_code} is still referred to by {listed}; {advice}"


def describe_coupons(subject: str, coupons: Reference, *, instead: str) -> str:
    """The operator's answer when only coupons keep `subject` (e.g. "category games") from being deleted."""
    return (f"{subject} cannot be deleted: it is in the scope of {coupons.phrase()}, which would apply to "
            f"nothing once it is gone; end them first ({END_COUPON}), or {instead}")
