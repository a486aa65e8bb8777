"""The console menu (菜单): one registry of entries, each with the permission that shows it.

A section registers its entries when its routes module is imported (`register(MenuItem(...))`); the layout
shows a staff member only the entries their permissions allow, grouped by `group`, in `order`. The routes
behind an entry check the same permission themselves (`auth.needs`): the menu only hides what a staff
member could not open anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from quanyi.staff.service import Principal

__all__ = ["MenuItem", "MENU", "GROUPS", "register", "visible_menu", "home_for"]

# Menu groups in the order they appear; console2 adds "catalog", "settings" ... here.
GROUPS = ("overview", "sales", "catalog", "stock", "supply", "risk", "finance", "partners", "system")


@dataclass(frozen=True, slots=True)
class MenuItem:
    key: str  # also the i18n key "menu.<key>" and what a page names as `active`
    href: str
    permission: str  # what a staff member needs to see it (the routes behind it check it again)
    group: str = "sales"
    order: int = 100
    icon: str = "dot"
    platform_only: bool = False  # platform configuration (categories, ...): not shown to a merchant's staff


MENU: dict[str, MenuItem] = {}


def register(item: MenuItem) -> MenuItem:
    if item.group not in GROUPS:
        raise ValueError(f"menu group {item.group!r} is not one of {GROUPS}")
    if item.key in MENU and MENU[item.key] != item:
        raise ValueError(f"menu entry {item.key!r} is already registered")
    MENU[item.key] = item
    return item


def visible_menu(principal: Principal) -> list[tuple[str, list[MenuItem]]]:
    """The entries this staff member may open, grouped: [(group, [items...]), ...]."""
    groups = []
    for group in GROUPS:
        items = sorted((i for i in MENU.values() if i.group == group and principal.can(i.permission)
                        and not (i.platform_only and principal.merchant_id is not None)),
                       key=lambda i: (i.order, i.key))
        if items:
            groups.append((group, items))
    return groups


def home_for(principal: Principal) -> str | None:
    """Where /console sends this staff member: their first menu entry (None: they may open nothing)."""
    for _group, items in visible_menu(principal):
        return items[0].href
    return None
