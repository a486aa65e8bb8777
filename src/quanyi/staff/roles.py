"""Roles (角色): named bundles of permissions a staff member is given instead of permissions one by one.

Built-in platform roles are registered here. Other features add their own roles on the same mechanism
with `register_role` (merchant-scoped roles carry `scope="merchant"`). A staff member's permissions are
their directly granted ones plus every permission of their roles, read on each request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quanyi.staff.permissions import PERMISSIONS

__all__ = ["Role", "ROLES", "register_role", "permissions_of_roles", "role_title", "role_description", "PLATFORM",
           "MERCHANT", "roles_for_scope"]

PLATFORM = "platform"
MERCHANT = "merchant"  # roles a merchant's staff may hold (always within their merchant's scope)


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    title_zh: str
    title_en: str
    permissions: frozenset[str]
    scope: str = PLATFORM
    description: str = ""
    description_zh: str = ""


ROLES: dict[str, Role] = {}


def register_role(role: Role) -> Role:
    """Add a role (at import time). Its permissions must be known ones; a name can be registered once."""
    unknown = role.permissions - PERMISSIONS.keys()
    if unknown:
        raise ValueError(f"role {role.name!r} names unknown permission(s): {', '.join(sorted(unknown))}")
    if role.name in ROLES and ROLES[role.name] != role:
        raise ValueError(f"role {role.name!r} is already registered")
    ROLES[role.name] = role
    return role


def permissions_of_roles(names: Iterable[str]) -> frozenset[str]:
    """Every permission the named roles give (unknown names, e.g. of a removed role, give nothing)."""
    found: set[str] = set()
    for name in names:
        role = ROLES.get(name)
        if role is not None:
            found |= role.permissions
    return frozenset(found)


def roles_for_scope(merchant_id: int | None) -> dict[str, Role]:
    """The roles a staff member may be given: merchant roles for a merchant's staff, platform roles otherwise."""
    wanted = PLATFORM if merchant_id is None else MERCHANT
    return {name: role for name, role in ROLES.items() if role.scope == wanted}


def role_title(name: str, locale: str) -> str:
    role = ROLES.get(name)
    if role is None:
        return name
    return role.title_zh if locale == "zh-CN" else role.title_en


def role_description(name: str, locale: str) -> str:
    """What the role is for, in the page's language (the English one where a role has no Chinese)."""
    role = ROLES.get(name)
    if role is None:
        return ""
    return role.description_zh if locale == "zh-CN" and role.description_zh else role.description


def _register_builtin_roles() -> None:
    register_role(Role("owner", "店主 / 管理员", "Owner / administrator", frozenset({"admin"}),
                       description="everything, including staff, settings and every admin endpoint",
                       description_zh="全部权限，包括员工、设置和所有管理接口"))
    register_role(Role("operator", "运营", "Operator", frozenset({
        "console.dashboard", "orders.read", "orders.fulfil", "orders.export", "card_keys.manage", "leaks.trace",
        "catalog.manage", "notifications.manage"}),
        description="daily running: dashboard, catalog, orders and 补单, manual delivery, card-key stock, "
                    "undelivered notifications",
        description_zh="日常运营：经营概览、商品、订单与补单、手动发货、卡密库存、发送失败的通知"))
    register_role(Role("finance", "财务", "Finance", frozenset({
        "console.dashboard", "orders.read", "orders.refund", "orders.export", "ledger.read"}),
        description="money: dashboard, refunds, exports, ledger", description_zh="资金：经营概览、退款、导出、总账"))
    register_role(Role("support", "客服", "Customer support", frozenset({
        "orders.read", "orders.contact", "orders.fulfil", "members.manage"}),
        description="buyers' questions: find orders with full contacts, 补单, resend delivery notices, "
                    "buyer accounts (disable / enable)",
        description_zh="买家咨询：按完整联系方式查订单、补单、重发发货通知、会员账号（停用 / 启用）"))
    register_role(Role("risk_reviewer", "风控审核", "Risk reviewer", frozenset({
        "orders.read", "orders.contact", "risk.review"}),
        description="the review queue: approve or reject held orders",
        description_zh="风控审核：通过或拒绝待审核的订单"))
    # A merchant's own staff (商户员工). Whatever they hold applies only to their merchant's objects (quanyi.scope);
    # platform configuration stays closed to them.
    register_role(Role("merchant_owner", "商户店主", "Merchant owner", frozenset({"admin"}), scope=MERCHANT,
                       description="everything of the merchant: goods, stock, suppliers, orders, money, staff",
                       description_zh="本商户的全部：商品、库存、供应商、订单、资金、员工"))
    register_role(Role("merchant_operator", "商户运营", "Merchant operator", frozenset({
        "console.dashboard", "orders.read", "orders.fulfil", "orders.export", "card_keys.manage", "leaks.trace",
        "suppliers.manage", "catalog.manage", "notifications.manage"}), scope=MERCHANT,
        description="goods, card-key stock, suppliers, orders and 补单, undelivered notifications",
        description_zh="商品、卡密库存、供应商、订单与补单、发送失败的通知"))
    register_role(Role("merchant_finance", "商户财务", "Merchant finance", frozenset({
        "console.dashboard", "orders.read", "orders.refund", "orders.export", "ledger.read", "merchant.finance"}),
        scope=MERCHANT, description="refunds, balance, statements and withdrawals",
        description_zh="退款、余额、对账单与提现"))
    register_role(Role("merchant_support", "商户客服", "Merchant support", frozenset({
        "orders.read", "orders.contact", "orders.fulfil", "risk.review"}), scope=MERCHANT,
        description="buyers' questions and the merchant's review queue", description_zh="买家咨询与本商户的风控审核"))


_register_builtin_roles()
