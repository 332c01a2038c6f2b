"""What both transports share: one guarded, retried call; HTTP Basic with a UTF-8 (Cyrillic)
login; the classification of failures into retryable and not."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from adapters.onec.erp.config import RetryConfig
from gateway.core.erp import CallGuard, CallKind, ErpRejected, ErpUnavailable

log = logging.getLogger("adapters.onec.erp")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 502, 503, 504})


def basic_auth_header(login: str, password: str) -> str:
    """HTTP Basic with the credentials encoded as UTF-8, which 1C expects for Cyrillic logins."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class CallAbandoned(ErpUnavailable):
    """We stopped waiting for the answer (our read timeout) — the ERP may still be working on the
    call, so the throttle keeps counting it as in flight at the ERP."""


class RequestTooLong(ErpRejected):
    """The web server in front of 1C refused the request for its length: IIS request filtering
    (404.15, ``maxQueryString``, 2,048 bytes by default) or Apache's ``LimitRequestLine`` (414)."""


class AccessDenied(ErpRejected):
    """1C's error code 20: the ERP user lacks a right, or a restricted record fell into a read."""


class EntityExists(ErpRejected):
    """1C's error code 15: a POST of a record whose key exists (1C never upserts on POST)."""


ACCESS_DENIED_CODE = "20"
ENTITY_EXISTS_CODE = "15"


def too_long(status: int, body: str) -> bool:
    """IIS answers a query string over ``maxQueryString`` with a plain 404 whose page names the
    substatus 404.15; Apache answers an over-long request line with 414."""
    return status == 414 or (status == 404 and ("404.15" in body or "Query String Too Long" in body))


def classify_status(status: int, what: str, detail: str = "", code: str | None = None) -> ErpRejected | ErpUnavailable:
    """The exception for an HTTP error status of the ERP (``code``: 1C's own error code, if any)."""
    detail = f": {detail[:300]}" if detail else ""
    if status >= 500 or status in RETRYABLE_STATUS:
        return ErpUnavailable(f"{what}: HTTP {status}{detail}", status=status)
    if code == ACCESS_DENIED_CODE:
        return AccessDenied(
            f"{what}: у пользователя ERP нет прав на эти данные (1С, код 20): выдайте ему право «Чтение» "
            "документов заказов, реализаций и возвратов, справочника карт лояльности и «Изменение» регистра "
            "результатов, либо включите erp.odata.allowed_only (записи с ограничением доступа будут пропущены) / "
            f"the ERP user lacks access rights (1C code 20): grant read rights or enable allowed_only{detail}",
            status=status,
        )
    if status in (401, 403):
        return ErpRejected(
            f"{what}: HTTP {status}, the ERP refused the credentials (check erp.login / erp.password and the "
            f"user's rights){detail}",
            status=status,
        )
    return ErpRejected(f"{what}: HTTP {status}{detail}", status=status)


def call(
    guard: CallGuard,
    kind: CallKind,
    retry: RetryConfig,
    what: str,
    attempt: Callable[[], T],
    *,
    attempts: int | None = None,
) -> T:
    """Run ``attempt`` under the throttle, retrying retryable failures (each retry is throttled
    again) with exponential backoff and jitter; non-retryable failures surface at once."""
    retrying = Retrying(
        stop=stop_after_attempt(attempts or retry.attempts),
        wait=wait_exponential_jitter(
            multiplier=retry.initial_seconds, max=retry.max_seconds, jitter=retry.jitter_seconds
        ),
        retry=retry_if_exception_type(ErpUnavailable),
        before_sleep=lambda state: log.warning(
            "ERP call %s failed (attempt %d), retrying: %s",
            what,
            state.attempt_number,
            state.outcome.exception() if state.outcome is not None else "",
        ),
        reraise=True,
    )
    for trial in retrying:
        with trial, guard(kind):
            return attempt()
    raise AssertionError("unreachable: tenacity reraises the last failure")  # pragma: no cover
