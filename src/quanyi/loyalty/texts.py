"""Storefront texts of the points and level card, zh-CN and en."""

from __future__ import annotations

from quanyi.web.i18n import register_messages

__all__ = ["TEXTS"]

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "loyalty.points": "我的积分",
        "loyalty.points_value": "可抵 {value}",
        "loyalty.debt": "因退款扣回已使用的积分，欠 {points} 积分，将从之后获得的积分中抵扣。",
        "loyalty.expiring": "{points} 积分将于 {date} 过期",
        "loyalty.level": "会员等级",
        "loyalty.level.none": "普通会员",
        "loyalty.paid": "累计消费",
        "loyalty.next": "再消费 {amount} 升级为「{name}」",
        "loyalty.top": "已是最高等级",
        "loyalty.history": "积分明细",
        "loyalty.kind.earned": "购物获得",
        "loyalty.kind.spent": "下单抵扣",
        "loyalty.kind.returned": "订单取消退回",
        "loyalty.kind.expired": "过期",
        "loyalty.kind.clawed_back": "退款扣回",
        "loyalty.kind.adjusted": "客服调整",
        "loyalty.empty": "还没有积分变动。下单发货后即可获得积分。",
        "loyalty.use_points": "使用积分抵扣",
        "loyalty.use_points_hint": "可用 {points} 积分（每积分抵 {value}），最多抵扣订单金额的 {share}%。",
        "loyalty.err.points": "请输入要使用的积分数（整数）",
        "loyalty.err.points_gone": "积分已变动（已使用或过期），请重新填写。",
    },
    "en": {
        "loyalty.points": "My points",
        "loyalty.points_value": "worth {value}",
        "loyalty.debt": "A refund took back points you had spent: you owe {points} points, paid from the points "
                        "you earn next.",
        "loyalty.expiring": "{points} points expire on {date}",
        "loyalty.level": "Level",
        "loyalty.level.none": "Member",
        "loyalty.paid": "Paid so far",
        "loyalty.next": "{amount} more to reach “{name}”",
        "loyalty.top": "You are at the top level",
        "loyalty.history": "Points history",
        "loyalty.kind.earned": "Earned",
        "loyalty.kind.spent": "Spent on an order",
        "loyalty.kind.returned": "Returned (order cancelled)",
        "loyalty.kind.expired": "Expired",
        "loyalty.kind.clawed_back": "Taken back (refund)",
        "loyalty.kind.adjusted": "Adjusted by the shop",
        "loyalty.empty": "No points yet: orders earn points when they are delivered.",
        "loyalty.use_points": "Pay with points",
        "loyalty.use_points_hint": "{points} points available ({value} each), up to {share}% of the order.",
        "loyalty.err.points": "Enter a whole number of points",
        "loyalty.err.points_gone": "Your points changed (spent or expired): enter them again.",
    },
}

register_messages(TEXTS)
