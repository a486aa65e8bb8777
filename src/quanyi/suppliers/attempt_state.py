"""The supplier attempt lifecycle: one table of allowed moves for card purchases and direct recharges.

A card purchase goes sending -> succeeded | failed, or sending -> unknown (timed out after sending) and
then, once the supplier was asked, succeeded | failed. A direct recharge (直充) goes sending ->
submitted -> processing -> succeeded | failed, driven by the supplier's answer, its callbacks and our
polling. Moving to the state an attempt is already in is "no news" (duplicate callbacks); anything not
in the table raises, so a late "failed" can never undo a success.
"""

from __future__ import annotations

import enum

from quanyi.errors import Conflict

__all__ = ["AttemptState", "ATTEMPT_TRANSITIONS", "IllegalAttemptTransition", "check_attempt_transition",
           "OPEN_STATES", "FINAL_STATES"]


class AttemptState(enum.StrEnum):
    SENDING = "sending"  # committed before the call; the call may or may not have reached the supplier
    UNKNOWN = "unknown"  # the supplier may have taken it: ask it (query_order) before buying elsewhere
    SUBMITTED = "submitted"  # recharge accepted, not started
    PROCESSING = "processing"  # recharge being credited
    SUCCEEDED = "succeeded"  # codes received / account credited
    FAILED = "failed"  # definitely not taken (or definitely not credited): nothing owed to the supplier


_S = AttemptState
# (from, to) -> why the move exists
ATTEMPT_TRANSITIONS: dict[tuple[AttemptState, AttemptState], str] = {
    (_S.SENDING, _S.SUCCEEDED): "the supplier delivered",
    (_S.SENDING, _S.FAILED): "the supplier refused or was unreachable",
    (_S.SENDING, _S.UNKNOWN): "no clear answer after sending",
    (_S.SENDING, _S.SUBMITTED): "recharge accepted",
    (_S.SENDING, _S.PROCESSING): "recharge accepted and started",
    (_S.UNKNOWN, _S.SUCCEEDED): "the supplier's records show it delivered",
    (_S.UNKNOWN, _S.FAILED): "the supplier's records show it never took or finished it",
    (_S.UNKNOWN, _S.SUBMITTED): "the supplier's records show the recharge accepted",
    (_S.UNKNOWN, _S.PROCESSING): "the supplier's records show it in progress",
    (_S.SUBMITTED, _S.PROCESSING): "recharge started",
    (_S.SUBMITTED, _S.SUCCEEDED): "recharge credited",
    (_S.SUBMITTED, _S.FAILED): "recharge failed",
    (_S.PROCESSING, _S.SUCCEEDED): "recharge credited",
    (_S.PROCESSING, _S.FAILED): "recharge failed",
}

OPEN_STATES = frozenset({_S.SENDING, _S.UNKNOWN, _S.SUBMITTED, _S.PROCESSING})
FINAL_STATES = frozenset({_S.SUCCEEDED, _S.FAILED})


class IllegalAttemptTransition(Conflict):
    code = "illegal_attempt_transition"


def check_attempt_transition(current: AttemptState, target: AttemptState) -> bool:
    """True if the attempt must move, False if it is already there (no news); raises if not allowed."""
    if current is target:
        return False
    if (current, target) not in ATTEMPT_TRANSITIONS:
        raise IllegalAttemptTransition(f"a supplier attempt cannot go from {current.value} to {target.value}",
                                       current=current.value, target=target.value)
    return True
