"""Every table of the shop, imported in one place for Alembic and tests."""

from __future__ import annotations

from quanyi.catalog.models import Category, Product, Sku
from quanyi.coupons.models import (
    Coupon,
    CouponCodeBatch,
    CouponGrant,
    CouponLevelGift,
    CouponLevelReward,
    CouponRedemption,
    CouponTally,
    CouponTarget,
)
from quanyi.db import Base
from quanyi.enterprises.models import (
    BulkPurchase,
    BulkPurchaseOrder,
    Campaign,
    CampaignClaim,
    CampaignEmployee,
    CampaignOption,
    DownloadAudit,
    DownloadLink,
    Enterprise,
    EnterpriseContact,
    EnterprisePriceTier,
    LoginApp,
)
from quanyi.inventory.models import CardKey, ImportBatch, KeyReveal, LeakReport
from quanyi.ledger.models import (
    CustomerAccount,
    CustomerCharge,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    ProfitShareRule,
    SupplierCharge,
)
from quanyi.loyalty.models import (
    LevelPrice,
    LoyaltyProgram,
    MemberLevel,
    MemberLoyalty,
    PointsLot,
    PointsMovement,
)
from quanyi.members.models import Member, MemberCode, MemberSession
from quanyi.merchants.models import CommissionRule, Merchant, MerchantApplication, MerchantStatement, Withdrawal
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments.models import GatewayConfig, GatewayEvent, Payment
from quanyi.payments.sandbox.models import SandboxRefund, SandboxTrade
from quanyi.promoters.models import OrderAttribution, Promoter, PromoterBinding, PromoterProgram, PromoterWithdrawal
from quanyi.refunds.models import Refund, RefundEvent, RefundKey
from quanyi.resellers.models import Reseller, ResellerNonce, ResellerOrder, ResellerPrice, ResellerSecret
from quanyi.risk.models import (
    CounterEvent,
    OrderRiskSignals,
    RateCounter,
    ReviewAction,
    RiskChallenge,
    RiskDecisionLog,
    RiskPolicy,
    RiskRule,
)
from quanyi.staff.models import StaffAuditEntry, StaffRecoveryCode, StaffSession, StaffUser
from quanyi.suppliers.fulfilment_models import FulfilmentJob, SupplierAttempt
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct
from quanyi.suppliers.sync_models import SkuPriceChange, SkuPricePolicy, SupplierSyncState

__all__ = ["metadata", "Coupon", "CouponCodeBatch", "CouponGrant", "CouponLevelGift", "CouponLevelReward",
           "CouponRedemption", "CouponTally", "CouponTarget",
           "Category", "Product", "Sku", "CardKey", "ImportBatch", "KeyReveal", "Order",
           "OrderEvent", "Payment", "GatewayEvent", "GatewayConfig", "SandboxTrade", "SandboxRefund", "Refund",
           "RefundEvent", "RefundKey", "RateCounter", "OutboxMessage", "Supplier", "SupplierProduct",
           "SkuSupplierMapping", "LeakReport", "StaffUser", "StaffSession", "StaffRecoveryCode", "StaffAuditEntry",
           "SupplierSyncState", "SkuPricePolicy",
           "SkuPriceChange", "LedgerAccount", "LedgerPosting", "LedgerEntry", "SupplierCharge", "ProfitShareRule",
           "FulfilmentJob", "SupplierAttempt",
           "RiskRule", "RiskPolicy", "CounterEvent", "RiskDecisionLog", "RiskChallenge", "OrderRiskSignals",
           "ReviewAction", "Merchant", "MerchantApplication", "CommissionRule", "Withdrawal", "MerchantStatement",
           "CustomerAccount", "CustomerCharge", "Reseller", "ResellerSecret", "ResellerPrice", "ResellerOrder",
           "ResellerNonce", "Enterprise", "EnterpriseContact", "EnterprisePriceTier", "BulkPurchase",
           "BulkPurchaseOrder", "DownloadLink", "DownloadAudit",
           "Member", "MemberSession", "MemberCode", "Campaign", "CampaignOption", "CampaignEmployee", "CampaignClaim",
           "PromoterProgram", "Promoter", "OrderAttribution", "PromoterBinding", "PromoterWithdrawal",
           "LoginApp", "LoyaltyProgram", "MemberLevel", "LevelPrice", "MemberLoyalty", "PointsLot", "PointsMovement"]

metadata = Base.metadata
