"""Mounts every console section and answers the console's two refusals: the login page for strangers,
the 403 page (inside the layout) for staff without the permission."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from quanyi.console import (
    account_routes,
    audit_routes,
    catalog_routes,
    coupon_action_routes,
    coupon_routes,
    dashboard_routes,
    enterprise_routes,
    fulfilment_routes,
    gateway_payout_routes,
    gateway_routes,
    key_import_routes,
    key_routes,
    ledger_routes,
    level_gift_routes,
    login_routes,
    member_routes,
    merchant_routes,
    notification_routes,
    order_routes,
    pick_routes,
    reconciliation_routes,
    refund_routes,
    reseller_routes,
    review_routes,
    risk_rule_routes,
    staff_routes,
    supplier_routes,
    supplier_setup_routes,
)
from quanyi.console.auth import AREA, ConsoleForbidden, ConsoleUser
from quanyi.console.rendering import render_page
from quanyi.errors import DomainError
from quanyi.staff.sessions import ConsoleLogin

__all__ = ["install", "SECTIONS", "PUBLIC_ROUTES"]

# Every section of the console, in menu order; a new section adds its module here.
SECTIONS = (login_routes, account_routes, dashboard_routes, order_routes, fulfilment_routes, refund_routes,
            review_routes, catalog_routes, coupon_routes, coupon_action_routes, level_gift_routes, pick_routes,
            key_routes, key_import_routes, supplier_setup_routes, supplier_routes, risk_rule_routes, ledger_routes,
            reconciliation_routes, gateway_payout_routes, merchant_routes, reseller_routes, enterprise_routes,
            gateway_routes, notification_routes, staff_routes, audit_routes, member_routes)
PUBLIC_ROUTES = login_routes.PUBLIC_ROUTES


def _forbidden(request: Request, login: ConsoleLogin, exc: DomainError) -> Response:
    return render_page(request, "console/forbidden.html", {"permission": exc.context.get("permission", "")},
                       user=ConsoleUser.of(login, request), status_code=403)


def install(app: FastAPI) -> None:
    AREA.mount(app, [section.router for section in SECTIONS], forbidden=ConsoleForbidden, draw_forbidden=_forbidden)
