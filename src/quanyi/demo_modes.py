"""Demo data of the business modes the base demo catalog (demo.py) does not show: a 循环卡密 SKU (one shared code
sold to many buyers up to its limit), a 自选卡密 SKU (buyers pick a labelled key), a 手动发货 SKU (staff deliver by
hand), and an enterprise customer (企业福利) with a prepaid balance, tier prices and a small benefit campaign.

Each part is added once: it is looked up by its own code first, so `make demo` on a shop loaded before these
existed adds them, and a second run adds nothing. Everything goes through the features' services; nothing here
talks to the network."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Category, DeliveryType, Sku
from quanyi.catalog.schemas import ProductCreate, SkuCreate
from quanyi.context import ShopContext
from quanyi.db import utcnow
from quanyi.enterprises import campaigns, pricing
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import Enterprise
from quanyi.inventory import picking, shared_codes
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import CardKey
from quanyi.scope import PLATFORM_MERCHANT_ID

__all__ = ["load_demo_modes", "SHARED_SKU", "PICK_SKU", "MANUAL_SKU", "DEMO_ENTERPRISE"]

Progress = Callable[[str], None]
SHARED_SKU, PICK_SKU, MANUAL_SKU = "STAR-TRIAL-7D", "MIRAGE-ACCT-PICK", "ZEN-OFFICE-TEAM5"
DEMO_ENTERPRISE = "XINGHE-TECH"
LABELS = {SHARED_SKU: f"循环卡密 shared code {SHARED_SKU}", PICK_SKU: f"自选卡密 pick-your-key {PICK_SKU}",
          MANUAL_SKU: f"手动发货 manual delivery {MANUAL_SKU}",
          DEMO_ENTERPRISE: f"企业福利 enterprise {DEMO_ENTERPRISE} (balance, tier prices, campaign)"}
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

SHARED_GUIDE = """### 使用方法
1. 打开 **星影视频** App，进入「我的 → 兑换中心」；
2. 输入体验码，即得 7 天 VIP 体验。

