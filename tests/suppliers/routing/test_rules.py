"""Pure rules of routing: candidate ranking and the one attempt transition table."""

from __future__ import annotations

import pytest

from quanyi.suppliers.attempt_state import (
    ATTEMPT_TRANSITIONS,
    AttemptState,
    IllegalAttemptTransition,
    check_attempt_transition,
)
from quanyi.suppliers.candidates import Candidate, rank_candidates


def _c(supplier_id: int, cost: int, priority: int) -> Candidate:
    return Candidate(supplier_id=supplier_id, supplier_code=f"s{supplier_id}", supplier_product_id=supplier_id * 10,
                     product_code="P", cost_cents=cost, priority=priority, stock=None)


def test_candidates_rank_by_cost_then_priority_then_supplier_id():
    ranked = rank_candidates([_c(3, 900, 1), _c(1, 950, 0), _c(2, 900, 5), _c(4, 900, 1)])
    assert [c.supplier_id for c in ranked] == [3, 4, 2, 1]


def test_recharge_attempt_moves_only_along_the_table():
    s = AttemptState
    assert check_attempt_transition(s.SENDING, s.SUBMITTED)
    assert check_attempt_transition(s.SUBMITTED, s.PROCESSING)
    assert check_attempt_transition(s.PROCESSING, s.SUCCEEDED)
    assert not check_attempt_transition(s.PROCESSING, s.PROCESSING)  # a duplicate: no news
    assert not check_attempt_transition(s.SUCCEEDED, s.SUCCEEDED)
    for current, target in [(s.SUCCEEDED, s.FAILED), (s.FAILED, s.SUCCEEDED), (s.PROCESSING, s.SUBMITTED),
                            (s.SUCCEEDED, s.PROCESSING), (s.FAILED, s.SENDING)]:
        with pytest.raises(IllegalAttemptTransition):
            check_attempt_transition(current, target)


def test_final_states_have_no_way_out():
    assert not [pair for pair in ATTEMPT_TRANSITIONS if pair[0] in (AttemptState.SUCCEEDED, AttemptState.FAILED)]
