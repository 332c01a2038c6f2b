"""Bitrix24 REST client over an incoming webhook: ``https://<portal>/rest/<user>/<secret>/<method>``.

* Every request first waits for the client-side leaky bucket (``bucket.py``; Bitrix24 allows 2
  requests a second with bursts of 50 per portal), so the portal's own limit is not hit by us.
* ``batch`` sends up to 50 commands as one request (one place in the bucket) and splits larger
  sets; ``iterate`` follows ``start``/``next`` through list methods.
* Retryable failures — HTTP 503 ``QUERY_LIMIT_EXCEEDED`` (the bucket is then treated as full),
  other 5xx, 429, timeouts, refused connections — are retried with exponential backoff and
  jitter (tenacity); any other error (bad request, unknown method, wrong webhook, not found) is
  raised at once.
* The webhook secret never reaches a log: our own messages show the URL masked, and the httpx
  logger gets a filter that masks it in its request lines.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from adapters.bitrix.b24.bucket import LeakyBucket

log = logging.getLogger("adapters.bitrix.b24")

BATCH_LIMIT = 50
RETRYABLE_CODES = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "INTERNAL_SERVER_ERROR"})
_SECRET_IN_URL = re.compile(r"(/rest/\d+/)[^/\s\"']+")


def mask_webhook(text: str) -> str:
    """``…/rest/1/s3cr3t/crm.contact.get`` -> ``…/rest/1/***/crm.contact.get``."""
    return _SECRET_IN_URL.sub(r"\1***", text)


class _MaskWebhookSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_webhook(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_FILTER = _MaskWebhookSecrets()


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class Bitrix24Error(Exception):
    """An error answer of the portal (or no answer). ``retryable`` says whether trying again may help."""

    def __init__(self, code: str, description: str, status: int | None, *, retryable: bool) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.retryable = retryable
        super().__init__(f"{code}: {description}" + (f" (HTTP {status})" if status else ""))

    @property
    def not_found(self) -> bool:
        return self.code in {"ERROR_NOT_FOUND", "NOT_FOUND"} or "not found" in self.description.lower()


def php_query(params: Mapping[str, Any]) -> str:
    """Encode parameters the way PHP's ``http_build_query`` does (``filter[>ID]=5&select[0]=ID``),
    as Bitrix24 expects inside ``batch`` commands."""
    pairs: list[tuple[str, str]] = []

    def walk(name: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{name}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{name}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((name, "1" if value else "0"))
        elif value is None:
            pairs.append((name, ""))
        else:
            pairs.append((name, str(value)))

    for key, value in params.items():
        walk(str(key), value)
    return urlencode(pairs)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next: int | None
    total: int | None


@dataclass
class BatchResult:
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)
    requests: int = 0


def _as_dict(value: Any) -> dict[str, Any]:
    """PHP encodes an empty (or numerically keyed) array as a JSON list."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


class Bitrix24Client:
    def __init__(
        self,
        webhook_url: str,
        *,
        rate_per_second: float = 2.0,
        burst: int = 50,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        max_backoff_seconds: float = 30.0,
        http: httpx.Client | None = None,
        bucket: LeakyBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = webhook_url if webhook_url.endswith("/") else webhook_url + "/"
        self.masked = mask_webhook(self.base)
        self.http = http or httpx.Client(timeout=timeout_seconds)
        self.bucket = bucket or LeakyBucket(rate_per_second, burst, sleep=sleep)
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff_seconds
        self._sleep = sleep
        self.requests = 0  # requests sent, retries included (for operators and tests)
        _install_log_filter()

    # -- one request ------------------------------------------------------------------------

    def _send(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.bucket.acquire()
        self.requests += 1
        try:
            response = self.http.post(f"{self.base}{method}.json", json=dict(params))
        except httpx.TimeoutException as exc:
            raise Bitrix24Error("TIMEOUT", type(exc).__name__, None, retryable=True) from exc
        except httpx.TransportError as exc:
            raise Bitrix24Error("TRANSPORT", type(exc).__name__, None, retryable=True) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            code = str(body.get("error") or "ERROR")
            description = str(body.get("error_description") or "")
            retryable = code in RETRYABLE_CODES or response.status_code >= 500 or response.status_code == 429
            if code == "QUERY_LIMIT_EXCEEDED":
                self.bucket.fill()
            raise Bitrix24Error(code, description, response.status_code, retryable=retryable)
        if response.status_code >= 500 or response.status_code == 429:
            raise Bitrix24Error(
                f"HTTP_{response.status_code}", response.reason_phrase, response.status_code, retryable=True
            )
        if not response.is_success or not isinstance(body, dict) or "result" not in body:
            raise Bitrix24Error(
                f"HTTP_{response.status_code}", "unexpected answer", response.status_code, retryable=False
            )
        return body

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``method`` and return the whole answer (``result``, ``next``, ``total``, ``time``),
        retrying retryable failures with backoff."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.bucket.interval, max=self.max_backoff, jitter=self.bucket.interval
            ),
            retry=retry_if_exception(lambda exc: isinstance(exc, Bitrix24Error) and exc.retryable),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                try:
                    return self._send(method, params or {})
                except Bitrix24Error as exc:
                    log.warning("Bitrix24 %s%s failed: %s", self.masked, method, exc)
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request(method, params)["result"]

    # -- lists ------------------------------------------------------------------------------

    def page(self, method: str, params: Mapping[str, Any] | None = None, start: int = 0) -> Page:
        body = self.request(method, {**(params or {}), "start": start})
        result = body["result"]
        items = result.get("items", []) if isinstance(result, dict) else list(result or [])
        nxt = body.get("next")
        total = body.get("total")
        return Page(items, int(nxt) if nxt is not None else None, int(total) if total is not None else None)

    def iterate(self, method: str, params: Mapping[str, Any] | None = None, max_pages: int = 10_000) -> Iterator[Any]:
        """Every item of a list method, page by page (50 per page on Bitrix24)."""
        start = 0
        for _ in range(max_pages):
            page = self.page(method, params, start)
            yield from page.items
            if page.next is None or page.next <= start:
                return
            start = page.next

    # -- batch ------------------------------------------------------------------------------

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]], *, halt: bool = False) -> BatchResult:
        """Run named commands ``{name: (method, params)}``, 50 per request."""
        out = BatchResult()
        items = list(commands.items())
        for offset in range(0, len(items), BATCH_LIMIT):
            part = items[offset : offset + BATCH_LIMIT]
            cmd = {name: f"{method}?{php_query(params)}" if params else method for name, (method, params) in part}
            result = self.call("batch", {"halt": 1 if halt else 0, "cmd": cmd})
            out.requests += 1
            result = result if isinstance(result, dict) else {}
            out.results.update(_as_dict(result.get("result")))
            errors = _as_dict(result.get("result_error"))
            out.errors.update(errors)
            if halt and errors:
                break
        return out

    def close(self) -> None:
        self.http.close()