> 这是一个**通用体验码**：同一个码发给每位买家（循环卡密），每个星影账号只能使用一次。
"""

PICK_GUIDE = """### 自选账号
在商品页的「自选」列表里挑一个账号（等级、职业、坐骑写在标签上），下单时加收自选费。
付款后订单页显示该账号的 **账号** 和 **密码**，请登录后立即修改密码并绑定手机。
"""

MANUAL_GUIDE = """### 人工开通
付款后客服在 **2 小时内**（工作时间）为团队开通 5 个席位，开通结果和管理员账号会发到您下单时留的联系方式，
订单页同时显示。需要发票请在备注中写明抬头和税号。
"""

# (label buyers see, level) of the 自选卡密 accounts
PICK_ACCOUNTS = [("账号 #01 · 80 级 · 战士 · 幻翼坐骑", 80), ("账号 #02 · 75 级 · 法师 · 全套时装", 75),
                 ("账号 #03 · 70 级 · 弓手 · 稀有称号", 70), ("账号 #04 · 65 级 · 牧师", 65),
                 ("账号 #05 · 60 级 · 刺客 · 双倍经验卡", 60), ("账号 #06 · 60 级 · 战士", 60)]
EMPLOYEES = [("E001", "王小明"), ("E002", "李华"), ("E003", "陈静")]


def _say(progress: Progress | None, text: str) -> None:
    if progress:
        progress(text)


async def _sku(session: AsyncSession, code: str) -> Sku | None:
    return await session.scalar(select(Sku).where(Sku.code == code))


async def _category(session: AsyncSession, slug: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.slug == slug))


async def _product(session: AsyncSession, category: Category, *, slug: str, name: str, cover: str, guide: str,
                   description: str, sku: SkuCreate) -> Sku:
    product = await catalog_service.create_product(session=session, data=ProductCreate(
        category_id=category.id, slug=slug, name=name, description=description, redemption_guide=guide,
        cover_image_url=f"/static/covers/{cover}.svg", sort_order=20, skus=[sku]))
    return product.skus[0]


async def _shared_code_sku(ctx: ShopContext, session: AsyncSession) -> bool:
    """循环卡密: one trial code, sold to up to 500 buyers."""
    category = await _category(session, "video")
    if category is None or await _sku(session, SHARED_SKU) is not None:
        return False
    sku = await _product(session, category, slug="star-video-trial", name="星影视频 7 天体验码（通用码）",
                         cover="video", guide=SHARED_GUIDE,
                         description="7 天 VIP 体验，通用兑换码：每位买家拿到同一个码（循环卡密），限量 500 份。",
                         sku=SkuCreate(code=SHARED_SKU, name="7 天体验", face_value_cents=500, price_cents=290,
                                       delivery_type=DeliveryType.SHARED_CODE, max_quantity=1))
    code = "STARTRIAL-" + "".join(secrets.choice(_ALNUM) for _ in range(8))
    await shared_codes.add_shared_code(session=session, cipher=ctx.cipher, sku_id=sku.id,
                                       merchant_id=PLATFORM_MERCHANT_ID, text=code, sale_limit=500, actor="demo")
    return True


async def _pick_sku(ctx: ShopContext, session: AsyncSession) -> bool:
    """自选卡密: six game accounts, each labelled; a buyer may pick one for 5 元 more."""
    category = await _category(session, "game")
    if category is None or await _sku(session, PICK_SKU) is not None:
        return False
    sku = await _product(session, category, slug="mirage-online-accounts", name="幻境 Online 成品账号（可自选）",
                         cover="game", guide=PICK_GUIDE,
                         description="练好的幻境 Online 账号：随机发一个，或按标签自选一个（加 5 元）。",
                         sku=SkuCreate(code=PICK_SKU, name="成品账号", face_value_cents=0, price_cents=3900,
                                       max_quantity=3, pick_surcharge_cents=500))
    lines = [f"MJ{secrets.randbelow(10**8):08d},{''.join(secrets.choice(_ALNUM) for _ in range(10))}"
             for _ in PICK_ACCOUNTS]
    await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=sku, text="\n".join(lines),
                                             source_name="演示数据（自动生成）", imported_by="demo")
    key_ids = (await session.scalars(select(CardKey.id).where(CardKey.sku_id == sku.id).order_by(CardKey.id))).all()
    await picking.label_card_keys(session=session, sku_id=sku.id,
                                  labels={key_id: label for key_id, (label, _) in zip(key_ids, PICK_ACCOUNTS,
                                                                                      strict=True)})
    return True


async def _manual_sku(session: AsyncSession) -> bool:
    """手动发货: staff open the seats by hand after payment (the console's fulfilment queue)."""
    category = await _category(session, "software")
    if category is None or await _sku(session, MANUAL_SKU) is not None:
        return False
    await _product(session, category, slug="zen-office-team", name="极简办公 团队版（人工开通）", cover="software",
                   guide=MANUAL_GUIDE, description="团队版 5 席位一年，付款后客服人工开通（手动发货）。",
                   sku=SkuCreate(code=MANUAL_SKU, name="5 席位 · 1 年", face_value_cents=59900, price_cents=49900,
                                 delivery_type=DeliveryType.MANUAL, max_quantity=2))
    return True


async def _enterprise(ctx: ShopContext, session: AsyncSession, progress: Progress | None) -> bool:
    """企业福利: a customer with 20,000 元 paid in, tier prices on two memberships, and a live campaign of three
    employees (their claim codes are printed this once)."""
    if await session.scalar(select(Enterprise.id).where(Enterprise.code == DEMO_ENTERPRISE)) is not None:
        return False
    if await _sku(session, "STAR-VIP-1M") is None or await _sku(session, "CLOUD-MUSIC-1M") is None:
        return False
    await enterprises_service.create_enterprise(
        session=session, code=DEMO_ENTERPRISE, name="星河科技有限公司", credit_limit_cents=0,
        invoice=enterprises_service.InvoiceData(invoice_title="星河科技有限公司", tax_number="91310115MA1K4XQ27B",
                                                invoice_address="上海市浦东新区张江路 88 号",
                                                invoice_phone="021-50001234",
                                                bank_name="招商银行上海张江支行", bank_account="6214 8321 0000 8888",
                                                invoice_email="finance@xinghe.example"))
    await enterprises_service.top_up(session=session, code=DEMO_ENTERPRISE, amount_cents=2_000_000,
                                     note="演示：银行转账", actor="demo", reference=f"demo-topup:{DEMO_ENTERPRISE}")
    await pricing.set_tiers(session=session, code=DEMO_ENTERPRISE, sku_code="STAR-VIP-1M", actor="demo",
                            tiers=[pricing.Tier(1, 1880), pricing.Tier(50, 1780), pricing.Tier(200, 1680)])
    await pricing.set_tiers(session=session, code=DEMO_ENTERPRISE, sku_code="CLOUD-MUSIC-1M", actor="demo",
                            tiers=[pricing.Tier(1, 1150), pricing.Tier(100, 1050)])
    now = utcnow()
    campaign = await campaigns.create_campaign(
        session=session, code=DEMO_ENTERPRISE, name="年终福利：会员二选一", name_en="Year-end gift: pick a membership",
        greeting="感谢大家一年的付出！任选一张会员卡。", sku_codes=["STAR-VIP-1M", "CLOUD-MUSIC-1M"],
        starts_at=now - dt.timedelta(minutes=5), ends_at=now + dt.timedelta(days=60), actor="demo", now=now)
    issued = await campaigns.add_employees(
        session=session, cipher=ctx.cipher, code=DEMO_ENTERPRISE, campaign_no=campaign.campaign_no,
        employees=[campaigns.EmployeeIn(employee_no=no, name=name) for no, name in EMPLOYEES], actor="demo", now=now)
    await campaigns.activate_campaign(session=session, code=DEMO_ENTERPRISE, campaign_no=campaign.campaign_no,
                                      actor="demo", now=now)
    _say(progress, f"enterprise {DEMO_ENTERPRISE}: campaign /claim/{campaign.campaign_no}, claim codes (shown once): "
         + ", ".join(f"{row.employee_no} {code}" for row, code in issued))
    return True


async def load_demo_modes(ctx: ShopContext, *, progress: Progress | None = None) -> bool:
    """Add whichever of these demo parts is missing, in one transaction; True if anything was added."""
    async with ctx.db.transaction() as session:
        added = [name for name, made in ((SHARED_SKU, await _shared_code_sku(ctx, session)),
                                         (PICK_SKU, await _pick_sku(ctx, session)),
                                         (MANUAL_SKU, await _manual_sku(session)),
                                         (DEMO_ENTERPRISE, await _enterprise(ctx, session, progress))) if made]
    for name in added:
        _say(progress, LABELS[name])
    return bool(added)
