"""TEST PEERS for the demo: the Alipay, WeChat Pay and Stripe simulators on local ports, and the demo shop's
gateway accounts pointed at them, so a visitor can try every payment method without real money.

Only for a shop whose sandbox is switched on (QUANYI_SANDBOX_ENABLED=true, what `quanyi init` writes for the
demo): simulated gateways hand out goods for no money, exactly like the sandbox. The accounts are stored like
real ones (encrypted) and disabled again when the peers stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from quanyi.context import ShopContext
from quanyi.errors import DomainError
from quanyi.payments import configuration
from quanyi.testpeers.alipay import AlipaySimulator
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.stripe import StripeSimulator
from quanyi.testpeers.wechat import WechatPaySimulator

__all__ = ["DemoPeers", "run_demo_peers", "configure_shop", "DEFAULT_PORTS", "PeersRefused"]

DEFAULT_PORTS = {"alipay": 12101, "wechat": 12102, "stripe": 12111}


class PeersRefused(DomainError):
    code = "test_peers_refused"


@dataclass
class DemoPeers:
    urls: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)


@contextlib.contextmanager
def run_demo_peers(*, shop_url: str, ports: dict[str, int] | None = None) -> Iterator[DemoPeers]:
    """Start the three simulators (auto mode: they notify the shop themselves) until the block ends."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    peers = DemoPeers()
    alipay = AlipaySimulator(mode="auto")
    wechat = WechatPaySimulator(mode="auto")
    stripe_url = f"http://127.0.0.1:{ports['stripe']}"
    stripe = StripeSimulator(mode="auto", webhook_url=f"{shop_url.rstrip('/')}/payments/stripe/notify",
                             public_url=stripe_url)
    with contextlib.ExitStack() as stack:
        peers.urls["alipay"] = stack.enter_context(serve_in_thread(alipay.app, port=ports["alipay"]))
        stack.callback(alipay.stop)
        peers.urls["wechat"] = stack.enter_context(wechat.serve(port=ports["wechat"]))
        peers.urls["stripe"] = stack.enter_context(serve_in_thread(stripe.app, port=ports["stripe"]))
        peers.accounts = {
            "alipay": alipay.merchant_config(peers.urls["alipay"]),
            "wechat": wechat.merchant_config(peers.urls["wechat"]),
            "stripe": {"secret_key": stripe.secret_key, "webhook_secret": stripe.webhook_secret,
                       "api_base_url": peers.urls["stripe"]},
        }
        yield peers


async def configure_shop(ctx: ShopContext, accounts: dict[str, dict[str, Any]], *, enabled: bool) -> None:
    """Store (or disable) the demo shop's accounts at the simulated gateways."""
    if not ctx.settings.sandbox_enabled:
        raise PeersRefused("test peers hand out goods without real money; they are only for a demo shop "
                           "(QUANYI_SANDBOX_ENABLED=true). This shop takes real orders.")
    async with ctx.db.transaction() as session:
        for name, account in accounts.items():
            await configuration.save_gateway_config(session=session, cipher=ctx.cipher, name=name,
                                                    config=account if enabled else {}, enabled=enabled,
                                                    updated_by="test-peers")
