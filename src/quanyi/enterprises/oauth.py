"""Employees sign in on claim pages through their company's WeCom (企业微信) or DingTalk (钉钉) app.

The enterprise registers its own app (`set_login_app`: WeCom corp id + agent id + secret, or DingTalk client id +
secret; the secret sealed). The claim page sends the employee to the provider's login page with a random `state`
(kept in a signed cookie), the provider sends them back with a one-time code, and the shop turns the code into the
user's identity through the provider's server API, following their published wire format:

- WeCom: `GET {api}/cgi-bin/gettoken?corpid=&corpsecret=` (the access token is cached until shortly before its
  `expires_in`; an expired-token errcode 42001/40014 fetches a new one once), then
  `GET {api}/cgi-bin/auth/getuserinfo?access_token=&code=` → `userid` (members only; an outsider's `openid` is
  refused). Errors come as HTTP 200 with a non-zero `errcode`.
- DingTalk: `POST {api}/v1.0/oauth2/userAccessToken` `{"clientId","clientSecret","code","grantType":
  "authorization_code"}` → `accessToken`, then `GET {api}/v1.0/contact/users/me` with the header
  `x-acs-dingtalk-access-token` → `unionId`, `mobile`, `stateCode`.

The employee is then found on the campaign's roster by WeCom user id, or by DingTalk union id, else mobile number.
Simulators of both servers: quanyi.testpeers.wecom and quanyi.testpeers.dingtalk.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.db import utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import Campaign, CampaignEmployee, LoginApp
from quanyi.errors import DomainError, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode

__all__ = ["PROVIDERS", "LoginAppNotFound", "LoginFailed", "ProviderUnavailable", "Identity", "set_login_app",
           "remove_login_app", "login_apps", "login_app_for", "authorize_url", "identify", "find_employee",
           "sign_state", "read_state", "STATE_COOKIE", "STATE_TTL_SECONDS", "reseal_login_app", "secret_of"]

logger = logging.getLogger(__name__)
PROVIDERS = ("wecom", "dingtalk")
STATE_COOKIE = "qy_oauth"
STATE_TTL_SECONDS = 600
_TIMEOUT = httpx.Timeout(10.0)
_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # WeCom access tokens by (api base, corp id)


class LoginAppNotFound(NotFound):
    code = "login_app_not_found"


class LoginFailed(DomainError):
    """The provider did not vouch for a member of this campaign (bad code, outsider, not on the roster)."""

    code = "login_failed"


class ProviderUnavailable(DomainError):
    """The provider's server could not be reached or answered nonsense."""

    code = "login_provider_unavailable"


@dataclass(frozen=True, slots=True)
class Identity:
    provider: str
    user_id: str  # WeCom userid or DingTalk unionId
    mobile: str = ""


def _binding(enterprise_code: str, provider: str) -> bytes:
    return f"quanyi-login-app:{enterprise_code}:{provider}".encode()


async def set_login_app(*, session: AsyncSession, cipher: CardKeyCipher, code: str, provider: str, app_id: str,
                        secret: str, agent_id: str = "", actor: str = "admin",
                        now: dt.datetime | None = None) -> LoginApp:
    """Register (or replace) the enterprise's WeCom / DingTalk app; the secret is sealed and never shown again."""
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}")
    if not app_id.strip() or len(app_id) > 64 or not secret or len(secret) > 256:
        raise InvalidInput("app_id (at most 64 characters) and secret (at most 256) are required")
    if provider == "wecom" and not agent_id.strip():
        raise InvalidInput("a WeCom app needs its agent_id (AgentId)")
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    sealed = cipher.encrypt(secret, fingerprint=_binding(enterprise.code, provider))
    row = await session.scalar(select(LoginApp).where(LoginApp.enterprise_id == enterprise.id,
                                                      LoginApp.provider == provider).with_for_update())
    if row is None:
        row = LoginApp(enterprise_id=enterprise.id, provider=provider)
        session.add(row)
    row.app_id, row.agent_id = app_id.strip(), agent_id.strip()[:32]
    row.key_id, row.ciphertext, row.hint = sealed.key_id, sealed.ciphertext, secret[-4:]
    row.updated_by, row.updated_at = actor[:64], now or utcnow()
    await session.flush()
    return row


async def remove_login_app(*, session: AsyncSession, code: str, provider: str) -> None:
    row = await login_app_for(session=session, enterprise_id=(await enterprises_service.get_enterprise(
        session=session, code=code)).id, provider=provider)
    await session.delete(row)
    await session.flush()


