"""`quanyi refunds` and `quanyi reconcile` as an operator runs them (real subprocesses) while the
gateway is unreachable: the refund is recorded and left for the retry loop, the report says what it
could not check, and both say so plainly; a refused refund is withdrawn or retried from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

from sqlalchemy import select

from quanyi.db import utcnow
from quanyi.refunds.models import Refund
from refund_helpers import refund_pending_order


def _quanyi(shop, cwd, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    s = shop.ctx.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    env.update({
        "COLUMNS": "250", "NO_COLOR": "1", "QUANYI_DATABASE_URL": s.database_url,
        "QUANYI_ADMIN_TOKEN": s.admin_token.get_secret_value(), "QUANYI_APP_SECRET": s.app_secret.get_secret_value(),
        "QUANYI_CARD_KEYS": s.card_keys.get_secret_value(), "QUANYI_CARD_KEY_ACTIVE_ID": s.card_key_active_id,
        "QUANYI_CARD_KEY_HASH_KEY": s.card_key_hash_key.get_secret_value(),
        "QUANYI_SANDBOX_SECRET": s.sandbox_secret.get_secret_value(),
        "QUANYI_SANDBOX_ENABLED": "true",
        "QUANYI_SANDBOX_API_URL": "http://127.0.0.1:9",  # nothing listens there: the gateway is down
    })
    return subprocess.run([sys.executable, "-m", "quanyi.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


async def test_refund_and_reconcile_from_the_command_line(shop, app, stocked_sku, tmp_path):
    order = await refund_pending_order(shop, stocked_sku)

    bad = _quanyi(shop, tmp_path, "refunds", "create", order["order_no"], "--reason", "x", "--amount", "1.234")
    assert bad.returncode == 1 and "invalid_refund" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    both = _quanyi(shop, tmp_path, "refunds", "create", order["order_no"], "--reason", "x", "--amount", "1",
                   "--quantity", "1")
    assert both.returncode == 2

    made = _quanyi(shop, tmp_path, "refunds", "create", order["order_no"], "--reason", "sold out", "--amount", "5.00")
    assert made.returncode == 0, made.stderr
    assert "¥5.00" in made.stdout and "requested" in made.stdout and "ConnectError" in made.stdout
    refund = await shop.scalar(select(Refund))
    assert (refund.status, refund.amount_cents, refund.requested_by) == ("requested", 500, "cli")

    listed = _quanyi(shop, tmp_path, "refunds", "list", "--status", "requested")
    assert listed.returncode == 0 and refund.refund_no in listed.stdout
    wrong = _quanyi(shop, tmp_path, "refunds", "list", "--status", "refused")
    assert wrong.returncode == 2 and "use requested, processing, succeeded, failed, withdrawn" in wrong.stderr

    day = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    report = _quanyi(shop, tmp_path, "reconcile", "--date", day, "--gateway", "sandbox", "--csv", "out.csv")
    assert report.returncode == 1, report.stderr  # unchecked lines need attention
    assert "1 payments and 1 refunds checked" in report.stdout
    with (tmp_path / "out.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["kind"] for row in rows] == ["unchecked", "unchecked"]
    assert rows[1]["refund_no"] == refund.refund_no

    junk = _quanyi(shop, tmp_path, "reconcile", "--date", "25/11/2026")
    assert junk.returncode == 2 and "YYYY-MM-DD" in junk.stderr
    future = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    later = _quanyi(shop, tmp_path, "reconcile", "--date", future)
    assert later.returncode == 1 and "invalid_reconciliation_day" in later.stderr


async def test_a_refused_refund_is_retried_or_withdrawn_from_the_command_line(shop, app, stocked_sku, tmp_path):
    from quanyi.payments.gateway import RefundRequest, RefundResult
    from quanyi.payments.sandbox.gateway import SandboxGateway
    from quanyi.staff.models import StaffAuditEntry
    from refund_helpers import ask_refund, delivered_order

    class Refusing(SandboxGateway):
        async def refund(self, request: RefundRequest) -> RefundResult:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")

    order = await delivered_order(shop, stocked_sku, quantity=2)
    shop.ctx.gateways.register(Refusing(secret=shop.sandbox_secret, http=shop.ctx.http,
                                        api_base_url="http://127.0.0.1:8000"))
    first = (await ask_refund(shop, order, quantity=1)).json()
    assert first["status"] == "failed"

    blank = _quanyi(shop, tmp_path, "refunds", "withdraw", first["refund_no"], "--reason", " ")
    assert blank.returncode == 2
    withdrawn = _quanyi(shop, tmp_path, "refunds", "withdraw", first["refund_no"], "--reason", "buyer keeps it")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert f"Refund {first['refund_no']} withdrawn: 1 card keys back to the buyer" in withdrawn.stdout
    again = _quanyi(shop, tmp_path, "refunds", "withdraw", first["refund_no"], "--reason", "again")
    assert again.returncode == 1 and "illegal_refund_transition" in again.stderr and "Traceback" not in again.stderr
    second = (await ask_refund(shop, order, quantity=1)).json()  # only once the first is settled
    assert second["status"] == "failed"

    retried = _quanyi(shop, tmp_path, "refunds", "retry", second["refund_no"])  # its gateway is down there
    assert retried.returncode == 0, retried.stderr
    assert "requested" in retried.stdout and "ConnectError" in retried.stdout
    async with shop.ctx.db.read_session() as session:
        statuses = dict((await session.execute(select(Refund.refund_no, Refund.status))).all())
    assert statuses == {first["refund_no"]: "withdrawn", second["refund_no"]: "requested"}
    assert (await shop.get_order(order))["delivered_keys"] == 1  # one back to the buyer, one on its way to a refund
    async with shop.ctx.db.read_session() as session:
        actions = (await session.execute(select(StaffAuditEntry.actor, StaffAuditEntry.action)
                                         .order_by(StaffAuditEntry.id))).all()
    assert [tuple(a) for a in actions] == [("cli", "refund_withdrawn"), ("cli", "refund_retried")]
