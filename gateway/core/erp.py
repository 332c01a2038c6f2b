"""The port to an ERP that owns customer orders (1C:ERP, 1C:УТ): what the order sync and the
push of loyalty results need, whatever the transport (the standard OData interface, a published
SOAP service).

An ERP is a heavy, shared system: every call it answers is made under a *call guard* (the
gateway's throttle shared by all replicas), and transports report failures as either
``ErpUnavailable`` (worth retrying later: a timeout, a refused connection, a 5xx, 429/503) or
``ErpRejected`` (it will never work as it is: wrong credentials, a missing object, a bad
request). The port returns orders already mapped to ``contracts`` snapshots; the sync assigns
their versions (see ``adapters.onec.erp.sync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from contracts.orders import OrderRequest

CallKind = Literal["pull", "push"]


class ErpError(Exception):
    """A call to the ERP failed."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ErpUnavailable(ErpError):
    """May succeed later: timeout, connection error, 5xx, 429, 503. Counts as the ERP struggling."""

    retryable = True


class ErpRejected(ErpError):
    """Will not succeed as it is: 400, 401, 403, 404, a SOAP fault, an answer we cannot read."""


class CallGuard(Protocol):
    """Wraps every single call to the ERP (each retry attempt too): waits for the throttle's
    permission, holds a concurrency slot for the duration of the call and reports its latency
    and outcome (an ``ErpUnavailable`` raised inside counts as a failure)."""

    def __call__(self, kind: CallKind) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class Unmapped:
    """An ERP reference the configured mapping does not know (goods, store, price type…)."""

    kind: str
    ref: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ErpOrderChange:
    """The current state of one order at the ERP, read as a whole.

    ``marker`` identifies the state (the ERP's opaque data versions of the order and of every
    document that shipped or returned it); ``changed_at`` is the latest change moment of any of
    those documents at the ERP. ``request`` is the mapped snapshot with ``version`` 0 (the sync
    derives the version), or ``None`` with a ``problem`` (the order cannot be mapped: no card,
    an unknown card…) or a ``skip`` reason (not posted yet: nothing to apply)."""

    order_id: str
    marker: str
    changed_at: datetime
    request: OrderRequest | None = None
    problem: str | None = None
    skip: str | None = None
    number: str | None = None
    unmapped: tuple[Unmapped, ...] = ()


@dataclass(frozen=True, slots=True)
class ErpPage:
    """One page of the change feed. ``next_cursor`` is durable: the sync stores it only after
    every change of the page was applied, so a crash re-reads a page, never skips one."""

    changes: list[ErpOrderChange]
    next_cursor: str | None
    more: bool
    remaining: int | None = None
    calls: int = 0


@dataclass(frozen=True, slots=True)
class ErpLoyaltyResult:
    """What the gateway made of one version of an order, written back to the ERP (which keeps
    one record per order and ignores versions older than the one it has)."""

    order_id: str
    version: int
    status: str
    card_number: str
    points_spent: int
    points_pending: int
    points_available: int
    points_accrued: int
    points_shortfall: int
    balance_available: int
    updated_at: datetime
    lines: Sequence[ErpLineResult] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ErpLineResult:
    line_id: str
    points_spent: int
    points_accrued: int
    points_pending: int
    points_available: int


class ErpPort(Protocol):
    """An ERP the gateway syncs orders from and pushes loyalty results to."""

    name: str

    def changed_orders(self, cursor: str | None, limit: int) -> ErpPage:
        """Orders changed after ``cursor`` (``None``: from the beginning), at most about
        ``limit`` per page, each as its whole current state."""
        ...

    def fetch_orders(self, order_ids: Sequence[str]) -> list[ErpOrderChange]:
        """The current state of the given orders (to retry orders that failed to map)."""
        ...

    def backlog(self, cursor: str | None) -> int | None:
        """How many changes wait after ``cursor`` (``None`` when the ERP cannot tell)."""
        ...

    def push_results(self, results: Sequence[ErpLoyaltyResult]) -> None:
        """Write loyalty results back (idempotent: the ERP overwrites per order, by version)."""
        ...

    def close(self) -> None: ...
