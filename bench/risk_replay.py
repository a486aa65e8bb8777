"""Risk replay: a labelled synthetic traffic mix, replayed through the real HTTP app with the default rule
set, scored per attack type.

Traffic (fixed seed, three simulated days): normal buyers (some behind shared office/campus addresses, a
few buying at night, some abandoning payment) and four scripted attacks: card testing (bursts of tiny
orders), single-IP bulk buying, scalper bots (a proxy pool, a fresh e-mail per order, no cookies), and
night-time bursts from stolen accounts that had bought normally before.

Every checkout goes through the app in-process over ASGI (`POST /api/orders` with the buyer's address as
the client address), on a real fresh database, with the default rules
(`quanyi risk defaults`) and sandbox payments (start payment + the gateway's signed notification). Simulated
time runs on the risk clock (`ctx.risk.clock`); everything else is real. A normal buyer asked for a code
reads it from the outbox and retries, as a person would; attackers do not get past a challenge.

Devices: 80 % of normal buyers browse with cookies: before their first order they open the product page,
keep the signed device cookie the shop sets and send it with every later order of theirs (the rest send
no device at all). Attackers keep to what scripts do: an `X-Device-Id` header of their choosing, or nothing;
they never hold a shop-issued cookie.

"Stopped" = refused, challenged, rate limited (429) or held for review. Per attack type: recall = stopped
attack checkouts / all its checkouts; precision = stopped of that type / (stopped of that type + stopped
normal checkouts), i.e. the precision of the rule set if that attack were the only one.

    python bench/risk_replay.py                 # SQLite, seed 7
    python bench/risk_replay.py --pg --seed 11 --scale 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from benchlib import FreshDatabase, make_settings, resolve_database_url, secrets_env, table
from quanyi.app import create_app
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.context import ShopContext, build_context
from quanyi.inventory import service as inventory_service
from quanyi.migrate import upgrade
from quanyi.notifications.models import Kind, OutboxMessage
from quanyi.payments.sandbox.signing import sign_params
from quanyi.risk import ruleset
from quanyi.risk.device import DEVICE_COOKIE
from quanyi.risk.models import RiskDecisionLog

SHOP_TZ = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2026, 11, 30, 0, 0, tzinfo=SHOP_TZ)
ATTACKS = ("card_testing", "single_ip_bulk", "scalper_bots", "night_stolen_account")
# (code, price in cents): a 3-yuan top-up card, two video memberships, a 300-yuan gift card.
SKUS = [("TOPUP-3", 300), ("VIP-1M", 1980), ("VIP-12M", 19800), ("GIFT-300", 30000)]


@dataclass(order=True)
class Attempt:
    at: dt.datetime
    seq: int
    label: str = field(compare=False)
    ip: str = field(compare=False)
    device: str | None = field(compare=False)
    contact: str = field(compare=False)
    sku: str = field(compare=False)
    quantity: int = field(compare=False, default=1)
    pays: bool = field(compare=False, default=True)
    # A browser that keeps the shop's device cookie (`device` then names the browser); else `device` is
    # sent as the X-Device-Id header.
    keeps_cookie: bool = field(compare=False, default=False)


# ---------------------------------------------------------------- traffic

def _ip(rng: random.Random, prefix: str = "") -> str:
    return prefix + ".".join(str(rng.randint(1, 254)) for _ in range(4 - prefix.count(".")))


def _device(rng: random.Random) -> str:
    return "d" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20))


def _contact(rng: random.Random, n: int) -> str:
    if rng.random() < 0.3:
        return f"1{rng.choice('3589')}{rng.randint(100_000_000, 999_999_999)}"
    return f"user{n}.{rng.randint(10, 99)}@{rng.choice(['qq.com', '163.com', 'gmail.com', 'outlook.com'])}"


def _daytime(rng: random.Random, day: int) -> dt.datetime:
    # Buyers shop mostly 09:00-24:00; about 3 % between 01:00 and 06:00.
    hour = rng.choice(range(1, 6)) if rng.random() < 0.03 else rng.choice(list(range(9, 24)) + [0, 6, 7, 8])
    return START + dt.timedelta(days=day, hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))


def generate(seed: int, scale: float) -> tuple[list[Attempt], list[str]]:
    rng = random.Random(seed)
    attempts: list[Attempt] = []
    seq = iter(range(10**9))
    shared_ips = [_ip(rng) for _ in range(12)]  # offices, campuses, mobile carrier NAT
    regulars: list[tuple[str, str, str | None]] = []
    for n in range(int(600 * scale)):
        contact = _contact(rng, n)
        ip = rng.choice(shared_ips) if rng.random() < 0.25 else _ip(rng)
        device = _device(rng) if rng.random() < 0.8 else None
        visits = rng.choices([1, 2, 3, 4], weights=[55, 25, 12, 8])[0]
        favourite = rng.choices([s for s, _ in SKUS], weights=[15, 50, 25, 10])[0]
        for _ in range(visits):
            when = _daytime(rng, rng.randint(0, 2))
            sku = favourite if rng.random() < 0.7 else rng.choice([s for s, _ in SKUS])
            quantity = rng.choices([1, 2, 3, 5], weights=[85, 9, 4, 2])[0]
            attempts.append(Attempt(when, next(seq), "normal", ip, device, contact, sku, quantity,
                                    pays=rng.random() < 0.92, keeps_cookie=device is not None))
        if visits >= 2:
            regulars.append((contact, ip, device))

    for _ in range(int(8 * scale)):  # card testing: tiny orders in a burst, a few throwaway accounts
        ip, device = _ip(rng), (_device(rng) if rng.random() < 0.5 else None)
        contacts = [f"t{secrets.token_hex(3)}@{rng.choice(['gmail.com', 'outlook.com'])}" for _ in range(3)]
        start = _daytime(rng, rng.randint(0, 2))
        for i in range(rng.randint(15, 30)):
            attempts.append(Attempt(start + dt.timedelta(seconds=40 * i + rng.randint(0, 30)), next(seq),
                                    "card_testing", ip, device, rng.choice(contacts), "TOPUP-3", 1,
                                    pays=rng.random() < 0.3))
    for _ in range(int(5 * scale)):  # one address buying in bulk for resale
        ip, device = _ip(rng), _device(rng)
        contacts = [_contact(rng, 90_000 + rng.randint(0, 9999)) for _ in range(2)]
        start = _daytime(rng, rng.randint(0, 2))
        for i in range(rng.randint(20, 40)):
            attempts.append(Attempt(start + dt.timedelta(seconds=90 * i + rng.randint(0, 60)), next(seq),
                                    "single_ip_bulk", ip, device, rng.choice(contacts),
                                    rng.choice(["VIP-1M", "VIP-12M"]), rng.choice([1, 2, 3])))
    for _ in range(int(4 * scale)):  # scalper bots in a flash sale: proxy pool, fresh e-mail, no cookies
        pool = [_ip(rng) for _ in range(6)]
        start = START + dt.timedelta(days=rng.randint(0, 2), hours=20)
        for i in range(rng.randint(30, 50)):
            attempts.append(Attempt(start + dt.timedelta(seconds=20 * i + rng.randint(0, 15)), next(seq),
                                    "scalper_bots", rng.choice(pool), None,
                                    f"s{secrets.token_hex(4)}@{rng.choice(['gmail.com', '163.com', 'qq.com'])}",
                                    "VIP-12M", 1))
    for contact, _home_ip, _home_device in rng.sample(regulars, min(len(regulars), int(10 * scale))):
        ip, device = _ip(rng), _device(rng)  # the thief's own network and phone
        start = START + dt.timedelta(days=3, hours=rng.randint(1, 4), minutes=rng.randint(0, 59))
        for i in range(rng.randint(4, 8)):
            attempts.append(Attempt(start + dt.timedelta(minutes=3 * i + rng.randint(0, 2)), next(seq),
                                    "night_stolen_account", ip, device, contact,
                                    rng.choice(["GIFT-300", "VIP-12M"]), 1))
    return sorted(attempts), [c for c, _, _ in regulars]


# ---------------------------------------------------------------- replay

def _slug(code: str) -> str:
    return code.lower()


def _notification(secret: str, payment: dict[str, object]) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    params = {"out_trade_no": str(payment["payment_no"]), "trade_no": "SBRISK" + secrets.token_hex(8).upper(),
              "total_amount_cents": str(payment["amount_cents"]), "currency": str(payment["currency"]),
              "trade_status": "SUCCESS", "paid_at": now.isoformat(), "timestamp": str(int(now.timestamp())),
              "nonce": secrets.token_hex(12), "sign_type": "HMAC-SHA256"}
    params["sign"] = sign_params(params, secret)
    return params


async def _stock(ctx: ShopContext, per_sku: int) -> dict[str, int]:
    ids = {}
    async with ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(slug="r", name="R"))
        for code, price in SKUS:
            product = await catalog_service.create_product(session=session, data=ProductCreate(
                category_id=category.id, slug=_slug(code), name=code,
                skus=[SkuCreate(code=code, name=code, price_cents=price, max_quantity=10)]))
            sku = product.skus[0]
            keys = "\n".join(f"{code}-{secrets.token_hex(8)}" for _ in range(per_sku))
            await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=sku, text=keys,
                                                     source_name="risk-replay")
            ids[code] = sku.id
        await ruleset.install_default_rules(session=session)
    return ids


async def _latest_code(ctx: ShopContext, contact: str) -> str | None:
    async with ctx.db.read_session() as session:
        message = await session.scalar(select(OutboxMessage).where(
            OutboxMessage.kind == Kind.VERIFICATION_CODE, OutboxMessage.recipient == contact)
            .order_by(OutboxMessage.id.desc()).limit(1))
    return str(message.payload["code"]) if message else None


class Replay:
    def __init__(self, ctx: ShopContext, app: object, sku_ids: dict[str, int]) -> None:
        self.ctx, self.app, self.sku_ids = ctx, app, sku_ids
        self.sim_now = START
        ctx.risk.clock = lambda: self.sim_now
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.device_cookies: dict[str, str] = {}  # browser -> the device cookie the shop gave it
        self.reasons: dict[str, Counter[str]] = defaultdict(Counter)  # label -> reason codes that stopped it

    def client(self, ip: str) -> httpx.AsyncClient:
        if ip not in self.clients:
            transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))  # type: ignore[arg-type]
            # One client per address, shared by the buyers behind it: it keeps no cookies (a buyer's device
            # cookie is sent by hand), else buyers behind one address would share a device.
            no_jar = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
            self.clients[ip] = httpx.AsyncClient(transport=transport, base_url="http://shop", timeout=30,
                                                 cookies=no_jar)
        return self.clients[ip]

    async def _device_headers(self, a: Attempt, http: httpx.AsyncClient) -> dict[str, str]:
        if a.device is None:
            return {}
        if not a.keeps_cookie:
            return {"X-Device-Id": a.device}
        if a.device not in self.device_cookies:  # first visit: the product page hands out the cookie
            page = await http.get(f"/p/{_slug(a.sku)}")
            cookie = page.cookies.get(DEVICE_COOKIE)
            if page.status_code != 200 or not cookie:
                raise RuntimeError(f"product page gave no device cookie ({page.status_code})")
            self.device_cookies[a.device] = cookie
        return {"Cookie": f"{DEVICE_COOKIE}={self.device_cookies[a.device]}"}

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()

    async def attempt(self, a: Attempt) -> str:
        outcome = await self._attempt(a)
        if outcome in ("challenge", "deny", "review"):
            async with self.ctx.db.read_session() as session:
                last = await session.scalar(select(RiskDecisionLog).order_by(RiskDecisionLog.id.desc()).limit(1))
            if last is not None:
                self.reasons[a.label].update({h["reason_code"] for h in last.rules_hit} or {"score"})
        return outcome

    async def _attempt(self, a: Attempt) -> str:
        """Run one checkout (and payment); returns allowed / challenge / deny / limited / review / error."""
        self.sim_now = a.at.astimezone(dt.UTC)
        http = self.client(a.ip)
        headers = await self._device_headers(a, http)
        body = {"sku_id": self.sku_ids[a.sku], "quantity": a.quantity, "contact": a.contact}
        response = await http.post("/api/orders", json=body, headers=headers)
        outcome = "allowed"
        if response.status_code == 403 and response.json().get("code") == "verification_required":
            outcome = "challenge"
            if a.label == "normal":  # a person reads the code and tries again
                code = await _latest_code(self.ctx, a.contact)
                response = await http.post("/api/orders", headers=headers, json={
                    **body, "challenge_id": response.json()["challenge_id"], "verification_code": code})
        if response.status_code == 429:
            return "limited"
        if response.status_code == 403:
            return "deny" if response.json().get("code") == "order_refused" else "challenge"
        if response.status_code != 201:
            return "error:" + response.json().get("code", str(response.status_code))
        if not a.pays:
            return outcome
        order = response.json()
        auth = {"X-Order-Token": order["access_token"]}
        payment = (await http.post(f"/api/orders/{order['order_no']}/payments", headers=auth,
                                   json={"gateway": "sandbox"})).json()
        notify = await http.post("/payments/sandbox/notify",
                                 data=_notification(self.ctx.settings.sandbox_secret.get_secret_value(), payment))
        if notify.status_code != 200:
            return "error:notify"
        status = (await http.get(f"/api/orders/{order['order_no']}", headers=auth)).json()["status"]
        return "review" if status == "under_review" else outcome


def report(results: list[tuple[Attempt, str]]) -> tuple[str, bool]:
    by_label: dict[str, Counter[str]] = defaultdict(Counter)
    for a, outcome in results:
        by_label[a.label][outcome] += 1
    stopped = {label: sum(n for o, n in c.items() if o in ("challenge", "deny", "limited", "review"))
               for label, c in by_label.items()}
    normal_total = sum(by_label["normal"].values())
    normal_hit = stopped.get("normal", 0)
    rows = []
    for label in ("normal", *ATTACKS):
        c = by_label.get(label, Counter())
        total = sum(c.values())
        if label == "normal":
            rows.append([label, total, c["allowed"], c["challenge"], c["review"], c["deny"], c["limited"],
                         "", "", f"{100 * normal_hit / max(total, 1):.2f} % affected"])
            continue
        s = stopped.get(label, 0)
        precision = s / max(s + normal_hit, 1)
        rows.append([label, total, c["allowed"], c["challenge"], c["review"], c["deny"], c["limited"],
                     f"{100 * precision:.1f} %", f"{100 * s / max(total, 1):.1f} %", ""])
    attack_total = sum(sum(by_label[a].values()) for a in ATTACKS)
    attack_stopped = sum(stopped.get(a, 0) for a in ATTACKS)
    errors = Counter(o for _, o in results if o.startswith("error"))
    lines = [table(["traffic", "checkouts", "allowed", "challenge", "review", "deny", "429", "precision", "recall",
                    "normal"], rows, left=(0,)),
             "",
             f"attack checkouts stopped: {attack_stopped}/{attack_total} = {100 * attack_stopped / attack_total:.1f} %"
             f"  (target >= 90 %)",
             f"normal checkouts affected: {normal_hit}/{normal_total} = {100 * normal_hit / normal_total:.2f} %"
             f"  (target <= 1 %)",
             f"overall precision: {100 * attack_stopped / max(attack_stopped + normal_hit, 1):.1f} %"]
    if errors:
        lines.append(f"errors: {dict(errors)}")
    ok = attack_stopped / attack_total >= 0.9 and normal_hit / normal_total <= 0.01 and not errors
    return "\n".join(lines), ok


async def run(database_url: str, env: dict[str, str], seed: int, scale: float) -> bool:
    attempts, _ = generate(seed, scale)
    settings = make_settings(database_url, env, smtp_host="127.0.0.1", smtp_from="shop@example.com",
                             sms_access_key_id="replay", sms_access_key_secret="replay-secret",
                             sms_sign_name="replay", sms_template_order_delivered="SMS_1",
                             sms_template_verification_code="SMS_2")
    ctx = build_context(settings)
    try:
        sku_ids = await _stock(ctx, per_sku=int(1500 * max(scale, 1)))
        app = create_app(ctx=ctx)
        replay = Replay(ctx, app, sku_ids)
        labels = Counter(a.label for a in attempts)
        print(f"seed {seed}: {len(attempts)} checkouts ({dict(labels)})", file=sys.stderr)
        started, results = time.perf_counter(), []
        for i, a in enumerate(attempts):
            results.append((a, await replay.attempt(a)))
            if (i + 1) % 250 == 0:
                print(f"  {i + 1}/{len(attempts)} replayed", file=sys.stderr)
        await replay.close()
        text, ok = report(results)
        print(f"replayed {len(attempts)} checkouts in {time.perf_counter() - started:.0f} s\n")
        print(text)
        print("\nreason codes of stopped checkouts:")
        for label, reasons in replay.reasons.items():
            print(f"  {label}: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common(6)))
        return ok
    finally:
        await ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of buyers and attackers")
    parser.add_argument("--pg", action="store_true", help="fresh database on the local PostgreSQL")
    parser.add_argument("--database-url", help="PostgreSQL server URL to create the database on")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as db:
        upgrade(db.url)
        ok = asyncio.run(run(db.url, secrets_env(), args.seed, args.scale))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
