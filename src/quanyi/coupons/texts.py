"""How a coupon reads to buyers (zh-CN / en): one line per kind, e.g. 满100减20 / ¥20 off orders of ¥100."""

from __future__ import annotations

from quanyi.coupons.models import Coupon
from quanyi.coupons.service import (
    CouponLimitReached,
    CouponNotApplicable,
    CouponNotFound,
    CouponSoldOut,
    InvalidCoupon,
)
from quanyi.errors import DomainError
from quanyi.money import format_money

__all__ = ["summary", "REASONS", "reason_text", "COUPON_ERRORS"]


def summary(coupon: Coupon, locale: str) -> str:
    """What the coupon gives, in the buyer's language."""
    zh = locale != "en"
    money = lambda cents: format_money(int(cents), coupon.currency)  # noqa: E731
    threshold = coupon.threshold_cents
    if coupon.kind == "amount_off":
        off = money(coupon.amount_off_cents)
        if threshold:
            return f"满{money(threshold)}减{off}" if zh else f"{off} off orders of {money(threshold)} or more"
        return f"立减{off}" if zh else f"{off} off"
    if coupon.kind == "percent_off":
        bps = int(coupon.percent_off_bps or 0)
        pay = 10_000 - bps  # 八五折 = pay 85 %
        zhe = f"{pay / 1000:g}折"
        text = zhe if zh else f"{bps / 100:g}% off"
        if coupon.max_discount_cents:
            cap = money(coupon.max_discount_cents)
            text += f"，最多减{cap}" if zh else f", up to {cap}"
        if threshold:
            text = (f"满{money(threshold)}享{text}" if zh else f"{text} on orders of {money(threshold)} or more")
        return text
    price = money(coupon.fixed_price_cents)
    return f"指定商品{price}一件" if zh else f"{price} each on selected items"


# Why a coupon did not apply (CouponNotApplicable.reason and the other coupon errors), for the storefront.
REASONS = {
    "zh-CN": {
        "inactive": "该优惠券已停用", "not_started": "该优惠券尚未开始", "expired": "该优惠券已过期",
        "other_merchant": "该优惠券不适用于此店铺的商品", "other_currency": "该优惠券不适用于此币种",
        "out_of_scope": "该优惠券不适用于此商品", "threshold_not_met": "未达到该优惠券的使用门槛",
        "no_discount": "该优惠券对此订单没有优惠", "new_members_only": "该优惠券仅限新会员使用",
        "member_required": "请先登录会员再使用该优惠券", "limit_reached": "您已达到该优惠券的使用次数上限",
        "already_used": "该优惠券已被使用", "not_stackable": "该优惠券不能与其他优惠券同时使用",
        "duplicate": "同一张优惠券不能重复使用", "coupon_not_found": "优惠码无效",
        "coupon_sold_out": "该优惠券已被领完或用完", "coupon_limit_reached": "您已达到该优惠券的上限",
        "invalid_coupon": "优惠券无效",
    },
    "en": {
        "inactive": "This coupon is paused", "not_started": "This coupon has not started yet",
        "expired": "This coupon has expired", "other_merchant": "This coupon is not for this shop's goods",
        "other_currency": "This coupon is not for this currency", "out_of_scope": "This coupon is not for this item",
        "threshold_not_met": "The order does not reach this coupon's minimum",
        "no_discount": "This coupon gives nothing off this order",
        "new_members_only": "This coupon is for new members only", "member_required": "Sign in to use this coupon",
        "limit_reached": "You have used this coupon as often as allowed", "already_used": "This coupon was used",
        "not_stackable": "This coupon cannot be combined with another", "duplicate": "The same coupon is given twice",
        "coupon_not_found": "Unknown coupon code", "coupon_sold_out": "This coupon is all gone",
        "coupon_limit_reached": "You already hold as many of this coupon as allowed",
        "invalid_coupon": "Invalid coupon",
    },
}


# The errors a checkout or a quote with coupons can end in, which a page shows next to the coupon field.
COUPON_ERRORS = (CouponNotFound, CouponNotApplicable, CouponSoldOut, CouponLimitReached, InvalidCoupon)


def reason_text(locale: str, exc: DomainError) -> str:
    """A coupon error in the buyer's language (the reason code of CouponNotApplicable, else the error code)."""
    texts = REASONS["en" if locale == "en" else "zh-CN"]
    return texts.get(str(exc.context.get("reason") or exc.code), texts["invalid_coupon"])
