"""Fixtures of the 1C adapters' tests: a service on the test database for the ERP sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.ledger.service import LoyaltyService
from tests.erp_helpers import service_on
from tests.support import FakeClock


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    """The demo service on the test database, as the ERP sync tests drive it."""
    service = service_on(database_url, clock)
    yield service
    service.db.dispose()
