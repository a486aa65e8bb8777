"""Employees sign in on the claim page through WeCom (企业微信) or DingTalk (钉钉): the browser goes to the
provider's login page and comes back with a one-time code, which the shop turns into the user through the
provider's server API (simulators on real ports, quanyi.testpeers.wecom / .dingtalk), then finds them on the
roster. Outsiders, people not on the roster, replayed codes, a forged state, a wrong app secret and an
unreachable server are all refused with nothing signed in."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from enterprises.campaign_support import choose, funded_campaign, phone
from helpers import Shop, make_settings
from quanyi.enterprises.models import CampaignClaim, LoginApp
from quanyi.testpeers.dingtalk import DingTalkSimulator, DingTalkUser
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.wecom import WeComSimulator


@pytest.fixture
def wecom() -> Iterator[tuple[WeComSimulator, str]]:
    peer = WeComSimulator(members={"zhangwei", "lina", "someone-else"})
    with serve_in_thread(peer.app) as url:
        yield peer, url


@pytest.fixture
def dingtalk() -> Iterator[tuple[DingTalkSimulator, str]]:
    peer = DingTalkSimulator()
    with serve_in_thread(peer.app) as url:
        yield peer, url


@pytest.fixture
def settings(database_url: str, wecom, dingtalk):  # type: ignore[no-untyped-def]
    return make_settings(database_url, wecom_open_base_url=wecom[1], wecom_api_base_url=wecom[1],
                         dingtalk_login_base_url=dingtalk[1], dingtalk_api_base_url=dingtalk[1])


async def _register(shop: Shop, wecom: WeComSimulator, dingtalk: DingTalkSimulator) -> None:
    for provider, body in (("wecom", {"app_id": wecom.corp_id, "agent_id": wecom.agent_id, "secret": wecom.secret}),
                           ("dingtalk", {"app_id": dingtalk.client_id, "secret": dingtalk.client_secret})):
        response = await shop.client.put(f"/api/admin/enterprises/ACME/login-apps/{provider}", headers=shop.admin,
                                         json=body)
        assert response.status_code == 200, response.text
        assert response.json()["secret_hint"] == body["secret"][-4:] and "secret" not in response.json()


async def _sign_in(browser: httpx.AsyncClient, no: str, provider: str) -> tuple[httpx.Response, str]:
    """Start at the claim page, pass through the provider (a real HTTP hop), come back; returns (the shop's
    answer to the callback, the callback path)."""
    start = await browser.get(f"/claim/{no}/oauth/{provider}")
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient() as outside:
        at_provider = await outside.get(start.headers["location"].split("#")[0])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == f"/claim/{no}/oauth/{provider}/callback"
    path = f"{back.path}?{back.query}"
    return await browser.get(path), path


async def test_an_employee_signs_in_with_wecom_and_claims(shop: Shop, wecom, dingtalk):
    peer, _ = wecom
    funded = await funded_campaign(shop, allow_wecom=True, allow_dingtalk=True)
    await _register(shop, peer, dingtalk[0])
    async with phone(shop) as browser:
        page = await browser.get(f"/claim/{funded.no}")
        assert 'data-testid="login-wecom"' in page.text and 'data-testid="login-dingtalk"' in page.text
        peer.signed_in = "zhangwei"
        back, callback = await _sign_in(browser, funded.no, "wecom")
        assert back.status_code == 303 and back.headers["location"] == f"/claim/{funded.no}"
        signed_in = await browser.get(f"/claim/{funded.no}")
        assert "张伟" in signed_in.text and 'data-testid="claim-form"' in signed_in.text
        assert (await choose(browser, funded.no, "GIFT-100")).status_code == 200

        # The same code again (a replay, or the back button): WeCom takes a code once, and the state is gone.
        async with phone(shop) as other:
            assert (await other.get(callback)).status_code == 403
        authorize = parse_qs(urlsplit((await browser.get(f"/claim/{funded.no}/oauth/wecom")).headers["location"]
                                      .split("#")[0]).query)
        assert authorize["appid"] == [peer.corp_id] and authorize["agentid"] == [peer.agent_id]
        assert authorize["scope"] == ["snsapi_base"]
    claim = (await shop.client.get(f"/api/admin/enterprises/ACME/campaigns/{funded.no}", headers=shop.admin)).json()
    assert claim["claims_by_channel"] == {"wecom": 1}
    assert peer.calls.count("gettoken") == 1  # the access token is cached


async def test_wecom_refusals_sign_nobody_in(shop: Shop, wecom, dingtalk):
    peer, _ = wecom
    funded = await funded_campaign(shop, allow_wecom=True)
    await _register(shop, peer, dingtalk[0])
    for who in ("outsider", "someone-else"):  # not a corp member; a member not on the roster
        peer.signed_in = who
        async with phone(shop) as browser:
            back, _ = await _sign_in(browser, funded.no, "wecom")
            assert back.status_code == 403 and "不在本次活动的名单中" in back.text
            assert 'data-testid="code-form"' in (await browser.get(f"/claim/{funded.no}")).text
    peer.signed_in = "lina"
    async with phone(shop) as browser:
        start = await browser.get(f"/claim/{funded.no}/oauth/wecom")
        async with httpx.AsyncClient() as outside:
            at_provider = await outside.get(start.headers["location"].split("#")[0])
        back = urlsplit(at_provider.headers["location"])
        forged = back.query.replace("state=", "state=x")
        assert (await browser.get(f"{back.path}?{forged}")).status_code == 403  # not the state it was sent with
    async with phone(shop) as browser:  # a stale cached token is replaced once, transparently
        peer.expire_tokens()
        back, _ = await _sign_in(browser, funded.no, "wecom")
        assert back.status_code == 303
    peer.secret = "changed-on-the-wecom-side"  # the app secret no longer works: the shop says so, signs in nobody
    peer.expire_tokens()
    async with phone(shop) as browser:
        back, _ = await _sign_in(browser, funded.no, "wecom")
        assert back.status_code == 502 and 'data-testid="code-form"' in back.text
    assert await shop.count(CampaignClaim) == 0


async def test_an_employee_signs_in_with_dingtalk_by_union_id_or_mobile(shop: Shop, wecom, dingtalk):
    peer, _ = dingtalk
    funded = await funded_campaign(shop, allow_dingtalk=True)
    await _register(shop, wecom[0], peer)
    async with phone(shop) as browser:  # on the roster by union id
        peer.signed_in = DingTalkUser(union_id="union-zw", nick="zw", mobile="13999999999")
        back, _ = await _sign_in(browser, funded.no, "dingtalk")
        assert back.status_code == 303
        assert "张伟" in (await browser.get(f"/claim/{funded.no}")).text
        assert (await choose(browser, funded.no, "GIFT-50")).status_code == 200
    async with phone(shop) as browser:  # by mobile number
        peer.signed_in = DingTalkUser(union_id="union-unknown", nick="ln", mobile="13800000002")
        back, _ = await _sign_in(browser, funded.no, "dingtalk")
        assert back.status_code == 303 and "李娜" in (await browser.get(f"/claim/{funded.no}")).text
    async with phone(shop) as browser:  # nobody on the roster
        peer.signed_in = DingTalkUser(union_id="union-x", nick="x", mobile="13700000000")
        back, _ = await _sign_in(browser, funded.no, "dingtalk")
        assert back.status_code == 403
    async with phone(shop) as browser:  # a code DingTalk never issued
        start = await browser.get(f"/claim/{funded.no}/oauth/dingtalk")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        made_up = await browser.get(f"/claim/{funded.no}/oauth/dingtalk/callback?authCode=abc&state={state}")
        assert made_up.status_code == 403
    assert peer.calls.count("userAccessToken") == 4
    report = (await shop.client.get(f"/api/admin/enterprises/ACME/campaigns/{funded.no}", headers=shop.admin)).json()
    assert report["claims_by_channel"] == {"dingtalk": 1}


async def test_sign_in_is_offered_only_where_configured(shop: Shop, wecom, dingtalk):
    funded = await funded_campaign(shop, allow_wecom=True)  # DingTalk not offered; no WeCom app registered yet
    async with phone(shop) as browser:
        page = await browser.get(f"/claim/{funded.no}")
        assert 'data-testid="login-dingtalk"' not in page.text
        assert (await browser.get(f"/claim/{funded.no}/oauth/dingtalk")).status_code == 404
        assert (await browser.get(f"/claim/{funded.no}/oauth/wecom")).status_code == 404
        assert (await browser.get(f"/claim/{funded.no}/oauth/qq")).status_code in (404, 422)
    bad = await shop.client.put("/api/admin/enterprises/ACME/login-apps/wecom", headers=shop.admin,
                                json={"app_id": "ww1", "secret": "short"})
    assert bad.status_code == 422
    no_agent = await shop.client.put("/api/admin/enterprises/ACME/login-apps/wecom", headers=shop.admin,
                                     json={"app_id": "ww1", "secret": "long-enough-secret"})
    assert no_agent.status_code == 422 and "agent_id" in no_agent.json()["detail"]
    assert await shop.count(LoginApp) == 0
    await _register(shop, wecom[0], dingtalk[0])
    listed = (await shop.client.get("/api/admin/enterprises/ACME/login-apps", headers=shop.admin)).json()
    assert [a["provider"] for a in listed] == ["dingtalk", "wecom"]
    assert all(wecom[0].secret not in str(a) for a in listed)
    gone = await shop.client.delete("/api/admin/enterprises/ACME/login-apps/dingtalk", headers=shop.admin)
    assert gone.status_code == 204 and await shop.count(LoginApp) == 1