async def login_apps(*, session: AsyncSession, code: str) -> list[LoginApp]:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return list((await session.scalars(select(LoginApp).where(LoginApp.enterprise_id == enterprise.id)
                                       .order_by(LoginApp.provider))).all())


async def login_app_for(*, session: AsyncSession, enterprise_id: int, provider: str) -> LoginApp:
    row = await session.scalar(select(LoginApp).where(LoginApp.enterprise_id == enterprise_id,
                                                      LoginApp.provider == provider))
    if row is None:
        raise LoginAppNotFound(f"no {provider} app is registered for this enterprise")
    return row


def reseal_login_app(cipher: CardKeyCipher, *, enterprise_code: str, provider: str,
                     sealed: EncryptedCode) -> EncryptedCode:
    """A stored app secret re-encrypted under the active key (keyring rotation), still bound to its owner."""
    return cipher.reencrypt(sealed, fingerprint=_binding(enterprise_code, provider))


def secret_of(cipher: CardKeyCipher, enterprise_code: str, row: LoginApp) -> str:
    return _secret_of(cipher, enterprise_code, row)


def _secret_of(cipher: CardKeyCipher, enterprise_code: str, row: LoginApp) -> str:
    try:
        return cipher.decrypt(EncryptedCode(row.key_id, row.ciphertext),
                              fingerprint=_binding(enterprise_code, row.provider))
    except CardKeyDecryptionError:
        raise ProviderUnavailable(f"the {row.provider} app secret cannot be opened (retired key?); register the "
                                  "app again") from None


def authorize_url(settings: Settings, row: LoginApp, *, redirect_uri: str, state: str) -> str:
    """Where the employee's browser goes to sign in (the provider sends it back with a code)."""
    if row.provider == "wecom":
        query = urlencode({"appid": row.app_id, "redirect_uri": redirect_uri, "response_type": "code",
                           "scope": "snsapi_base", "state": state, "agentid": row.agent_id})
        return f"{settings.wecom_open_base_url.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"
    query = urlencode({"redirect_uri": redirect_uri, "response_type": "code", "client_id": row.app_id,
                       "scope": "openid", "state": state, "prompt": "consent"})
    return f"{settings.dingtalk_login_base_url.rstrip('/')}/oauth2/auth?{query}"


async def _json(response: httpx.Response, provider: str) -> dict:  # type: ignore[type-arg]
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable(f"{provider} answered HTTP {response.status_code} without JSON") from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{provider} answered something other than a JSON object")
    return body


async def _wecom_token(http: httpx.AsyncClient, base: str, corp_id: str, secret: str, *, fresh: bool) -> str:
    cached = _tokens.get((base, corp_id))
    if cached and not fresh and cached[1] > time.monotonic():
        return cached[0]
    response = await http.get(f"{base}/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret},
                              timeout=_TIMEOUT)
    body = await _json(response, "wecom")
    if body.get("errcode") != 0 or not isinstance(body.get("access_token"), str):
        raise ProviderUnavailable(f"WeCom refused the app's credentials (errcode {body.get('errcode')}: "
                                  f"{str(body.get('errmsg', ''))[:100]})")
    expires_in = int(body.get("expires_in") or 7200)
    _tokens[(base, corp_id)] = (body["access_token"], time.monotonic() + max(60, expires_in - 300))
    return str(body["access_token"])


async def _wecom(http: httpx.AsyncClient, settings: Settings, row: LoginApp, secret: str, code: str) -> Identity:
    base = settings.wecom_api_base_url.rstrip("/")
    for fresh in (False, True):
        token = await _wecom_token(http, base, row.app_id, secret, fresh=fresh)
        response = await http.get(f"{base}/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code},
                                  timeout=_TIMEOUT)
        body = await _json(response, "wecom")
        if body.get("errcode") in (40014, 42001) and not fresh:
            continue  # the cached token went stale: once more with a new one
        if body.get("errcode") != 0:
            raise LoginFailed(f"WeCom did not accept the sign-in (errcode {body.get('errcode')})")
        if not isinstance(body.get("userid"), str) or not body["userid"]:
            raise LoginFailed("the WeCom user is not a member of the enterprise")
        return Identity("wecom", body["userid"])
    raise LoginFailed("WeCom did not accept the sign-in")


