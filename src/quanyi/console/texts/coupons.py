"""Texts of the console's coupon page."""

from quanyi.console.i18n import add_messages

add_messages({
    "menu.coupons": "优惠券",
    "coupons.title": "优惠券",
    "coupons.intro": "优惠券的发放与使用情况。新建、停用、发放给会员和生成券码：管理接口 /api/admin/coupons 或命令 quanyi coupons。",
    "coupons.name": "名称", "coupons.gives": "优惠", "coupons.distribution": "发放方式", "coupons.code": "券码",
    "coupons.taken": "已领/已用 / 总量", "coupons.used": "已支付订单", "coupons.reserved": "待支付订单",
    "coupons.returned": "已退回", "coupons.state": "状态", "coupons.ends": "截止",
    "coupons.active": "进行中", "coupons.paused": "已停用", "coupons.empty": "还没有优惠券",
    "coupons.dist.code": "公开券码", "coupons.dist.claim": "领券中心", "coupons.dist.issued": "定向发放",
    "coupons.dist.codes": "一次性券码", "coupons.unlimited": "不限",
}, {
    "menu.coupons": "Coupons",
    "coupons.title": "Coupons",
    "coupons.intro": "How coupons are handed out and used. Create, pause, issue to members and make codes with the "
                     "admin API /api/admin/coupons or the quanyi coupons command.",
    "coupons.name": "Name", "coupons.gives": "Gives", "coupons.distribution": "Handed out as", "coupons.code": "Code",
    "coupons.taken": "Taken / total", "coupons.used": "Paid orders", "coupons.reserved": "Unpaid orders",
    "coupons.returned": "Given back", "coupons.state": "State", "coupons.ends": "Ends",
    "coupons.active": "Running", "coupons.paused": "Paused", "coupons.empty": "No coupons yet",
    "coupons.dist.code": "Public code", "coupons.dist.claim": "Claim centre", "coupons.dist.issued": "Issued",
    "coupons.dist.codes": "Single-use codes", "coupons.unlimited": "no limit",
})
