"""Streamed import benchmark (issue 11 item 6): a 1,000,000-line card-key file uploaded to a real `quanyi serve`
process (`POST /api/admin/imports`, the file as the body) and imported by its background job, while a buyer keeps
checking out another SKU of the same shop. Prints the upload and import times, the server's memory (resident
before, and its peak: VmHWM) and checkout latency before and during the import.

    python bench/import_job.py                     # SQLite file, 1,000,000 "card_no,password" lines
    python bench/import_job.py --lines 200000 --pg # PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import signal
import sys
import time
from pathlib import Path

import httpx

from benchlib import (
    DEFAULT_PG_URL,
    FreshDatabase,
    Processes,
    Server,
    buyer_headers,
    free_port,
    human_bytes,
    make_settings,
    percentile,
    prepare_shop,
    resolve_database_url,
    table,
)
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.context import build_context


def write_file(path: Path, lines: int) -> int:
    """`lines` distinct card_no,password lines under a header, written as they are made (not held)."""
    rng = random.Random(secrets.randbits(64))
    start = rng.randrange(10**12)
    with path.open("w") as handle:
        handle.write("card_no,password\n")
        for n in range(lines):
            handle.write(f"{6200_0000_0000_0000 + start + n},{rng.getrandbits(64):016x}\n")
    return path.stat().st_size


async def import_sku(database_url: str, shop_secrets: dict[str, str]) -> int:
    ctx = build_context(make_settings(database_url, shop_secrets))
    try:
        async with ctx.db.transaction() as session:
            category = await catalog_service.create_category(session=session, data=CategoryCreate(
                slug="bench-import", name="Bench import"))
            product = await catalog_service.create_product(session=session, data=ProductCreate(
                category_id=category.id, slug="bench-import", name="Bench import",
                skus=[SkuCreate(code="BENCH-IMPORT", name="1M", price_cents=100)]))
            return product.skus[0].id
    finally:
        await ctx.close()


def memory(pid: int) -> tuple[int, int]:
    """Resident and peak resident bytes of a process (VmRSS, VmHWM)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (utime + stime of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def checkout(client: httpx.AsyncClient, n: int, sku_id: int) -> float:
    started = time.perf_counter()
    response = await client.post("/api/orders", headers=buyer_headers(n),
                                 json={"sku_id": sku_id, "quantity": 1, "contact": f"bench{n}@example.com"})
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"checkout {n}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


async def run(url: str, admin_token: str, pid: int, sell_sku: int, import_sku_id: int, path: Path,
              baseline_checkouts: int) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        n = 0
        baseline = []
        for _ in range(baseline_checkouts):
            n += 1
            baseline.append(await checkout(client, n, sell_sku))
        rss_before, _ = memory(pid)
        cpu_before = cpu_seconds(pid)

        async def chunks():  # type: ignore[no-untyped-def]
            with path.open("rb") as handle:  # noqa: ASYNC230 - 1 MiB reads from a local file
                while block := handle.read(1 << 20):
                    yield block

        phase = {"name": "upload"}
        during: dict[str, list[float]] = {"upload": [], "import": []}
        stop = asyncio.Event()

        async def buyer() -> None:  # one checkout every 0.2 s while the upload and the import run
            count = n
            while not stop.is_set():
                count += 1
                name = phase["name"]
                during[name].append(await checkout(client, count, sell_sku))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)

        buying = asyncio.create_task(buyer())
        try:
            started = time.perf_counter()
            answer = await client.post("/api/admin/imports", params={"sku_id": import_sku_id,
                                                                     "source_name": path.name},
                                       headers={**admin, "Content-Type": "text/plain"}, content=chunks())
            uploaded = time.perf_counter() - started
            phase["name"] = "import"
            if answer.status_code != 202:
                raise RuntimeError(f"upload: HTTP {answer.status_code} {answer.text[:300]}")
            job = answer.json()
            while job["status"] not in ("done", "failed"):
                await asyncio.sleep(0.5)
                job = (await client.get(f"/api/admin/imports/{job['id']}", headers=admin)).json()
            finished = time.perf_counter() - started
        finally:
            stop.set()
            await buying
        rss_after, peak = memory(pid)
        cpu = cpu_seconds(pid) - cpu_before
    return {"job": job, "uploaded": uploaded, "finished": finished, "baseline": baseline, "during": during,
            "rss_before": rss_before, "rss_after": rss_after, "peak": peak, "cpu": cpu}


