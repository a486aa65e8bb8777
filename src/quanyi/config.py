"""One settings object for the whole shop, read from QUANYI_* environment variables.

Secrets come from the environment or from the local env file that `quanyi init` writes
(`var/quanyi.env`, mode 0600). Outside demo mode the shop refuses to start with missing or
obviously weak secrets.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quanyi.shoptime import DEFAULT_TIMEZONE, shop_zone

__all__ = ["Settings", "get_settings", "generate_secrets_env", "import_object", "ENV_FILE"]

ENV_FILE = Path(os.environ.get("QUANYI_ENV_FILE", "var/quanyi.env"))

_WEAK_SECRETS = {"", "changeme", "change-me", "secret", "password", "admin", "test", "demo"}


def import_object(path: str, *, setting: str) -> Any:
    """The callable a setting names as "package.module:attribute"; ValueError saying what is wrong."""
    module_name, colon, attribute = path.strip().partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{setting} must look like 'package.module:factory', not {path!r}")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:  # a plugin that fails to import is a configuration problem, whatever it raised
        raise ValueError(f"{setting}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{setting}: module {module_name!r} has no {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"{setting}: {path!r} is not callable")
    return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUANYI_", env_file=(".env", str(ENV_FILE)), extra="ignore"
    )

    database_url: str = "sqlite:///var/quanyi.db"
    demo_mode: bool = False
    shop_name: str = "权益商城 Quanyi"
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    # The shop's day and clock (IANA name): order-number dates, page and e-mail times, import expiry dates,
    # risk time windows and daily limits, reconciliation days, supplier statements. See quanyi.shoptime.
    shop_timezone: str = DEFAULT_TIMEZONE

    @field_validator("shop_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            shop_zone(value)
        except ValueError as exc:
            raise ValueError(f"QUANYI_SHOP_TIMEZONE: {exc}") from None
        return value
    # Base URL the outside world reaches this shop at (https://shop.example.com): gateway notify and return URLs,
    # supplier callbacks, links in e-mails. Never taken from a request's Host header (quanyi/urls.py); Alipay,
    # WeChat Pay and Stripe are not started without it. `quanyi init` writes the local address for a demo.
    public_base_url: str | None = None
    # WeCom (企业微信) and DingTalk (钉钉) sign-in on benefit claim pages (enterprises/oauth.py): their login pages
    # and server APIs. Tests and the demo point them at the simulators in quanyi.testpeers.
    wecom_open_base_url: str = "https://open.weixin.qq.com"
    wecom_api_base_url: str = "https://qyapi.weixin.qq.com"
    dingtalk_login_base_url: str = "https://login.dingtalk.com"
    dingtalk_api_base_url: str = "https://api.dingtalk.com"

    @field_validator("public_base_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
                or parts.username is not None:
            raise ValueError("QUANYI_PUBLIC_BASE_URL must be an absolute http(s) URL without query or fragment, "
                             f"like https://shop.example.com, not {value!r}")
        return value.rstrip("/")
    # HTTP Strict Transport Security (browsers then refuse plain http for the shop's host): max-age in seconds.
    # Unset: one year when public_base_url is https (the shop is served over https, TLS possibly ended by a proxy),
    # none otherwise; 0 turns it off. `hsts_include_subdomains` extends it to every subdomain (only if they all
    # serve https).
    hsts_max_age_seconds: int | None = Field(default=None, ge=0, le=2 * 365 * 86_400)
    hsts_include_subdomains: bool = False

    def hsts_header(self) -> str | None:
        """The Strict-Transport-Security value every answer carries, or None."""
        max_age = self.hsts_max_age_seconds
        if max_age is None:
            max_age = 365 * 86_400 if (self.public_base_url or "").startswith("https://") else 0
        if not max_age:
            return None
        return f"max-age={max_age}" + ("; includeSubDomains" if self.hsts_include_subdomains else "")
    # Other origins whose pages may post the shop's forms (comma-separated, e.g. "https://www.example.com"); the
    # shop's own host and public_base_url are always trusted (web/csrf.py).
    csrf_trusted_origins: str = ""
    # Where the shop calls the sandbox gateway's merchant API (query, refund). `quanyi serve` fills it in
    # from its own address; defaults to public_base_url.
    sandbox_api_url: str | None = None

    admin_token: SecretStr = SecretStr("")
    # Signs order access tokens and cookies.
    app_secret: SecretStr = SecretStr("")
    # Card-key encryption keyring "k1:<base64 32 bytes>,k2:<...>"; new keys use card_key_active_id.
    card_keys: SecretStr = SecretStr("")
    card_key_active_id: str = ""
    # HMAC key for card-key fingerprints (dedupe). Never rotated without re-fingerprinting.
    card_key_hash_key: SecretStr = SecretStr("")
    sandbox_secret: SecretStr = SecretStr("")
    # The sandbox gateway lets anyone "pay" without money. Off unless asked for: `quanyi init` turns it on for
    # the demo; a shop taking real orders must turn it off (serve warns loudly while it is on).
    sandbox_enabled: bool = False

    reservation_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    # A process that found a SKU sold out refuses further checkouts of it for this long without asking the
    # database (flash sales); 0 turns it off. Stock coming back is seen after at most this delay.
    sold_out_memo_seconds: float = Field(default=1.0, ge=0, le=60)
    sweep_interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    # The ledger worker waits this long after a payment commits before posting, so payments arriving together
    # are posted in one batch (ledger.deferred); every other process's worker also looks once a second.
    ledger_batch_seconds: float = Field(default=0.02, ge=0, le=600)
    notify_tolerance_seconds: int = Field(default=300, ge=10, le=3600)
    # Links to the order in delivery e-mails and SMS stop working this long after they were sent (then the
    # buyer finds the order by number + contact); 0 < days.
    order_link_ttl_days: float = Field(default=30, gt=0, le=3650)
    lookup_window_seconds: int = Field(default=900, ge=10)
    # Failed order lookups allowed per window: per guesser (client address, device) over all orders, per guesser on
    # one order, and per order over all guessers (a backstop against many addresses; one stranger cannot reach it).
    lookup_max_failures_per_ip: int = Field(default=20, ge=1)
    lookup_max_failures_per_device: int = Field(default=20, ge=1)
    lookup_max_failures_per_guesser_per_order: int = Field(default=5, ge=1)
    lookup_max_failures_per_order: int = Field(default=100, ge=1)
    # Largest request body any endpoint accepts (413 beyond it, before it is read whole); the card-key import
    # upload has its own, larger limit (it is streamed to a temporary file and imported in chunks).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # Streamed imports (POST /api/admin/imports, the console's upload, `quanyi keys import`): the upload's own
    # limit, where its encrypted spool is kept until imported (every process of the shop must see the same
    # directory), lines per chunk (one short transaction each), and how long a worker's claim on a job lasts
    # without progress before another process resumes it.
    max_import_job_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    import_spool_dir: str = "var/imports"
    import_chunk_lines: int = Field(default=2000, ge=10, le=50_000)
    import_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    import_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    run_background_tasks: bool = True
    # The access log line per request (quanyi.accesslog.AccessLog, uvicorn's format). Behind a reverse proxy that
    # logs requests already, turning it off saves CPU on every request (measured in docs/PERFORMANCE.md).
    access_log: bool = True
    # FastAPI's OpenTelemetry (spans, request metrics, exception log records through the global providers; the
    # `opentelemetry-sdk` and an exporter are the operator's to install): true on, false off; unset, on only when a
    # provider is configured before the app is built (`opentelemetry-instrument`, logfire) or
    # FASTAPI_OTEL_AUTO_CONFIGURE=true. Decided at startup (quanyi.telemetry): off, no request pays FastAPI's check.
    opentelemetry: bool | None = None
    # Plain guest checkouts answered by orders.checkout_lane without the framework (the route's code and answers).
    checkout_lane: bool = True
    # PostgreSQL connections per process: up to twice this many, opened as requests need them and then kept open.
    # 4 (8 a process): a process runs on one core, and every backend it opens warms its own caches and plans
    # (docs/PERFORMANCE.md section 29: 10 made a 2-process flash sale slower and the database busier).
    database_pool_size: int = Field(default=4, ge=1, le=200)
    # PostgreSQL: a pooled connection idle this long is pinged before use (0: before every unit of work). One
    # whose server hung up is found without a ping whenever it is taken (db._ping_when_idle).
    database_ping_after_idle_seconds: float = Field(default=5.0, ge=0, le=3600)
    redis_url: str | None = None
    # Merchants (商户): days a delivered order's earnings stay held for refunds before they can be withdrawn
    # (a merchant's own hold_days overrides it).
    merchant_hold_days: int = Field(default=7, ge=0, le=365)
    # Merchant applications (入驻申请) one client address may send per hour (0: none).
    merchant_applications_per_ip_hour: int = Field(default=10, ge=0, le=10_000)
    # Prefix of every Redis key this shop writes (rate limits, risk counters). Default: `quanyi:<12 hex>:`, the hex
    # derived from QUANYI_APP_SECRET, so every process of one shop (identical secrets) shares its counters and two
    # shops on one Redis never read each other's (lockouts, velocity counts). Set it to pin a name of your own.
    redis_namespace: str | None = None
    # Refunds (退款): may card keys the buyer has already seen be taken back and refunded?
    refund_revealed_keys: bool = False
    refund_retry_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Active payment queries (主动查单): payments younger than this are queried until confirmed.
    payment_query_window_hours: int = Field(default=24, ge=1, le=24 * 30)
    payment_query_interval_seconds: float = Field(default=20.0, gt=0, le=3600)

    # ---- notifications (outbox): a channel left unconfigured is simply not used.
    # E-mail to buyers over SMTP; smtp_security: "starttls" (port 587), "ssl" (465) or "none" (local relay).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_from: str = ""  # e.g. "权益商城 <shop@example.com>"
    # SMS in the Aliyun SMS (dysmsapi SendSms) protocol; templates are registered at the provider.
    sms_api_url: str = "https://dysmsapi.aliyuncs.com/"
    sms_access_key_id: str = ""
    sms_access_key_secret: SecretStr = SecretStr("")
    sms_sign_name: str = ""
    sms_template_order_delivered: str = ""  # TemplateCode of the zh-CN delivery SMS
    sms_template_order_delivered_en: str = ""  # for English orders; falls back to the zh-CN one
    # Merchant alerts to group robots: the full webhook URL including key / access_token.
    wecom_webhook_url: str | None = None
    dingtalk_webhook_url: str | None = None
    dingtalk_secret: SecretStr = SecretStr("")  # the robot's "加签" secret (SEC...); empty: unsigned robot
    # Alert when a SKU's sellable stock drops below this many keys (0: never).
    low_stock_threshold: int = Field(default=5, ge=0, le=1_000_000)
    # False: the delivery e-mail links to the order page; True: it carries the card keys (audited reveal).
    email_include_keys: bool = False
    # Where operator alerts are e-mailed too (a bank-transfer top-up an enterprise asks for, a second payment of a
    # credited online top-up to refund), besides the group robots; empty: robots only.
    operator_alert_email: str = Field(default="", max_length=254)
    notification_max_attempts: int = Field(default=8, ge=1, le=100)
    notification_backoff_seconds: float = Field(default=30.0, ge=0, le=86_400)
    # A claimed message is re-sent by another worker if its worker has not reported within this time;
    # it must outlast one send (HTTP timeout 10 s, SMTP 30 s).
    notification_lease_seconds: int = Field(default=120, ge=60, le=86_400)
    notification_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    # Run the outbox worker inside `quanyi serve`; turn off when running separate `quanyi worker` processes.
    notification_worker_in_serve: bool = True
    # ---- supplier sync (suppliers/sync.py): pull stock and cost of mapped products this often, and each
    # supplier's whole catalog (new and vanished products) every supplier_catalog_interval_seconds.
    supplier_sync_interval_seconds: float = Field(default=60.0, gt=0, le=86_400)
    supplier_catalog_interval_seconds: float = Field(default=3600.0, gt=0, le=7 * 86_400)

    # ---- staff accounts and card-key security (key-security branch)
    staff_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Failed staff logins allowed per window, per client IP and per username; then 429 until the window ends.
    staff_login_window_seconds: int = Field(default=900, ge=10, le=86_400)
    staff_login_max_failures_per_ip: int = Field(default=20, ge=1)
    staff_login_max_failures_per_user: int = Field(default=5, ge=1)
    # A staff reveal of a plaintext card key must say why in at least this many characters.
    staff_reveal_reason_min_length: int = Field(default=10, ge=1, le=200)
    # ---- the web console (/console): a login lasts at most console_session_hours, and ends sooner once
    # unused for console_idle_minutes.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    console_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    # ---- the enterprise portal (/portal, 企业门户): an enterprise user's login lasts at most
    # enterprise_portal_session_hours and ends sooner once unused for enterprise_portal_idle_minutes. Failed
    # logins are limited by the staff_login_* numbers (counted apart from staff logins).
    enterprise_portal_session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    enterprise_portal_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    # The shop's bank account enterprises transfer top-ups to (收款账户: account name, bank, number), shown on
    # the portal's top-up page; empty: the page asks them to contact the shop for it.
    enterprise_top_up_payee: str = Field(default="", max_length=500)
    # ---- buyer accounts (members/): a login lasts member_session_days; one-time sign-in codes expire and allow
    # a few tries. Per window: codes sent per contact / per client address or device, and failed logins (wrong
    # code or password) per client address / device and per contact; past a limit 429 + Retry-After.
    member_session_days: float = Field(default=30.0, gt=0, le=365)
    member_code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    member_code_max_attempts: int = Field(default=5, ge=1, le=20)
    member_login_window_seconds: int = Field(default=900, ge=10, le=86_400)
    member_codes_per_contact: int = Field(default=5, ge=1)
    member_codes_per_client: int = Field(default=20, ge=1)
    member_login_max_failures_per_client: int = Field(default=20, ge=1)
    member_login_max_failures_per_contact: int = Field(default=10, ge=1)

    # ---- supplier fulfilment (routing, failover, circuit breaker, direct recharge)
    # Run the fulfilment worker inside `quanyi serve` (it also runs in `quanyi worker`).
    fulfilment_worker_in_serve: bool = True
    fulfilment_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    # A claimed job goes to another worker if its worker has not finished within this time; it must
    # outlast one supplier call (renewed before each call).
    fulfilment_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    # An attempt with no clear outcome (or a recharge without news) is asked about again after this,
    # doubling per round up to fulfilment_query_max_seconds.
    fulfilment_query_seconds: float = Field(default=5.0, ge=0, le=3600)
    fulfilment_query_max_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # A purchase call whose answer never came may still be placed at the supplier after we gave up waiting, so
    # its "no such order" is believed (and another supplier tried) only this long after the call was sent, and
    # never sooner than 3x the supplier's timeout. Shorter means faster failover and a risk of buying twice.
    fulfilment_not_found_grace_seconds: float = Field(default=60.0, ge=0, le=86_400)
    # Circuit breaker: this many failures in a row (unreachable, timeouts) stop routing to a supplier
    # for circuit_open_seconds; then one trial call decides (half-open).
    circuit_failure_threshold: int = Field(default=5, ge=1, le=1000)
    circuit_open_seconds: float = Field(default=60.0, ge=0, le=86_400)
    # A paid order whose only remaining suppliers are paused by an open circuit waits for them (up to this
    # long after it was queued) instead of going to refund at once; 0 = refund at once.
    fulfilment_circuit_wait_seconds: float = Field(default=600.0, ge=0, le=86_400)

    # ---- risk control (风控): counters, one-time codes, checkout flood limits. Rules live in the database.
    risk_counter_retention_seconds: int = Field(default=8 * 86_400, ge=3600, le=90 * 86_400)
    risk_redis_prefix: str | None = None  # default: <redis namespace>risk:
    risk_challenge_ttl_seconds: int = Field(default=600, ge=60, le=86_400)
    risk_challenge_max_attempts: int = Field(default=5, ge=1, le=20)
    # TemplateCode of the one-time code SMS (${code}, ${minutes}); codes go by SMS with it, delivery template or not
    sms_template_verification_code: str = ""
    # A captcha provider for challenges: "package.module:factory", a callable taking no arguments that returns
    # a risk.challenges.CaptchaVerifier (checked at startup). Empty: one-time codes only.
    risk_captcha_verifier: str = ""
    # Coupon abuse (薅羊毛, quanyi/coupons/abuse.py), counted with the risk counters; 0 turns a limit off.
    # Claims per client address / device per day (429), and distinct members using new-member coupons per address,
    # device or payer account per week (more: the checkout is refused, a paid order is held for review).
    coupon_claims_per_ip_per_day: int = Field(default=50, ge=0)
    coupon_claims_per_device_per_day: int = Field(default=20, ge=0)
    coupon_new_members_per_ip: int = Field(default=5, ge=0)
    coupon_new_members_per_device: int = Field(default=2, ge=0)
    coupon_new_members_per_payer: int = Field(default=2, ge=0)
    # How old a process's copy of the enabled risk rules may get before it reads them again (risk.ruleset): an edit
    # is in force at once in the process that made it, in the others within this delay; 0 reads them every time.
    risk_rules_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    # Checkouts per IP / per device id within the window before 429 + Retry-After; 0 turns a limit off.
    checkout_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)
    checkout_limit_per_ip: int = Field(default=60, ge=0)
    checkout_limit_per_device: int = Field(default=20, ge=0)
    # Stock one client may hold at once in orders not paid yet (reservations) or held for risk review, in units
    # (risk.holdings): per client address, per device, per contact at checkout (429 too_much_stock_held), and per
    # payer account for orders under review (a paid order past it is not held: it waits for its refund). One
    # order is always allowed when nothing else is held. 0 turns a limit off.
    held_units_limit_per_ip: int = Field(default=50, ge=0)
    held_units_limit_per_device: int = Field(default=20, ge=0)
    held_units_limit_per_contact: int = Field(default=20, ge=0)
    held_units_limit_per_payer: int = Field(default=50, ge=0)

    def redis_prefix(self, part: str) -> str:
        """The Redis key prefix of one part of the shop (`rl`, `risk`) under this shop's namespace."""
        if part == "risk" and self.risk_redis_prefix:
            return self.risk_redis_prefix
        namespace = self.redis_namespace
        if not namespace:
            digest = hmac.new(self.app_secret.get_secret_value().encode(), b"quanyi redis namespace", "sha256")
            namespace = f"quanyi:{digest.hexdigest()[:12]}:"
        return f"{namespace}{part}:"

    @field_validator("risk_captcha_verifier")
    @classmethod
    def _importable_factory(cls, value: str) -> str:
        if value.strip():
            import_object(value, setting="QUANYI_RISK_CAPTCHA_VERIFIER")
        return value.strip()

    @field_validator("card_key_active_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _refuse_unsafe_secrets(self) -> Settings:
        problems = self.secret_problems()
        if problems and not self.demo_mode:
            raise ValueError(
                "unsafe or missing secrets: " + "; ".join(problems)
                + ". Run `quanyi init` to generate them into " + str(ENV_FILE)
                + " or set the QUANYI_* variables."
            )
        return self

    def secret_problems(self) -> list[str]:
        problems = []
        for name in ("admin_token", "app_secret", "sandbox_secret", "card_key_hash_key"):
            value = getattr(self, name).get_secret_value()
            if value.lower() in _WEAK_SECRETS or len(value) < 16:
                problems.append(f"QUANYI_{name.upper()} must be at least 16 characters and not a placeholder")
        try:
            ring = self.card_keyring()
            if self.card_key_active_id not in ring:
                problems.append("QUANYI_CARD_KEY_ACTIVE_ID must name a key in QUANYI_CARD_KEYS")
        except ValueError as exc:
            problems.append(str(exc))
        return problems

    def card_keyring(self) -> dict[str, bytes]:
        """Parse `k1:<base64>,k2:<base64>` into {key id: 32-byte AES key}."""
        ring: dict[str, bytes] = {}
        raw = self.card_keys.get_secret_value().strip()
        if not raw:
            raise ValueError("QUANYI_CARD_KEYS is empty")
        for part in raw.split(","):
            key_id, sep, encoded = part.strip().partition(":")
            if not sep or not key_id:
                raise ValueError("QUANYI_CARD_KEYS must look like 'k1:<base64 key>'")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"QUANYI_CARD_KEYS key {key_id!r} is not valid base64") from None
            if len(key) != 32:
                raise ValueError(f"QUANYI_CARD_KEYS key {key_id!r} must be 32 bytes (AES-256)")
            ring[key_id] = key
        return ring


def generate_secrets_env(public_base_url: str = "http://127.0.0.1:8000") -> str:
    """Fresh secrets in env-file syntax (what `quanyi init` writes), with the shop's address."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return "\n".join(
        [
            "# Generated by `quanyi init`. Keep this file private; losing QUANYI_CARD_KEYS loses every card key.",
            f"QUANYI_ADMIN_TOKEN={secrets.token_urlsafe(24)}",
            f"QUANYI_APP_SECRET={secrets.token_urlsafe(32)}",
            f"QUANYI_CARD_KEYS=k1:{key}",
            "QUANYI_CARD_KEY_ACTIVE_ID=k1",
            f"QUANYI_CARD_KEY_HASH_KEY={secrets.token_urlsafe(32)}",
            f"QUANYI_SANDBOX_SECRET={secrets.token_urlsafe(32)}",
            "# The sandbox cashier hands out goods without real money: set to false before taking real orders.",
            "QUANYI_SANDBOX_ENABLED=true",
            "# Where buyers, gateways and suppliers reach the shop: change it to the public https address before going",
            "# live (Alipay, WeChat Pay and Stripe send notifications there and are not started without it).",
            f"QUANYI_PUBLIC_BASE_URL={public_base_url}",
            "",
        ]
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
