"""Card-key import benchmark: 100,000 keys into one SKU through `inventory.service.import_card_keys`
(parse, dedupe by fingerprint, encrypt, insert, commit) on a fresh migrated database, then the same file
again (every line a duplicate, nothing added).

    python bench/import_keys.py                        # SQLite file, 100,000 "ABCD-EFGH-JKLM-NPQR" codes
    python bench/import_keys.py --pg --format pair     # PostgreSQL, "card_no,password" lines
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from benchlib import DEFAULT_PG_URL, FreshDatabase, human_bytes, make_settings, resolve_database_url, secrets_env, table
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.context import ShopContext, build_context
from quanyi.inventory import service as inventory_service
from quanyi.inventory.masking import remember_codes
from quanyi.inventory.models import CardKey
from quanyi.inventory.parsing import parse_card_keys
from quanyi.inventory.schemas import ImportReport
from quanyi.migrate import upgrade
from quanyi.shoptime import shop_zone

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
FORMATS = {
    "code": "one code per line, 4x4 groups (ABCD-EFGH-JKLM-NPQR)",
    "pair": "card_no,password lines under a header (16 digits, 16 alphanumerics)",
}


def import_file(count: int, fmt: str) -> str:
    """`count` distinct, realistic card keys as the text of an import file."""
    rng = random.Random(secrets.randbits(64))
    lines: set[str] = set()
    while len(lines) < count:
        if fmt == "code":
            lines.add("-".join("".join(rng.choices(_ALNUM, k=4)) for _ in range(4)))
        else:
            lines.add(f"{rng.randrange(10**15, 10**16)},{''.join(rng.choices(_ALNUM, k=16))}")
    header = ["card_no,password"] if fmt == "pair" else []
    return "\n".join(header + sorted(lines, key=lambda _: rng.random())) + "\n"


@dataclass
class Timed:
    seconds: float = 0.0
    report: ImportReport | None = None
    chunks: list[float] = field(default_factory=list)  # perf_counter() after each chunk was inserted
    inserted_at: float = 0.0
    started_at: float = 0.0
    cpu: float = 0.0  # process CPU (user + system, every thread) the import took


async def create_sku(ctx: ShopContext) -> int:
    async with ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(slug="bench",
                                                                                            name="Bench"))
        product = await catalog_service.create_product(session=session, data=ProductCreate(
            category_id=category.id, slug="bench-gift-card", name="Bench Gift Card",
            skus=[SkuCreate(code="BENCH-100", name="100 CNY", price_cents=9500)]))
        return product.skus[0].id


async def timed_import(ctx: ShopContext, sku_id: int, body: str) -> Timed:
    """One import in its own transaction, timed from the call to after the commit. A file with nothing
    new raises NothingImported, whose report says what was found."""
    timed = Timed()
    timed.started_at = time.perf_counter()
    cpu = time.process_time()
    try:
        async with ctx.db.transaction() as session:
            sku = await catalog_service.get_sku(session=session, sku_id=sku_id)
            timed.report = await inventory_service.import_card_keys(
                session=session, cipher=ctx.cipher, sku=sku, text=body, source_name="bench.txt",
                imported_by="bench", progress=lambda _done, _total: timed.chunks.append(time.perf_counter()),
            )
            timed.inserted_at = time.perf_counter()
    except inventory_service.NothingImported as exc:
        timed.report = exc.context["report"]  # type: ignore[assignment]
    timed.seconds = time.perf_counter() - timed.started_at
    timed.cpu = time.process_time() - cpu
    return timed


def cpu_components(ctx: ShopContext, body: str) -> list[tuple[str, float]]:
    """The CPU work of an import measured on its own, outside any transaction: process CPU seconds (this work
    runs in one thread), so a loaded machine slows the wall clock but not these."""
    started = time.process_time()
    parsed = parse_card_keys(body, zone=shop_zone(ctx.settings.shop_timezone))
    parse = time.process_time() - started
    started = time.process_time()
    fingerprints = [ctx.cipher.fingerprint(key.secret) for key in parsed.keys]
    fingerprint = time.process_time() - started
    started = time.process_time()
    for key, fp in zip(parsed.keys, fingerprints, strict=True):
        ctx.cipher.encrypt(key.secret, fingerprint=fp)
    encrypt = time.process_time() - started
    started = time.process_time()
    remember_codes(key.secret for key in parsed.keys)
    masking = time.process_time() - started
    return [("parse + normalize lines", parse), ("fingerprint (HMAC-SHA256)", fingerprint),
            ("encrypt (AES-256-GCM)", encrypt), ("log-masking registry (remember_codes)", masking)]


async def database_size(ctx: ShopContext, db: FreshDatabase) -> tuple[int, str]:
    """Card-key rows, and what the database takes on disk."""
    async with ctx.db.read_session() as session:
        rows = int(await session.scalar(select(func.count()).select_from(CardKey)) or 0)
        if db.backend == "sqlite":
            files = db.sqlite_files()
            parts = " + ".join(f"{name} {human_bytes(size)}" for name, size in files.items())
            return rows, f"{human_bytes(sum(files.values()))} on disk ({parts})"
        total = await session.scalar(text("SELECT pg_database_size(current_database())"))
        keys = await session.scalar(text("SELECT pg_total_relation_size('inventory_card_key')"))
    return rows, f"{human_bytes(total)} (pg_database_size), inventory_card_key {human_bytes(keys)} with indexes"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def outcome(report: ImportReport | None) -> str:
    if report is None:
        return "no report"
    return f"added {report.added}, duplicates {report.duplicates}, invalid {report.invalid}"


async def run(args: argparse.Namespace, db: FreshDatabase) -> int:
    ctx = build_context(make_settings(db.url, secrets_env()))
    try:
        sku_id = await create_sku(ctx)
        started = time.perf_counter()
        body = import_file(args.count, args.format)
        generated = time.perf_counter() - started
        print(f"importing {args.count} keys ...", file=sys.stderr)
        first = await timed_import(ctx, sku_id, body)
        print("importing the same file again ...", file=sys.stderr)
        again = await timed_import(ctx, sku_id, body)
        components = cpu_components(ctx, body)
        stored, size = await database_size(ctx, db)
    finally:
        await ctx.close()

    n = args.count
    rows: list[list[object]] = [["first import: parse+dedupe+encrypt+insert+commit", f"{first.seconds:.2f}",
                                 rate(n, first.seconds), outcome(first.report)],
                                ["  process CPU of it (user + system, every thread)", f"{first.cpu:.2f}",
                                 rate(n, first.cpu), ""]]
    if first.chunks:
        rows += [
            ["  until the first chunk of 2,000 is inserted", f"{first.chunks[0] - first.started_at:.2f}", "", ""],
            ["  remaining chunks (encrypt + insert)", f"{first.chunks[-1] - first.chunks[0]:.2f}", "", ""],
            ["  commit", f"{first.seconds - (first.inserted_at - first.started_at):.2f}", "", ""],
        ]
    rows.append(["re-import, all duplicates (parse+dedupe)", f"{again.seconds:.2f}", rate(n, again.seconds),
                 outcome(again.report)])
    rows += [[f"cpu only: {name}", f"{seconds:.2f}", rate(n, seconds), ""] for name, seconds in components]
    rows.append(["  (cpu only rows: process CPU seconds)", "", "", ""])

    print()
    print("quanyi card-key import benchmark (inventory.service.import_card_keys, one transaction each)")
    print(f"backend      {db.describe()}")
    print(f"keys         {n} ({args.format}: {FORMATS[args.format]})")
    print(f"file         {human_bytes(len(body.encode()))}, generated in {generated:.2f} s (not timed)")
    print()
    print(table(["step", "seconds", "keys/s", "result"], rows, left=(0, 3)))
    print()
    print(f"database     {size}; {stored} card-key rows")

    problems = []
    if first.report is None or first.report.added != n or first.report.duplicates or first.report.invalid:
        problems.append(f"first import should add {n}: {outcome(first.report)}")
    if again.report is None or again.report.added or again.report.duplicates != n:
        problems.append(f"re-import should find {n} duplicates and add 0: {outcome(again.report)}")
    if stored != n:
        problems.append(f"the database should hold {n} card keys, not {stored}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    return 1 if problems else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="card keys in the file (default 100000)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="code",
                        help="code: one code per line; pair: card_no,password lines (default code)")
    parser.add_argument("--pg", action="store_true", help=f"fresh PostgreSQL database on {DEFAULT_PG_URL}")
    parser.add_argument("--database-url", help="PostgreSQL server to create the fresh database on")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / database afterwards")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    # SIGTERM behaves like Ctrl-C (asyncio cancels the run cleanly), so the database is always dropped.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: os.kill(os.getpid(), signal.SIGINT))
    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as db:
        print(f"migrating {db.describe()} in {db.tmp} ...", file=sys.stderr)
        upgrade(db.url)
        return asyncio.run(run(args, db))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; temp files and database removed", file=sys.stderr)
        sys.exit(130)
