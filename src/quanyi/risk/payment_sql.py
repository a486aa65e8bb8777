"""The payment stage in SQL (支付阶段规则的 SQL 形式): what `payment_stage.hold_at_payment` records and asks of a
paid order, as parts of the express lane's one statement on PostgreSQL (payments/express.py, `_PG_LOCK_AND_DELIVER`).

The statement names its locked row `found` (the order's columns, its stored checkout signals as `signals_ip` /
`signals_device`); these parts add, after it:

- `paid_events`: the counter events a confirmed payment leaves (`payment_stage.paid_events`, i.e.
  `rules.placed_events(..., "paid")` + `rules.payer_events`), cut to the counters' 200 characters;
- `rule_hits`: a row for each enabled payment- or delivery-stage rule that hits (`rules.rule_hits`, for the kinds
  `judge` takes), counting the payment's own `paid_events` as `hold_at_payment` does (it records them first).

The statement delivers only when `rule_hits` is empty: no rule hit, so the general way would decide "allow" and
record nothing but the paid events and the signals' paid mark, which the statement writes. When a rule hits it
writes nothing, and the general way evaluates every rule and records exactly what it records today (decision log,
review hold). A rule of any other kind (or a counted one with the counters in Redis) makes `judge` answer None:
the statement declines every order, as before this module. `tests/risk/test_payment_sql.py` checks both ways
against each other, just below and just above each default rule's threshold.

Counts are read in the statement's snapshot, as the general way reads them in its own: neither waits for another
payment of the same payer that has not committed yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quanyi.db import utcnow
from quanyi.risk.counters import DatabaseCounters
from quanyi.risk.engine import RiskRuntime, local_clock
from quanyi.risk.locks import payment_lock_key
from quanyi.risk.payment_stage import CountedLocks, counted_locks
from quanyi.risk.rules import AmountLimitParams, DistinctContactsParams, Stage, VelocityParams
from quanyi.risk.ruleset import CachedRule

__all__ = ["PAID_EVENTS", "PAYMENT_LOCK_KEYS", "RULE_HITS", "CTES", "Judged", "judge", "statement_params", "NO_RULES"]

# `payment_stage.paid_events` of the locked row: paid per ip / device / contact (member: the order), then the payer's
# order and contact (`rules.payer_events`); an empty value counts nothing. `n` keeps `record`'s order. The statement's
# insert leaves 1-3 out when the order's signals row counts the payment (`paid_risk_at`: payments/express.py,
# `paid_here`; risk.payment_stage.counts_paid_here).
PAID_EVENTS = """
paid_events AS (
    SELECT e.n, left(e.key, 200) AS key, left(e.member, 200) AS member
    FROM found, LATERAL (VALUES
        (1, 'paid:ip:' || COALESCE(found.signals_ip, found.created_ip), CAST(found.order_id AS varchar),
         COALESCE(found.signals_ip, found.created_ip)),
        (2, 'paid:device:' || COALESCE(found.signals_device, ''), CAST(found.order_id AS varchar),
         found.signals_device),
        (3, 'paid:contact:' || found.contact, CAST(found.order_id AS varchar), found.contact),
        (4, 'att:payer:' || CAST(:payer_hash AS varchar), CAST(found.order_id AS varchar),
         CAST(:payer_hash AS varchar)),
        (5, 'contacts:payer:' || CAST(:payer_hash AS varchar), found.contact,
         CASE WHEN COALESCE(found.contact, '') <> '' THEN CAST(:payer_hash AS varchar) END)
    ) AS e (n, key, member, value)
    WHERE COALESCE(e.value, '') <> '')"""

# The locks of what the payment's rules count that other payments change (`payment_stage.counted_locks`): its payer
# (`:lock_payer`), its contact (`:day_contact`), its SKU (`:day_sku`), as `payment_stage.lock_counted` names them.
PAYMENT_LOCK_KEYS = f"""
payment_locks AS (
    SELECT array_remove(ARRAY[
        CASE WHEN CAST(:lock_payer AS boolean)
             THEN '{payment_lock_key("payer", "")}' || CAST(:payer_hash AS varchar) END,
        CASE WHEN CAST(:day_contact AS boolean) AND COALESCE(found.contact, '') <> ''
             THEN '{payment_lock_key("contact", "")}' || found.contact END,
        CASE WHEN CAST(:day_sku AS boolean) THEN '{payment_lock_key("sku", "")}' || found.sku_id END],
        NULL) AS keys
    FROM found)"""  # noqa: S608 - constants (the keys' prefixes) only

# `rules.rule_hits` of the payment stage's signals (`payment_stage.payment_signals`: the stored checkout ip, else the
# order's; the stored device or none; the payer's keyed hash), one row per rule that hits:
# - velocity / distinct_contacts (`counted_keys`): distinct members of `<att|contacts>:<dimension>:<value>` in
#   (at - window, at], with the payment's own events (not in the table yet: `hold_at_payment` records them before
#   asking), more than the rule's maximum;
# - amount_limit (`amount_*`): this order's quantity and total, plus for a day scope what `CountingProbe.day_totals`
#   adds (orders of the shop day, paid or still payable, of the buyer and/or the SKU, this one aside), over a limit.
# The counter events (`seen_events`) and the day's orders (`day_orders`) are read by functions (migration
# 7c2e4b91d0a5) that first take `payment_locks` and then read in a snapshot of their own, newer than the statement's:
# a payment of the same payer (contact, SKU) that held the locks before is seen, committed. Each runs only when a
# rule asks what it reads. `:at` is read before the statement waits for the locks: a payment that read the clock
# after it but took the locks first recorded its events at a later time, still counted here (no upper bound), as the
# general way, which reads the clock once it holds the locks, counts them.
RULE_HITS = """
counted_keys AS (
    SELECT r.window_seconds, r.max_count, c.key FROM found,
        unnest(CAST(:counted_what AS text[]), CAST(:counted_dimension AS text[]),
               CAST(CAST(:counted_window AS text[]) AS double precision[]),
               CAST(CAST(:counted_max AS text[]) AS bigint[]))
            AS r (what, dimension, window_seconds, max_count),
        LATERAL (SELECT left(r.what || ':' || r.dimension || ':' || v.value, 200) AS key
                 FROM (SELECT CASE r.dimension WHEN 'ip' THEN COALESCE(found.signals_ip, found.created_ip)
                                               WHEN 'device' THEN found.signals_device
                                               WHEN 'contact' THEN found.contact
                                               WHEN 'payer' THEN CAST(:payer_hash AS varchar) END AS value) AS v
                 WHERE COALESCE(v.value, '') <> '') AS c),
