"""Enterprise customer tables (企业客户, B2B): the enterprise with its invoice data and prepaid account (a ledger
customer account, `enterprise:<code>`, the same mechanism resellers pay from), its contacts, and its negotiated
prices: tiers by quantity (阶梯价)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base, UTCDateTime, utcnow
from quanyi.second_factor import TotpColumns

__all__ = ["Enterprise", "EnterpriseStatus", "EnterpriseContact", "EnterprisePriceTier", "PurchaseStatus",
           "BulkPurchase", "BulkPurchaseOrder", "DownloadLink", "DownloadAudit", "CampaignStatus", "Campaign",
           "CampaignOption", "CampaignEmployee", "CampaignClaim", "LoginApp", "EnterpriseUser", "EnterpriseUserSession",
           "EnterpriseUserRecoveryCode", "TopUpStatus", "TopUpRequest", "TopUpExtraPayment"]


class EnterpriseStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its account is frozen: no purchase, no claim is paid while suspended


class Enterprise(Base):
    """An enterprise customer (企业客户) buying benefits for its employees, paying from `account_id`."""

    __tablename__ = "enterprises_enterprise"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=EnterpriseStatus.ACTIVE)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_customer_account.id"), unique=True)
    # Invoice data (开票信息) for the VAT invoice of each top-up: title (抬头), taxpayer id (纳税人识别号) ...
    invoice_title: Mapped[str] = mapped_column(String(200), default="")
    tax_number: Mapped[str] = mapped_column(String(20), default="")
    invoice_address: Mapped[str] = mapped_column(String(300), default="")
    invoice_phone: Mapped[str] = mapped_column(String(40), default="")
    bank_name: Mapped[str] = mapped_column(String(200), default="")
    bank_account: Mapped[str] = mapped_column(String(64), default="")
    invoice_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnterpriseContact(Base):
    """A person at the enterprise we deal with (purchasing, finance, HR): who orders, who gets the files."""

    __tablename__ = "enterprises_contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))  # purchasing | finance | hr | it | other
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnterprisePriceTier(Base):
    """One tier of an enterprise's price of a SKU (阶梯价): from `min_quantity` items in one purchase on, each
    costs `unit_price_cents`. A negotiated flat price is a single tier from 1. Below the lowest tier, and for
    SKUs without tiers, the list price applies (enterprises.pricing.unit_price)."""

    __tablename__ = "enterprises_price_tier"
    __table_args__ = (UniqueConstraint("enterprise_id", "sku_id", "min_quantity"),
                      CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
                      CheckConstraint("unit_price_cents > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"), index=True)
    min_quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64), default="admin")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PurchaseStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"  # stopped by a refusal (sold out, balance short, frozen): resume after fixing it
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # stopped for good; what was placed stays placed (and paid)


class BulkPurchase(Base):
    """A bulk purchase (批量采购) of N codes of one SKU for an enterprise, placed by a background job in chunks:
    each chunk is one order paid from the enterprise's balance in one transaction together with its
    `BulkPurchaseOrder` row, so a crash loses a chunk whole or keeps it whole; `placed_quantity` is the progress.
    The unit price is the enterprise's tier price for the whole quantity, fixed when the purchase is made."""

    __tablename__ = "enterprises_purchase"
    __table_args__ = (UniqueConstraint("enterprise_id", "reference"),
                      CheckConstraint("quantity >= 1", name="quantity_positive"),
                      CheckConstraint("placed_quantity >= 0 AND placed_quantity <= quantity",
                                      name="placed_within_quantity"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_no: Mapped[str] = mapped_column(String(32), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    # The caller's Idempotency-Key: the same key returns this purchase instead of making another.
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PurchaseStatus.QUEUED, index=True)
    placed_quantity: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(48), nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The worker working it and until when (a worker that died leaves a lease that runs out: another resumes).
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BulkPurchaseOrder(Base):
    """One chunk of a bulk purchase: the order that bought it. (purchase, seq) is unique, so two workers can
    never place the same chunk, and the order is unique, so no order counts twice."""

    __tablename__ = "enterprises_purchase_order"
    __table_args__ = (UniqueConstraint("purchase_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("enterprises_purchase.id"))
    seq: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id"), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DownloadLink(Base):
    """An expiring link to a bulk purchase's codes as CSV/XLSX (下载链接). Only the token's hash is kept; the
    file is built at each download from the encrypted card keys, so no plaintext copy of the codes rests
    anywhere. `downloads` counts uses, at most `max_downloads`."""

    __tablename__ = "enterprises_download_link"
    __table_args__ = (CheckConstraint("downloads >= 0 AND downloads <= max_downloads", name="downloads_within_max"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("enterprises_purchase.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    max_downloads: Mapped[int] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DownloadAudit(Base):
    """Each download of a purchase's codes (and each refused attempt): who, from where, when, how many codes."""

    __tablename__ = "enterprises_download_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("enterprises_purchase.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises_download_link.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))  # "link" or the staff member
    outcome: Mapped[str] = mapped_column(String(16))  # served | expired | used_up | revoked
    file_format: Mapped[str] = mapped_column(String(8))
    ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"  # options and employees can change; nothing funded yet
    ACTIVE = "active"  # funded: employees claim between starts_at and ends_at
    ENDED = "ended"  # closed; the unclaimed budget went back to the enterprise's balance (once)


class Campaign(Base):
    """A benefit campaign (福利活动): each employee on the roster may claim once, goods of the listed options
    worth up to `budget_per_employee_cents`. Activation moves headcount x budget from the enterprise's balance
    into the campaign's own customer account (`campaign:<no>`), claims are paid from it, and at the end what is
    left goes back to the enterprise, exactly once (ledger.transfer_between_customers)."""

    __tablename__ = "enterprises_campaign"
    __table_args__ = (CheckConstraint("budget_per_employee_cents > 0", name="budget_positive"),
                      CheckConstraint("ends_at > starts_at", name="ends_after_start"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_no: Mapped[str] = mapped_column(String(24), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    greeting: Mapped[str] = mapped_column(String(500), default="")
    budget_per_employee_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_customer_account.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT, index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    allow_wecom: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_dingtalk: Mapped[bool] = mapped_column(Boolean, default=False)
    funded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    returned_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CampaignOption(Base):
    """A SKU employees may choose in a campaign, at the enterprise's price fixed when the option was added."""

    __tablename__ = "enterprises_campaign_option"
    __table_args__ = (UniqueConstraint("campaign_id", "sku_id"),
                      CheckConstraint("unit_price_cents > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("enterprises_campaign.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)


class CampaignEmployee(Base):
    """An employee on a campaign's roster. The claim code is kept only as a keyed hash (shown once, when the
    roster is loaded); WeCom / DingTalk logins find the employee by `wecom_userid` / `dingtalk_union_id` or the
    mobile number."""

    __tablename__ = "enterprises_campaign_employee"
    __table_args__ = (UniqueConstraint("campaign_id", "employee_no"), UniqueConstraint("campaign_id", "wecom_userid"),
                      UniqueConstraint("campaign_id", "dingtalk_union_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("enterprises_campaign.id"), index=True)
    employee_no: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    wecom_userid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dingtalk_union_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignClaim(Base):
    """An employee's claim (领取): the order that delivered it, paid from the campaign's account. One per
    employee: the unique employee_id is what makes a double tap or two phones claim once."""

    __tablename__ = "enterprises_campaign_claim"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("enterprises_campaign.id"), index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("enterprises_campaign_employee.id"), unique=True)
    # Set in the same transaction right after the row is written (the row first: see campaign_claims.claim).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders_order.id"), unique=True, nullable=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("catalog_sku.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(16))  # code | wecom | dingtalk
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginApp(Base):
    """An enterprise's own WeCom (企业微信) or DingTalk (钉钉) app, through which its employees sign in on claim
    pages: WeCom corp id + agent id + app secret, or DingTalk client id (AppKey) + client secret. The secret is
    sealed with the shop's keyring (AES-256-GCM, bound to the enterprise and provider): calling their server API
    needs it, so it cannot be a one-way hash; it is never shown again (`hint`: its last 4 characters)."""

    __tablename__ = "enterprises_login_app"
    __table_args__ = (UniqueConstraint("enterprise_id", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"))
    provider: Mapped[str] = mapped_column(String(16))  # wecom | dingtalk
    app_id: Mapped[str] = mapped_column(String(64))  # corp id (WeCom) or client id (DingTalk)
    agent_id: Mapped[str] = mapped_column(String(32), default="")  # WeCom only
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    hint: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnterpriseUser(TotpColumns, Base):
    """A person of an enterprise who logs in to the enterprise portal (企业门户, /portal) and runs its account:
    `role` admin / purchaser / viewer (enterprises.users.ROLES). The username is unique within its enterprise
    (a login names the enterprise code, the username and the password); argon2 password, optional TOTP."""

    __tablename__ = "enterprises_user"
    __table_args__ = (UniqueConstraint("enterprise_id", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EnterpriseUserSession(Base):
    """A portal login in an HttpOnly cookie: only the token's SHA-256 is kept. It ends at the first of logout,
    `expires_at`, `last_seen_at` idle too long, a new password, the user disabled or ended by an administrator.
    One that still waits for the second factor opens only the second-factor page."""

    __tablename__ = "enterprises_user_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("enterprises_user.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")


class EnterpriseUserRecoveryCode(Base):
    """A one-time recovery code of a portal user's second factor: its SHA-256 only (80 random bits each)."""

    __tablename__ = "enterprises_user_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("enterprises_user.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TopUpStatus(enum.StrEnum):
    PENDING = "pending"  # asked for in the portal; waits for the money and an operator
    CREDITED = "credited"  # the money arrived: credited to the balance once (its ledger posting)
    REFUSED = "refused"  # no money came (or not this amount): the operator said why; nothing was credited


class TopUpRequest(Base):
    """A top-up an enterprise's admin asked for in the portal (充值申请): the amount and how it is paid (an
    offline bank transfer with the transfer's reference, credited once when an operator confirms the money
    arrived; or online through a payment gateway, credited once by its verified notification)."""

    __tablename__ = "enterprises_top_up_request"
    __table_args__ = (UniqueConstraint("enterprise_id", "request_key"),
                      # One gateway transaction credits at most one request.
                      UniqueConstraint("gateway", "gateway_trade_no"),
                      CheckConstraint("amount_cents > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_no: Mapped[str] = mapped_column(String(24), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises_enterprise.id"), index=True)
    # The form's one-time key: the same form sent twice makes one request.
    request_key: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))  # bank_transfer | online
    payer_reference: Mapped[str] = mapped_column(String(64))  # the transfer's serial number / remark (汇款备注)
    # Paid online: the gateway the admin was sent to (the request number is our out_trade_no there), and its
    # transaction number once its notification credited the request.
    gateway: Mapped[str | None] = mapped_column(String(32), nullable=True)
    gateway_trade_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=TopUpStatus.PENDING, index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    refusal_reason: Mapped[str] = mapped_column(String(500), default="")


class TopUpExtraPayment(Base):
    """A second payment of an online top-up request another payment already credited (重复付款): real money the
    shop holds but never credits. Operators are alerted and the console flags it on its request until an operator
    records that it was refunded at the gateway."""

    __tablename__ = "enterprises_top_up_extra_payment"
    __table_args__ = (UniqueConstraint("gateway", "gateway_trade_no"),)  # the gateway re-sends: one row a trade

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("enterprises_top_up_request.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    gateway_trade_no: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    refunded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
