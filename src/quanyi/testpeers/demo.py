"""TEST PEERS for the demo: the Alipay, WeChat Pay and Stripe simulators on local ports, and the demo shop's
gateway accounts pointed at them, so a visitor can try every payment method without real money. With
`with_suppliers` also one supplier simulator per dialect (quanyi, async_recharge, card_platform) on fixed ports.

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
# Supplier simulators (one per dialect), started with with_suppliers=True; seed 1 => fixed demo credentials.
SUPPLIER_PORTS = {"supplier_quanyi": 12121, "supplier_async_recharge": 12122, "supplier_card_platform": 12123}


class PeersRefused(DomainError):
    code = "test_peers_refused"


@dataclass
class DemoPeers:
    urls: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppliers: dict[str, dict[str, Any]] = field(default_factory=dict)  # dialect -> base_url, credentials


@contextlib.contextmanager
def run_demo_peers(*, shop_url: str, ports: dict[str, int] | None = None,
                   with_suppliers: bool = False) -> Iterator[DemoPeers]:
    """Start the three simulators (auto mode: they notify the shop themselves) until the block ends;
    with_suppliers also starts one supplier simulator per dialect (see SUPPLIER_PORTS)."""
    ports = {**DEFAULT_PORTS, **SUPPLIER_PORTS, **(ports or {})}
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
        if with_suppliers:
            _start_suppliers(stack, peers, ports)
        yield peers


def _start_suppliers(stack: contextlib.ExitStack, peers: DemoPeers, ports: dict[str, int]) -> None:
    from quanyi.testpeers.demo_suppliers import DEMO_SUPPLIER_PRODUCTS
    from quanyi.testpeers.suppliers import make_simulator

    for dialect in ("quanyi", "async_recharge", "card_platform"):
        sim = make_simulator(dialect, seed=1, products=DEMO_SUPPLIER_PRODUCTS[dialect]).start(
            port=ports[f"supplier_{dialect}"])
        stack.callback(sim.stop)
        peers.urls[f"supplier {dialect}"] = sim.base_url
        peers.suppliers[dialect] = {"base_url": sim.base_url, "credentials": dict(sim.credentials)}


async def configure_shop(ctx: ShopContext, accounts: dict[str, dict[str, Any]], *, enabled: bool) -> None:
    """Store (or disable) the demo shop's accounts at the simulated gateways."""
    if not ctx.settings.sandbox_enabled:
        raise PeersRefused("test peers hand out goods without real money; they are only for a demo shop "
                           "(QUANYI_SANDBOX_ENABLED=true). This shop takes real orders.")
    async with ctx.db.transaction() as session:
        for name, account in accounts.items():
            await configuration.save_gateway_config(session=session, cipher=ctx.cipher, name=name,
                                                    config=account if enabled else {}, enabled=enabled,
                                                    updated_by="test-peers",
                                                    public_base_url=ctx.settings.public_base_url)