def describe(latencies: list[float]) -> list[str]:
    if not latencies:
        return ["0", "-", "-", "-"]
    ms = sorted(x * 1000 for x in latencies)
    return [str(len(ms)), f"{percentile(ms, 50):.0f}", f"{percentile(ms, 95):.0f}", f"{ms[-1]:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help=f"fresh PostgreSQL database on {DEFAULT_PG_URL}")
    parser.add_argument("--database-url", help="PostgreSQL server to create the fresh database on")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: os.kill(os.getpid(), signal.SIGINT))
    load_before = os.getloadavg()
    with FreshDatabase(resolve_database_url(args.pg, args.database_url), keep=args.keep) as db:
        # One buyer checking out every 0.2 s (unpaid orders: stock held): the flood and held-stock limits are not
        # what this measures.
        shop = prepare_shop(db, keys=2000, extra_env=[f"QUANYI_IMPORT_SPOOL_DIR={db.tmp / 'spool'}",
                                                      "QUANYI_CHECKOUT_LIMIT_PER_IP=0",
                                                      "QUANYI_CHECKOUT_LIMIT_PER_DEVICE=0",
                                                      "QUANYI_HELD_UNITS_LIMIT_PER_IP=0",
                                                      "QUANYI_HELD_UNITS_LIMIT_PER_DEVICE=0"])
        target = asyncio.run(import_sku(db.url, shop.secrets))
        path = db.tmp / "keys.csv"
        print(f"writing {args.lines} lines ...", file=sys.stderr)
        size = write_file(path, args.lines)
        with Processes() as processes:
            server = processes.add(Server(shop.env, db.tmp, free_port(), 1))
            server.wait_healthy()
            print(f"server up at {server.url}; importing {human_bytes(size)} ...", file=sys.stderr)
            try:
                result = asyncio.run(run(server.url, shop.secrets["QUANYI_ADMIN_TOKEN"], server.process.pid,
                                         shop.sku_id, target, path, 20))
            except Exception:
                print(f"--- server log ({server.log_path}):\n{server.log_tail()}", file=sys.stderr)
                raise
    load_after = os.getloadavg()
    job = result["job"]
    imported = result["finished"] - result["uploaded"]
    print()
    print(f"quanyi streamed import (POST /api/admin/imports, background job, chunks of 2,000 lines) on {db.describe()}")
    print(f"file         {args.lines:,} lines, {human_bytes(size)}")
    print(f"machine      {os.cpu_count()} CPUs; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print()
    print(table(["step", "seconds", "lines/s"], [
        ["upload (streamed to the encrypted spool)", f"{result['uploaded']:.1f}", ""],
        ["import job after the upload", f"{imported:.1f}", f"{args.lines / imported:,.0f}"],
        ["upload + import", f"{result['finished']:.1f}", f"{args.lines / result['finished']:,.0f}"],
    ], left=(0,)))
    print()
    print(f"job          {job['status']}: {job['lines_read']:,} lines read, {job['added']:,} added, "
          f"{job['duplicates']} duplicates, {job['invalid']} invalid")
    print(f"server CPU   {result['cpu']:.1f} s (user + system) during upload + import, the checkouts' included")
    print(f"server RSS   {human_bytes(result['rss_before'])} before the upload, peak {human_bytes(result['peak'])} "
          f"(VmHWM, whole life of the process), {human_bytes(result['rss_after'])} after")
    print()
    print(table(["checkouts (POST /api/orders)", "count", "p50 ms", "p95 ms", "max ms"], [
        ["before the import", *describe(result["baseline"])],
        ["during the upload", *describe(result["during"]["upload"])],
        ["during the import job", *describe(result["during"]["import"])],
    ], left=(0,)))
    ok = job["status"] == "done" and job["added"] == args.lines
    if not ok:
        print("CHECK FAILED: the job should add every line")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