seen_events AS MATERIALIZED (
    SELECT e.key, e.member, e.at
    FROM risk_events_after_locks((SELECT keys FROM payment_locks),
                                 (SELECT array_agg(DISTINCT key) FROM counted_keys),
                                 CAST(:at AS double precision) - (SELECT max(window_seconds) FROM counted_keys)) AS e
    WHERE EXISTS (SELECT 1 FROM counted_keys)),
day_orders AS MATERIALIZED (
    SELECT d.by, d.sku_id, d.quantity, d.amount_cents
    FROM found, risk_day_orders_after_locks((SELECT keys FROM payment_locks), CAST(:day_start AS double precision),
                                            CAST(:wall_now AS timestamptz),
                                            CASE WHEN CAST(:day_contact AS boolean) THEN found.contact END,
                                            CASE WHEN CAST(:day_sku AS boolean) THEN found.sku_id END,
                                            found.order_id) AS d
    WHERE CAST(:day_contact AS boolean) OR CAST(:day_sku AS boolean)),
rule_hits AS (
    SELECT 1 FROM counted_keys AS k
    WHERE (SELECT count(DISTINCT m.member) FROM (
               SELECT member FROM seen_events  -- no upper bound: see `RULE_HITS`
               WHERE key = k.key AND at > CAST(:at AS double precision) - k.window_seconds
               UNION ALL SELECT member FROM paid_events WHERE key = k.key) AS m) > k.max_count
    UNION ALL
    SELECT 1 FROM found,
        unnest(CAST(:amount_scope AS text[]), CAST(CAST(:amount_sku AS text[]) AS bigint[]),
               CAST(CAST(:amount_per_sku AS text[]) AS boolean[]),
               CAST(CAST(:amount_max_quantity AS text[]) AS bigint[]),
               CAST(CAST(:amount_max_cents AS text[]) AS bigint[]))
            AS r (scope, sku_id, per_sku, max_quantity, max_cents),
        LATERAL (SELECT COALESCE(r.sku_id, CASE WHEN r.per_sku OR r.scope = 'sku_day' THEN found.sku_id END)
                     AS one_sku) AS k,
        LATERAL (SELECT COALESCE(sum(d.quantity), 0) AS quantity, COALESCE(sum(d.amount_cents), 0) AS cents
                 FROM day_orders AS d
                 WHERE r.scope <> 'order' AND d.by = CASE r.scope WHEN 'buyer_day' THEN 'contact' ELSE 'sku' END
                     AND (k.one_sku IS NULL OR d.sku_id = k.one_sku)) AS day
    WHERE (r.sku_id IS NULL OR r.sku_id = found.sku_id)
        AND (found.quantity + day.quantity > r.max_quantity OR found.total_cents + day.cents > r.max_cents))"""

CTES = f"{PAID_EVENTS.lstrip()},{PAYMENT_LOCK_KEYS},{RULE_HITS},\n"  # comma-separated: a WITH list after `found`

_COUNTED = {"velocity": ("att", VelocityParams, ("ip", "device", "contact", "payer")),
            "distinct_contacts": ("contacts", DistinctContactsParams, ("ip", "device", "payer"))}


@dataclass(frozen=True, slots=True)
class Judged:
    """The payment- and delivery-stage rules as `RULE_HITS`'s parameters (`rules` of them), each a list of texts,
    and the locks they need (`PAYMENT_LOCK_KEYS`)."""

    rules: int
    params: dict[str, list[Any]]
    locks: CountedLocks = CountedLocks()


NO_RULES = Judged(0, {"counted_what": [], "counted_dimension": [], "counted_window": [], "counted_max": [],
                      "amount_scope": [], "amount_sku": [], "amount_per_sku": [], "amount_max_quantity": [],
                      "amount_max_cents": []})
_last: tuple[Sequence[CachedRule], bool, Judged | None] | None = None  # the process's copy of the rules changes rarely


def judge(rules: Sequence[CachedRule], runtime: RiskRuntime) -> Judged | None:
    """The enabled `rules` of the payment and delivery stages as `RULE_HITS` judges them, or None when one of them
    is of a kind it does not judge (or counted in Redis: the statement sees only the database)."""
    global _last
    in_database = isinstance(runtime.counters, DatabaseCounters)
    last = _last
    if last is not None and last[0] is rules and last[1] == in_database:
        return last[2]
    judged = _judge(rules, in_database)
    _last = (rules, in_database, judged)
    return judged


def _judge(rules: Sequence[CachedRule], in_database: bool) -> Judged | None:
    params: dict[str, list[Any]] = {name: [] for name in NO_RULES.params}
    count = 0
    for rule in rules:
        if Stage.PAYMENT.value not in rule.stages and Stage.DELIVERY.value not in rule.stages:
            continue
        count += 1
        if rule.kind in _COUNTED:
            what, model, dimensions = _COUNTED[rule.kind]
            counted = model.model_validate(rule.params)
            if not in_database or counted.dimension not in dimensions:
                return None
            params["counted_what"].append(what)
            params["counted_dimension"].append(counted.dimension)
            params["counted_window"].append(float(counted.window_seconds))
            params["counted_max"].append(counted.max_count if isinstance(counted, VelocityParams)
                                         else counted.max_distinct)
        elif rule.kind == "amount_limit":
            limit = AmountLimitParams.model_validate(rule.params)
            params["amount_scope"].append(limit.scope)
            params["amount_sku"].append(limit.sku_id)
            params["amount_per_sku"].append(limit.per_sku)
            params["amount_max_quantity"].append(limit.max_quantity)
            params["amount_max_cents"].append(limit.max_amount_cents)
        else:
            return None
    return Judged(count, {name: [_as_text(value) for value in values] for name, values in params.items()},
                  counted_locks(rules)) if count else NO_RULES


def _as_text(value: Any) -> str | None:
    """A rule's parameter as an element of a text[] parameter: the statement casts the numbers and flags back on
    the server. asyncpg has a built-in codec for text[] only; an array of bigint, double precision, boolean or
    varchar makes it look the type up in the catalog on every new connection, a query PostgreSQL plans in 5-70 ms
    (docs/PERFORMANCE.md, section 21), which the first notification on each pooled connection waited for."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)  # int, or float: repr is the shortest text that reads back as the same double


def statement_params(judged: Judged | None, runtime: RiskRuntime | None, at: float) -> dict[str, Any]:
    """`RULE_HITS`'s parameters for a payment counted at `at` (the risk clock's unix seconds, `:at`), and
    `:rules_judged`: how many rules `judged` holds, -1 when `judge` could not judge them (None)."""
    judged_params, locks = (judged or NO_RULES).params, (judged or NO_RULES).locks
    day_start, wall_now = 0.0, None
    if runtime is not None and (locks.contact or locks.sku):  # a day's totals
        day_start, wall_now = local_clock(runtime, dt.datetime.fromtimestamp(at, dt.UTC))[1], utcnow()
    return {**judged_params, "rules_judged": -1 if judged is None else judged.rules, "day_start": day_start,
            "wall_now": wall_now, "lock_payer": locks.payer, "day_contact": locks.contact, "day_sku": locks.sku}
