"""Shared HTTP plumbing: classify transport failures and status codes the same way everywhere."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.core.messaging import RetryableSendError, TerminalSendError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def request_json(client: httpx.Client, provider: str, method: str, url: str, **kwargs: Any) -> Any:
    """Send and decode JSON; timeouts, refused connections, 429 and 5xx are retryable."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableSendError(provider, f"timeout ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise RetryableSendError(provider, f"transport error ({type(exc).__name__})") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableSendError(provider, f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        if response.status_code >= 400:
            raise TerminalSendError(provider, f"HTTP {response.status_code}") from exc
        raise RetryableSendError(provider, "the answer is not JSON") from exc


def digits(phone: str) -> str:
    """+79123456789 -> 79123456789 (what the Russian SMS gateways expect)."""
    return "".join(ch for ch in phone if ch.isdigit())
