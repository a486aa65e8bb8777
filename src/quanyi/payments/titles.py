"""A payment gateway by its name as people read it, in the page's language: each gateway class names itself
(`title` in Chinese, `title_en` in English) and every page that names a gateway reads it here - the storefront's
and the portal's payment choices, the console's gateway pages, the ledger's memos and accounts, the audit log. A
name no gateway class has (an unknown or removed gateway) has no title: the page shows the code."""

from __future__ import annotations

from functools import cache

from quanyi.payments.gateway import PaymentGateway

__all__ = ["gateway_title", "title_of"]


@cache
def _classes() -> dict[str, type[PaymentGateway]]:
    from quanyi.payments.alipay.gateway import AlipayGateway
    from quanyi.payments.balance import BalanceGateway
    from quanyi.payments.sandbox.gateway import SandboxGateway
    from quanyi.payments.stripe.gateway import StripeGateway
    from quanyi.payments.wechat.gateway import WechatGateway

    return {cls.name: cls for cls in (AlipayGateway, BalanceGateway, SandboxGateway, StripeGateway, WechatGateway)}


def title_of(gateway: PaymentGateway | type[PaymentGateway], locale: str) -> str:
    """A gateway's (or gateway class's) name in the page's language."""
    return (gateway.title_en or gateway.title) if locale == "en" else gateway.title


def gateway_title(name: str, locale: str) -> str | None:
    """The gateway called `name` (alipay, wechat, balance ...) in the page's language; None for a name no gateway
    class has."""
    found = _classes().get(name)
    return title_of(found, locale) if found is not None else None
