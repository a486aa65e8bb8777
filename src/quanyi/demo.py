"""Demo catalog (演示数据): four categories, products with redemption guides, SKUs and generated card keys; a
merchant; the default risk rules. The other business modes' demo data is in demo_modes.py."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Category
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.context import ShopContext
from quanyi.inventory import service as inventory_service

__all__ = ["load_demo", "ensure_demo_owner", "DEMO_CATEGORIES", "DEMO_MERCHANT"]

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _code(groups: int = 4, size: int = 4) -> str:
    return "-".join("".join(secrets.choice(_ALNUM) for _ in range(size)) for _ in range(groups))


def _card_pair(prefix: str) -> str:
    return f"{prefix}{secrets.randbelow(10**10):010d},{''.join(secrets.choice('0123456789') for _ in range(12))}"


VIDEO_GUIDE = """### 兑换步骤
1. 打开 **星影视频** App，进入「我的 → 兑换中心」；
2. 粘贴卡密（可点击订单页的「复制」按钮），点击「立即兑换」；
3. 兑换成功后会员权益立即生效，可在「会员中心」查看到期时间。

> 每个卡密仅能兑换一次，兑换后请勿转发给他人。
"""

MUSIC_GUIDE = """### 兑换步骤
1. 登录 **云听音乐** 网页版或 App；
2. 打开「设置 → 兑换码」，输入卡密；
3. 黑胶会员立即到账，可叠加延长有效期。
"""

GAME_GUIDE = """### 充值步骤
1. 登录 **幻境 Online** 官网充值中心，选择「点卡充值」；
2. 输入 **卡号** 和 **密码**，选择要充值的游戏账号与区服；
3. 点券在 1 分钟内到账。

