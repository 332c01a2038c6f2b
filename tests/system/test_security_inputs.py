"""What one request may make the gateway remember is bounded (issue 18): a till's cart of
thousands of unknown goods, or a megabyte-long goods reference, costs a few short rows of the
unmapped-references report, not hundreds of megabytes. The 1C requests are sent as the УНФ till
builds them (``calculatediscounts``: a GET with a JSON body; AlexanderYekat/unf,
CommonModules/СерверЛояльностиПолучательДанных*), as in tests/adapters/onec/test_onec_loyaltyservice.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import func, select

from gateway.ledger import mappings
from gateway.ledger.mappings import Unmapped
from gateway.store.models import UnmappedRef
from tests.conftest import Gateway
from tests.raw_http import basic_header, raw_request

TILL = basic_header("касса", "demo-till")
CARD = "2700000000014"


def _cart(goods: list[dict[str, Any]]) -> bytes:
    body = {
        "ObjectTime": "2026-11-23T12:30:00",
        "CurrentDate": "2026-11-23T12:30:00",
        "LoyaltyCardsList": [CARD],
        "LoyaltyCardPresented": True,
        "BlockBonuses": "0",
        "GetMaxBonusPay": True,
        "Return": False,
        "Currency": "руб.",
        "Goods": goods,
    }
    return json.dumps(body, ensure_ascii=False).encode()


def _line(index: int, ref: str) -> dict[str, Any]:
    return {"LineUID": f"l{index}", "Count": 1, "Item": {"Ref": ref, "Name": "?"}, "Price": 1, "TotalAmount": 1}


def _unmapped_rows(gw: Gateway) -> list[UnmappedRef]:
    with gw.service.db.read() as session:
        return list(session.exec(select(UnmappedRef)).all())


def test_a_cart_of_thousands_of_unknown_goods_records_a_bounded_report(gateway: Gateway) -> None:
    goods = [_line(i, f"00000000-0000-4000-8000-{i:012d}") for i in range(3000)]
    raw_request(gateway.url, "GET", "/hs/loyaltyservice/calculatediscounts/", auth=TILL, body=_cart(goods))
    assert len(_unmapped_rows(gateway)) <= mappings.MAX_PER_REQUEST


def test_a_megabyte_reference_is_refused_and_a_long_one_cut(gateway: Gateway) -> None:
    # Past the adapter's 1 MiB a body is refused in the till's shape (calculatediscounts: a text
    # the till shows), keeping at most 1 MiB of it in memory; nothing is recorded.
    body = _cart([_line(1, "A" * 2**21)])
    reply = raw_request(gateway.url, "GET", "/hs/loyaltyservice/calculatediscounts/", auth=TILL, body=body)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    assert "1048576" in reply.body.decode("utf-8")
    assert _unmapped_rows(gateway) == []
    raw_request(
        gateway.url, "GET", "/hs/loyaltyservice/calculatediscounts/", auth=TILL, body=_cart([_line(1, "B" * 20_000)])
    )
    rows = _unmapped_rows(gateway)
    goods = [r for r in rows if r.kind == "goods"]
    assert len(goods) == 1 and len(goods[0].ref) <= mappings.REF_LENGTH


def test_the_report_stops_growing_at_its_cap(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mappings, "MAX_ROWS", 120)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    for batch in range(5):
        with gateway.service.db.write() as session:
            mappings.record_unmapped(
                session, [Unmapped("onec", "goods", f"ref-{batch}-{i}", None) for i in range(50)], now
            )
    with gateway.service.db.read() as session:
        assert session.exec(select(func.count()).select_from(UnmappedRef)).one() == 120
    known = Unmapped("onec", "goods", "ref-0-0", None)
    with gateway.service.db.write() as session:
        mappings.record_unmapped(session, [known], now)  # a known reference is still counted
    with gateway.service.db.read() as session:
        row = session.get(UnmappedRef, ("onec", "goods", "ref-0-0"))
        assert row is not None and row.seen == 2
