"""The life of a points hold, in one place: ``open`` → ``captured`` (a till took the points as
payment) → ``committed`` (a receipt booked them), or ``open``/``captured`` → ``voided`` (cancelled,
released, expired). A hold resolves once: ``committed`` and ``voided`` are final.

Every status change of a hold goes through ``move``, which refuses any other transition, so no
code path can resolve a hold twice or revive a resolved one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from contracts.errors import ErrorCode, LoyaltyError
from gateway.store.models import Hold


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    COMMITTED = "committed"
    VOIDED = "voided"


UNRESOLVED = (HoldStatus.OPEN, HoldStatus.CAPTURED)
_NEXT: dict[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.OPEN: frozenset({HoldStatus.CAPTURED, HoldStatus.COMMITTED, HoldStatus.VOIDED}),
    HoldStatus.CAPTURED: frozenset({HoldStatus.COMMITTED, HoldStatus.VOIDED}),
    HoldStatus.COMMITTED: frozenset(),
    HoldStatus.VOIDED: frozenset(),
}


def move(hold: Hold, to: HoldStatus, at: datetime) -> None:
    """Set the hold's status to ``to`` (and its resolution time when ``to`` is final); a
    resolved hold answers ``hold_already_resolved``, any other wrong step is a programming error."""
    current = HoldStatus(hold.status)
    if to not in _NEXT[current]:
        if current not in UNRESOLVED:
            raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=hold.id, status=hold.status)
        raise RuntimeError(f"hold {hold.id}: {current} cannot become {to}")
    hold.status = to
    if to not in UNRESOLVED:
        hold.resolved_at = at