如提示“卡号或密码错误”，请确认没有多复制空格。
"""

OFFICE_GUIDE = """### 激活方法
1. 从官网下载并安装 **极简办公**；
2. 打开软件，点击「帮助 → 输入激活码」；
3. 粘贴激活码并联网验证。一个激活码可激活 1 台设备。
"""

GIFT_GUIDE = """### 使用方法
- 在 **优选商城** 结算页选择「礼品卡支付」，输入卡号与密码即可抵扣；
- 可分多次使用，余额长期有效（以卡面有效期为准）；
- 礼品卡不可兑换现金。
"""

COFFEE_GUIDE = """### 使用方法
到店出示券码或在小程序「我的 → 券包 → 添加券码」中输入即可兑换一杯中杯饮品。
"""

# category -> products -> (sku, number of keys, key generator)
DEMO_CATEGORIES: list[dict] = [  # type: ignore[type-arg]
    {"slug": "video", "name": "影视会员", "description": "视频、音乐平台会员卡，自动发卡，即买即用。", "products": [
        {"slug": "star-video-vip", "name": "星影视频 VIP 会员", "cover": "video", "guide": VIDEO_GUIDE,
         "description": "星影视频 VIP 会员卡：海量影视剧免广告、4K 画质、抢先看。\n支持手机、平板、电脑、电视端。",
         "skus": [
             ("STAR-VIP-1M", "月卡", 2500, 1980, 40, _code),
             ("STAR-VIP-3M", "季卡", 6800, 5400, 25, _code),
             ("STAR-VIP-12M", "年卡", 24800, 19800, 10, _code),
         ]},
        {"slug": "cloud-music-vinyl", "name": "云听音乐 黑胶会员", "cover": "music", "guide": MUSIC_GUIDE,
         "description": "无损音质、会员曲库、离线下载。",
         "skus": [
             ("CLOUD-MUSIC-1M", "月卡", 1500, 1200, 30, _code),
             ("CLOUD-MUSIC-12M", "年卡", 15800, 11800, 8, _code),
         ]},
    ]},
    {"slug": "game", "name": "游戏充值", "description": "游戏点卡与账号直充。", "products": [
        {"slug": "mirage-online-points", "name": "幻境 Online 点卡", "cover": "game", "guide": GAME_GUIDE,
         "description": "幻境 Online 官方点卡，卡号 + 密码，官网充值中心使用。",
         "skus": [
             ("MIRAGE-100", "100 点券", 1000, 950, 40, lambda: _card_pair("MJ")),
             ("MIRAGE-500", "500 点券", 5000, 4700, 20, lambda: _card_pair("MJ")),
             ("MIRAGE-1000", "1000 点券", 10000, 9300, 10, lambda: _card_pair("MJ")),
         ]},
        {"slug": "mirage-online-direct", "name": "幻境 Online 账号直充", "cover": "phone", "guide": "",
         "description": "输入游戏账号，点券直接充入账户。供应商接入后开放。",
         "skus": [("MIRAGE-DIRECT-1000", "1000 点券直充", 10000, 9500, 0, None)]},
    ]},
    {"slug": "software", "name": "软件激活码", "description": "正版软件授权激活码。", "products": [
        {"slug": "zen-office-pro", "name": "极简办公 专业版", "cover": "software", "guide": OFFICE_GUIDE,
         "description": "文档、表格、演示三合一，专业版解锁云同步与 PDF 编辑。",
         "skus": [
             ("ZEN-OFFICE-1Y", "1 年授权", 12900, 8900, 25, lambda: _code(5, 5)),
             ("ZEN-OFFICE-LIFE", "永久授权", 39900, 29900, 5, lambda: _code(5, 5)),
         ]},
        {"slug": "cloud-drive-plus", "name": "云盘 Plus 空间包", "cover": "cloud", "guide": OFFICE_GUIDE,
         "description": "1TB 云空间，激活后立即扩容。",
         "skus": [("CLOUD-DRIVE-1T", "1TB 一年", 9900, 7900, 15, _code)]},
    ]},
    {"slug": "gift-card", "name": "礼品卡", "description": "购物卡、餐饮券，送礼自用皆宜。", "products": [
        {"slug": "shopping-gift-card", "name": "优选商城 购物卡", "cover": "gift", "guide": GIFT_GUIDE,
         "description": "优选商城通用购物卡，卡号 + 密码，全场通用。",
         "skus": [
             ("SHOP-GC-100", "面值 100 元", 10000, 9800, 30, lambda: _card_pair("GC")),
             ("SHOP-GC-500", "面值 500 元", 50000, 49000, 10, lambda: _card_pair("GC")),
         ]},
        {"slug": "coffee-voucher", "name": "咖啡中杯兑换券", "cover": "gift", "guide": COFFEE_GUIDE,
         "description": "全国门店通用的中杯饮品兑换券。",
         "skus": [("COFFEE-M", "中杯兑换券", 3000, 1990, 0, _code)]},
    ]},
]


# A merchant selling on the demo platform next to its own store (商户入驻): its own page /m/moonlight.
DEMO_MERCHANT = {"code": "moonlight", "name": "月光数码", "commission_bps": 800,
                 "description": "月光数码专营游戏点卡与数字礼品，7×24 小时自动发卡。\n"
                                "Moonlight Digital: game cards and digital gifts, delivered day and night.",
                 "category": "game", "slug": "moonlight-game-card", "name_product": "月光 游戏通用点卡",
                 "skus": [("MOON-GAME-50", "50 元", 5000, 4850, 20), ("MOON-GAME-100", "100 元", 10000, 9600, 10)]}


def _key_file(count: int, make: Callable[[], str]) -> str:
    expiry = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    return "\n".join(f"{make()},{expiry}" if i % 3 == 0 else make() for i in range(count))


async def load_demo(ctx: ShopContext, *, progress: Callable[[str], None] | None = None) -> bool:
    """Create the demo catalog and stock, then the demo of every other business mode (demo_modes.py). Each part is
    added once; returns False if everything was already there."""
    from quanyi.demo_modes import load_demo_modes

    added = await _load_catalog(ctx, progress)
    return await load_demo_modes(ctx, progress=progress) or added


async def _load_catalog(ctx: ShopContext, progress: Callable[[str], None] | None) -> bool:
    async with ctx.db.transaction() as session:
        if await session.scalar(select(Category.id).where(Category.slug == "video")) is not None:
            return False
        for order, cat in enumerate(DEMO_CATEGORIES):
            category = await catalog_service.create_category(session=session, data=CategoryCreate(
                slug=cat["slug"], name=cat["name"], description=cat["description"], sort_order=order))
            for p_order, prod in enumerate(cat["products"]):
                skus = [
                    SkuCreate(code=code, name=name, face_value_cents=face, price_cents=price,
                              delivery_type="direct_recharge" if make is None else "card_key",
                              max_quantity=5, sort_order=i)
                    for i, (code, name, face, price, _n, make) in enumerate(prod["skus"])
                ]
                product = await catalog_service.create_product(session=session, data=ProductCreate(
                    category_id=category.id, slug=prod["slug"], name=prod["name"],
                    description=prod["description"], redemption_guide=prod["guide"],
                    cover_image_url=f"/static/covers/{prod['cover']}.svg", sort_order=p_order, skus=skus))
                for sku, (_sku_code, _name, _face, _price, count, make) in zip(product.skus, prod["skus"], strict=True):
                    if make is None or count == 0:
                        continue
                    await inventory_service.import_card_keys(
                        session=session, cipher=ctx.cipher, sku=sku, text=_key_file(count, make),
                        source_name="演示数据（自动生成）", imported_by="demo")
                if progress:
                    progress(prod["name"])
        await _demo_merchant(ctx, session)
        if progress:
            progress(f"merchant {DEMO_MERCHANT['code']}")
        # Risk control: the documented default rule set (README "Risk control").
        from quanyi.risk import ruleset as risk_ruleset

        await risk_ruleset.install_default_rules(session=session)
    return True


async def _demo_merchant(ctx: ShopContext, session) -> None:  # type: ignore[no-untyped-def]
    from quanyi.merchants import service as merchants_service
    from quanyi.merchants.schemas import MerchantCreate

    m = DEMO_MERCHANT
    merchant = await merchants_service.create_merchant(session=session, data=MerchantCreate(
        code=m["code"], name=m["name"], description=m["description"], commission_bps=m["commission_bps"]))
    category = await session.scalar(select(Category).where(Category.slug == m["category"]))
    product = await catalog_service.create_product(session=session, merchant_id=merchant.id, data=ProductCreate(
        category_id=category.id, slug=m["slug"], name=m["name_product"], description=m["description"],
        redemption_guide=GAME_GUIDE, cover_image_url="/static/covers/game.svg", sort_order=10,
        skus=[SkuCreate(code=code, name=name, face_value_cents=face, price_cents=price, max_quantity=5, sort_order=i)
              for i, (code, name, face, price, _count) in enumerate(m["skus"])]))
    for sku, (*_, count) in zip(product.skus, m["skus"], strict=True):
        await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=sku,
                                                 text=_key_file(count, lambda: _card_pair("MO")),
                                                 source_name="演示数据（自动生成）", imported_by="demo")


DEMO_OWNER = "owner"


async def ensure_demo_owner(ctx: ShopContext, login_file: Path) -> tuple[str, str | None]:
    """The demo shop's console login: staff member "owner" (role owner) with a random password, written once to
    `login_file` (mode 600). Returns (username, password) when it was just created, (username, None) if it
    already existed (the password is in the file)."""
    from quanyi.staff import service as staff_service

    async with ctx.db.transaction() as session:
        if any(user.username == DEMO_OWNER for user in await staff_service.list_staff(session=session)):
            return DEMO_OWNER, None
        password = "-".join(_code(1, 5).lower() for _ in range(3))
        await staff_service.create_staff(session=session, username=DEMO_OWNER, password=password, roles=["owner"])
    login_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"console: /console\nusername: {DEMO_OWNER}\npassword: {password}\n")
    return DEMO_OWNER, password
