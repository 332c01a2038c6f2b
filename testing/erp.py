"""An ``erp:`` configuration section pointing at the fake 1C:ERP (tests and benchmarks)."""

from __future__ import annotations

from typing import Any

from adapters.onec.erp.config import ErpConfig
from testing.fake_erp import LOGIN, PASSWORD

ERP_CLIENT = "erp"


def erp_config(base_url: str, *, transport: str = "odata", **overrides: Any) -> ErpConfig:
    """An ``erp:`` section for the fake ERP. No working-hours window unless a caller asks for
    one, so that nothing depends on the time of day."""
    throttle = {"rate_per_second": 50, "concurrency": 4, "windows": [], **overrides.pop("throttle", {})}
    sync = {"interval_seconds": 1, "page_size": 20, **overrides.pop("sync", {})}
    retry = {"attempts": 4, "initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.05}
    retry.update(overrides.pop("retry", {}))
    return ErpConfig.model_validate(
        {
            "base_url": base_url,
            "transport": transport,
            "login": LOGIN,
            "password": PASSWORD,
            "client_id": ERP_CLIENT,
            "connect_timeout_seconds": 2,
            "read_timeout_seconds": 2,
            "throttle": throttle,
            "sync": sync,
            "retry": retry,
            **overrides,
        }
    )