async def _dingtalk(http: httpx.AsyncClient, settings: Settings, row: LoginApp, secret: str, code: str) -> Identity:
    base = settings.dingtalk_api_base_url.rstrip("/")
    response = await http.post(f"{base}/v1.0/oauth2/userAccessToken", timeout=_TIMEOUT, json={
        "clientId": row.app_id, "clientSecret": secret, "code": code, "grantType": "authorization_code"})
    body = await _json(response, "dingtalk")
    if response.status_code != 200 or not isinstance(body.get("accessToken"), str):
        if str(body.get("code", "")).startswith("invalidClient"):
            raise ProviderUnavailable("DingTalk refused the app's credentials")
        raise LoginFailed(f"DingTalk did not accept the sign-in ({str(body.get('code', ''))[:60]})")
    me = await http.get(f"{base}/v1.0/contact/users/me", timeout=_TIMEOUT,
                        headers={"x-acs-dingtalk-access-token": body["accessToken"]})
    user = await _json(me, "dingtalk")
    if me.status_code != 200 or not isinstance(user.get("unionId"), str) or not user["unionId"]:
        raise LoginFailed("DingTalk did not tell who signed in")
    mobile = str(user.get("mobile") or "")
    if mobile and str(user.get("stateCode") or "86") != "86":
        mobile = f"+{user.get('stateCode')}{mobile}"
    return Identity("dingtalk", user["unionId"], mobile)


async def identify(*, http: httpx.AsyncClient, settings: Settings, cipher: CardKeyCipher, enterprise_code: str,
                   row: LoginApp, code: str) -> Identity:
    """The provider's answer to who signed in with this one-time code."""
    if not code or len(code) > 512:
        raise LoginFailed("the sign-in came back without a code")
    secret = _secret_of(cipher, enterprise_code, row)
    try:
        if row.provider == "wecom":
            return await _wecom(http, settings, row, secret, code)
        return await _dingtalk(http, settings, row, secret, code)
    except httpx.HTTPError as exc:
        logger.warning("%s sign-in server unreachable: %s", row.provider, type(exc).__name__)
        raise ProviderUnavailable(f"{row.provider} could not be reached") from None


async def find_employee(*, session: AsyncSession, campaign: Campaign, identity: Identity) -> CampaignEmployee:
    """The roster entry of who signed in: WeCom user id; DingTalk union id, else the mobile number."""
    if identity.provider == "wecom":
        match = CampaignEmployee.wecom_userid == identity.user_id
    else:
        conditions = [CampaignEmployee.dingtalk_union_id == identity.user_id]
        if identity.mobile:
            conditions.append(CampaignEmployee.phone == identity.mobile)
        match = or_(*conditions)
    found = (await session.scalars(select(CampaignEmployee).where(CampaignEmployee.campaign_id == campaign.id, match)
                                   .order_by(CampaignEmployee.id))).first()
    if found is None:
        raise LoginFailed("you are not on this campaign's list")
    return found


# ---------------------------------------------------------------- the state cookie (CSRF of the sign-in)

def _key(app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), b"quanyi claim oauth state", hashlib.sha256).digest()


def sign_state(app_secret: str, campaign_no: str, provider: str) -> tuple[str, str]:
    """(state for the provider, cookie value): the cookie binds the state to this browser, campaign, provider."""
    state = secrets.token_urlsafe(24)
    body = f"{campaign_no}|{provider}|{state}|{int(time.time()) + STATE_TTL_SECONDS}".encode()
    mac = hmac.new(_key(app_secret), body, hashlib.sha256).digest()
    return state, base64.urlsafe_b64encode(body).decode() + "." + base64.urlsafe_b64encode(mac).decode()


def read_state(app_secret: str, cookie: str | None, campaign_no: str, provider: str, state: str) -> bool:
    """Whether the state the provider returned is the one this browser was sent off with, in time."""
    if not cookie or "." not in cookie or len(cookie) > 400 or not state:
        return False
    body_b64, _, mac_b64 = cookie.partition(".")
    try:
        body, mac = base64.urlsafe_b64decode(body_b64), base64.urlsafe_b64decode(mac_b64)
    except ValueError:
        return False
    if not hmac.compare_digest(mac, hmac.new(_key(app_secret), body, hashlib.sha256).digest()):
        return False
    try:
        no, kind, expected, expires = body.decode().split("|")
        return (no == campaign_no and kind == provider and hmac.compare_digest(expected, state)
                and int(expires) >= time.time())
    except ValueError:
        return False
