"""Canonical fingerprints of requests, for idempotency and duplicate detection.

Two requests that mean the same thing hash the same: ``100.1`` and ``100.10`` are one amount,
field order does not matter, defaults are filled in by the model before hashing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        normalized = value.normalize()
        return format(normalized, "f") if normalized == normalized.to_integral() else str(normalized)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def canonical_hash(operation: str, request: BaseModel) -> str:
    payload = {"op": operation, "request": _canonical(request.model_dump(mode="python"))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
