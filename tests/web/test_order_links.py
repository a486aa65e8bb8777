"""Order links in e-mails and SMS (web/order_link.py): the token rides in the URL fragment and is exchanged by a
POST for the access cookie and a token-free address; links expire (QUANYI_ORDER_LINK_TTL_DAYS) with a page that
offers lookup; old links that carried the access token count as expired; tokens are redacted from the access log."""

from __future__ import annotations

import datetime as dt
import logging

from helpers import open_order_link, page_csrf_token
from quanyi.accesslog import redact_url
from quanyi.notifications.worker import order_link
from quanyi.orders.access import COOKIE_NAME, LinkCheck, check_order_link, order_link_token

HTML = {"Accept": "text/html"}


def _secret(shop) -> str:
    return shop.ctx.settings.app_secret.get_secret_value()


async def test_a_link_opens_the_order_at_a_token_free_address(shop, client, paid_order):
    link = order_link(shop.ctx, paid_order["order_no"])
    assert link.startswith(f"http://test/orders/{paid_order['order_no']}/open#t=")  # never sent to a server
    landing = await client.get(f"/orders/{paid_order['order_no']}/open", headers=HTML)
    assert landing.status_code == 200 and 'data-order-link' in landing.text
    assert landing.headers["referrer-policy"] == "no-referrer" and landing.headers["cache-control"] == "no-store"
    opened = await open_order_link(client, link)
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{paid_order['order_no']}"
    assert COOKIE_NAME in opened.headers["set-cookie"]
    page = await client.get(opened.headers["location"], headers=HTML)
    assert page.status_code == 200 and paid_order["order_no"] in page.text


async def test_links_expire_after_the_configured_days(shop, client, paid_order):
    shop.ctx.settings.order_link_ttl_days = 30
    token = order_link(shop.ctx, paid_order["order_no"]).split("#t=")[1]
    now = dt.datetime.now(dt.UTC)
    assert check_order_link(_secret(shop), paid_order["order_no"], token, now=now + dt.timedelta(days=29.9)) \
        is LinkCheck.VALID
    assert check_order_link(_secret(shop), paid_order["order_no"], token, now=now + dt.timedelta(days=30.1)) \
        is LinkCheck.EXPIRED


async def test_an_expired_link_offers_lookup_instead(shop, client, paid_order):
    no = paid_order["order_no"]
    stale = order_link_token(_secret(shop), no, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    response = await open_order_link(client, f"http://test/orders/{no}/open#t={stale}")
    assert response.status_code == 410
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    assert "订单链接已过期" in response.text and "30 天" in response.text
    assert 'data-testid="lookup-form"' in response.text and f'value="{no}"' in response.text
    # An old link carrying the access token itself: no longer a way in, same page.
    old = await open_order_link(client, f"http://test/orders/{no}/open#t={paid_order['access_token']}")
    assert old.status_code == 410 and COOKIE_NAME not in old.headers.get("set-cookie", "")
    assert (await client.get(f"/orders/{no}", headers=HTML)).status_code == 303  # still no access


async def test_a_link_without_its_fragment_still_works_without_script(shop, client, paid_order):
    no = paid_order["order_no"]
    token = order_link(shop.ctx, no).split("#t=")[1]
    page = await client.get(f"/orders/{no}/open", params={"t": token}, headers=HTML)
    assert f'name="t" value="{token}"' in page.text  # the button posts it
    opened = await client.post(f"/orders/{no}/open", data={"t": token, "csrf_token": page_csrf_token(page.text)})
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{no}"


async def test_tokens_in_query_strings_never_reach_the_access_log(app, caplog):
    assert redact_url("/orders/X/open?t=abc.def&lang=en") == "/orders/X/open?t=[redacted]&lang=en"
    assert redact_url("/sandbox/cashier?lang=en&t=e30.sig") == "/sandbox/cashier?lang=en&t=[redacted]"
    assert redact_url("/p/x?token=1&access_token=2") == "/p/x?token=[redacted]&access_token=[redacted]"
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
                                                 "/orders/261204ABCDEFGH/open?t=SECRETTOKEN", "1.1", 200)
    assert "SECRETTOKEN" not in caplog.text and "open?t=[redacted]" in caplog.text
