"""Reports computed in the database, against numbers worked out by hand from the purchases made
through the real ledger; the point flows reconcile with the ledger's own balances (hypothesis);
the CLI's files read back; the HTTP API needs operator credentials."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contracts.operations import (
    BalanceRequest,
    CartLine,
    CommitRequest,
    HoldRequest,
    RefundRequest,
    RegisterCustomerRequest,
)
from gateway.core.program import Program
from gateway.ledger.accounts import expire_due_lots_batch
from gateway.ledger.context import Ctx
from gateway.ledger.service import LoyaltyService
from gateway.reports import make_filters, run_report
from gateway.reports.base import Report
from gateway.store.db import Database
from tests.conftest import Gateway
from tests.support import MARKETER, OPERATOR, TILL, FakeClock, key

PROGRAM: dict[str, Any] = {
    "name": "reports-test",
    "currency": "RUB",
    "point_value": "1.00",
    "timezone": "Europe/Moscow",
    "accrual": {"percent": 5, "on_amount_paid_by_points": False, "pending_days": 0},
    "redemption": {"max_share_percent": 50, "min_points": 1},
    "expiry": {"days": 365},
    "welcome_bonus": {"points": 100, "expiry_days": 30},
    "catalogue": {
        "kinds": [{"code": "paint", "name": "Краски", "prefixes": ["PN-"]}, {"code": "other", "name": "Прочее"}],
        "default_kind": "other",
        "zones": [
            {"code": "msk", "name": "Москва", "stores": ["S01", "S02"]},
            {"code": "spb", "name": "Санкт-Петербург", "stores": ["S06"]},
        ],
    },
    "segments": [{"code": "retail", "name": "Розница", "default": True}, {"code": "partner", "name": "Партнёры"}],
    "discounts": {
        "rules": [
            {
                "id": "spb-paint",
                "description": "Краски в Петербурге",
                "when": {"zones": ["spb"], "kinds": ["paint"]},
                "percent": 10,
            }
        ]
    },
    "promo_codes": [{"code": "SALE5", "description": "Скидка 5%", "discount_percent": 5}],
}

# Day 0 of the story: noon in Moscow.
DAY0 = date(2026, 6, 10)
NOON = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def line(line_id: str, item: str, price: str, quantity: int = 1) -> CartLine:
    return CartLine(line_id=line_id, item=item, quantity=Decimal(quantity), price=Decimal(price))


class Shop:
    """The ledger service of the test program on a controllable clock, and small verbs."""

    def __init__(self, url: str, start: datetime = NOON) -> None:
        self.clock = FakeClock(frozen_at=start)
        self.program = Program.model_validate(PROGRAM)
        self.db = Database(url)
        self.service = LoyaltyService(self.db, self.program, self.clock)

    def day(self, n: int) -> None:
        """Move the clock to noon of day ``n`` of the story."""
        self.clock.offset = timedelta(days=n)

    def register(self, card: str, segment: str | None = None) -> str:
        request = RegisterCustomerRequest(card_number=card, segment=segment)
        return self.service.register_customer("tills", uuid.uuid4().hex, request).customer_id

    def buy(self, card: str, store: str, lines: list[CartLine], points: int = 0, promo: str | None = None) -> Any:
        request = CommitRequest(
            receipt_id=f"R-{uuid.uuid4().hex[:10]}",
            card_number=card,
            store=store,
            lines=lines,
            points_to_spend=points or None,
            promo_codes=[promo] if promo else [],
        )
        return self.service.commit("tills", uuid.uuid4().hex, request)

    def refund_all(self, receipt_id: str) -> None:
        request = RefundRequest(receipt_id=receipt_id, refund_id=f"F-{uuid.uuid4().hex[:8]}", full=True)
        self.service.refund("tills", uuid.uuid4().hex, request)

    def expire(self) -> int:
        with self.db.write() as session:
            return expire_due_lots_batch(Ctx(self.db, session, self.program, self.clock(), "system:expiry"), 1000)

    def report(self, name: str, first: int, last: int, **filters: Any) -> Report:
        f = make_filters(
            self.program, DAY0 + timedelta(days=first), DAY0 + timedelta(days=last), now=self.clock(), **filters
        )
        return run_report(self.db, self.program, name, f)


def metrics(report: Report) -> dict[str, Any]:
    return {row[0]: row[2] for row in report.rows}


def rows_by(report: Report, key: str) -> dict[Any, dict[str, Any]]:
    keys = [c.key for c in report.columns]
    return {row[keys.index(key)]: dict(zip(keys, row, strict=True)) for row in report.rows}


CARD_A, CARD_B, CARD_C = "2911000000001", "2911000000002", "2911000000003"


@pytest.fixture
def story(database_url: str) -> Iterator[Shop]:
    """Two customers over three days, then an expiry and a return of A a month later:

    day 0  A (retail) and B (partner) register (100 welcome points each, 30 days).
           A at S01 (Moscow): CEMENT 1000.00 → paid 1000.00, accrues 50.
           B at S06 (Petersburg): 2 × PN-WHITE 500.00, paint −10 % → paid 900.00, accrues 45.
    day 1  A at S06 with SALE5: PN-BLUE 200.00 (−10 % → 180.00) + CEMENT 800.00, then −5 % of
           980.00 (49.00) → paid 931.00, accrues 46 (5 % of 931.00 = 46.55).
           B at S01: CEMENT 400.00 paying 45 points → paid 400.00 (45 of it by points),
           accrues 17 (5 % of 355.00 = 17.75).
    day 2  B returns the day-0 receipt in full: 900.00 back, its 45 points reversed.
    day 31 welcome lots expire: A's 100, B's 55 (B's 45 spent points came from it first).
    day 40 A at S02: CEMENT 100.00 → accrues 5; C registers and buys CEMENT 200.00 at S01 → 10.
    """
    shop = Shop(database_url)
    shop.register(CARD_A)
    shop.register(CARD_B, segment="partner")
    shop.buy(CARD_A, "S01", [line("1", "CEMENT", "1000.00")])
    b0 = shop.buy(CARD_B, "S06", [line("1", "PN-WHITE", "500.00", 2)])
    shop.day(1)
    shop.buy(CARD_A, "S06", [line("1", "PN-BLUE", "200.00"), line("2", "CEMENT", "800.00")], promo="SALE5")
    shop.buy(CARD_B, "S01", [line("1", "CEMENT", "400.00")], points=45)
    shop.day(2)
    shop.refund_all(b0.receipt_id)
    shop.day(31)
    shop.expire()
    shop.day(40)
    shop.buy(CARD_A, "S02", [line("1", "CEMENT", "100.00")])
    shop.register(CARD_C)
    shop.buy(CARD_C, "S01", [line("1", "CEMENT", "200.00")])
    yield shop
    shop.db.dispose()


def test_summary_of_the_first_three_days_matches_the_hand_computed_numbers(story: Shop) -> None:
    m = metrics(story.report("summary", 0, 2))
    assert m["cards_issued"] == 2 and m["customers_registered"] == 2
    assert m["active_customers"] == 2 and m["receipts_with_card"] == 4
    assert m["gross"] == Decimal("3400.00")  # 1000 + 1000 + 1000 + 400
    assert m["discount"] == Decimal("169.00")  # 100 + 20 + 49
    assert m["returned"] == Decimal("900.00")
    assert m["turnover"] == Decimal("2331.00")  # 3400 − 169 − 900
    assert m["average_with_card"] == Decimal("582.75")  # 2331 / 4
    assert m["paid_by_points"] == Decimal("45.00")
    assert m["paid_by_points_share"] == Decimal("1.39")  # 45 / 3231 = 1.3928…
    assert (m["points_accrued"], m["points_welcome"], m["points_spent"]) == (158, 200, 45)
    assert (m["points_reversed"], m["points_expired"], m["points_returned"]) == (45, 0, 0)
    assert (m["liability_opening"], m["liability_closing"]) == (0, 268)
    assert m["liability_closing_roubles"] == Decimal("268.00")
    # Receipts without a card never reach the gateway: not derivable, said so, not invented.
    assert m["average_without_card"] is None and m["receipts_with_card_share"] is None


def test_expiry_and_later_purchases_move_the_liability_as_the_balances_say(story: Shop) -> None:
    m = metrics(story.report("summary", 3, 40))
    assert m["liability_opening"] == 268
    assert (m["points_expired"], m["points_accrued"], m["points_welcome"]) == (155, 15, 100)
    assert m["liability_closing"] == 228  # 268 − 155 + 15 + 100
    balances = {
        card: story.service.balance("tills", BalanceRequest(card_number=card)).balance
        for card in (CARD_A, CARD_B, CARD_C)
    }
    assert balances == {CARD_A: 101, CARD_B: 17, CARD_C: 110}
    assert sum(balances.values()) == m["liability_closing"]


def test_filters_by_zone_store_and_segment(story: Shop) -> None:
    spb = metrics(story.report("summary", 0, 2, zone="spb"))
    assert (spb["receipts_with_card"], spb["turnover"]) == (2, Decimal("931.00"))  # B's 900 came back
    s01 = metrics(story.report("summary", 0, 2, store="s01"))  # stores match as the catalogue does
    assert (s01["receipts_with_card"], s01["turnover"]) == (2, Decimal("1400.00"))
    partner = metrics(story.report("summary", 0, 2, segment="partner"))
    assert (partner["active_customers"], partner["turnover"], partner["cards_issued"]) == (1, Decimal("400.00"), 1)
    assert partner["points_welcome"] == 100 and partner["liability_closing"] == 72  # B: 100 + 45 + 17 − 45 − 45


def test_stores_top_customers_and_days(story: Shop) -> None:
    stores = rows_by(story.report("stores", 0, 2), "store")
    assert stores["S01"]["zone"] == "msk" and stores["S06"]["zone"] == "spb"
    assert (stores["S01"]["receipts"], stores["S01"]["turnover"], stores["S01"]["average"]) == (2, 140000, 70000)
    assert (stores["S06"]["receipts"], stores["S06"]["turnover"], stores["S06"]["discount"]) == (2, 93100, 16900)

    top = story.report("top_customers", 0, 40)
    assert [r[2] for r in top.rows] == ["…0001", "…0002", "…0003"]  # B: 0 + 400, C: 200
    first = dict(zip([c.key for c in top.columns], top.rows[0], strict=True))
    assert (first["receipts"], first["turnover"]) == (3, 203100)  # 1000 + 931 + 100
    assert first["first_purchase"] == NOON and first["last_in_period"] == NOON + timedelta(days=40)

    days = rows_by(story.report("daily", 0, 2), "day")
    assert {str(d): (r["cards_issued"], r["receipts"], r["turnover"]) for d, r in days.items()} == {
        "2026-06-10": (2, 2, 100000),  # B's 900 returned later counts against its own day
        "2026-06-11": (0, 2, 133100),
    }


def test_promotions_campaign_codes_and_pairs(story: Shop) -> None:
    rules = story.report("promotions", 0, 2)
    by_rule = {(r[0], r[2]): r for r in rules.rows}
    assert by_rule[("discount:spb-paint", "spb")][4:7] == (2, 93100, 12000)  # 2 receipts, 100 + 20 off
    promo = next(r for r in rules.rows if r[0].startswith("promo:"))
    assert promo[4:7] == (1, 93100, 4900)
    accrual = [r for r in rules.rows if r[1] == "Начисление"]
    assert sum(r[7] for r in accrual) == 158
    assert not any(r[0].startswith("redemption.") for r in rules.rows)

    pairs = story.report("pairs", 0, 40)
    assert pairs.rows[0][:3] == ("CEMENT", "PN-BLUE", 1)
    assert pairs.rows[0][3] == Decimal("16.67")  # 1 of 6 receipts
    assert pairs.rows[0][4] == Decimal("20.00")  # 1 of the 5 with CEMENT


def test_churn_rfm_and_won_back_customers(story: Shop) -> None:
    churn = rows_by(story.report("churn", 1, 1), "status")
    assert churn["retained"]["customers"] == 2
    gone = rows_by(story.report("churn", 3, 5), "status")
    assert (gone["churned"]["customers"], gone["churned"]["turnover_before"]) == (2, 233100)
    back = rows_by(story.report("churn", 40, 40), "status")
    assert (back["won_back"]["customers"], back["new"]["customers"], back["churned"]["customers"]) == (1, 1, 0)

    rfm = rows_by(story.report("rfm", 0, 2), "segment")
    assert sum(r["customers"] for code, r in rfm.items() if code != "none") == 2
    # Both were new: they left "no purchases in the window" and came into real segments.
    assert (rfm["none"]["before"], rfm["none"]["left"], rfm["none"]["customers"]) == (2, 2, 0)
    assert sum(r["came"] for code, r in rfm.items() if code != "none") == 2
    moves = story.report("rfm_moves", 3, 5)
    assert sum(r[2] for r in moves.rows) == 2 and all(r[1] == "Нет покупок в окне" for r in moves.rows)


def test_a_hold_past_its_deadline_is_listed_for_the_accountants(story: Shop) -> None:
    story.service.hold("tills", uuid.uuid4().hex, HoldRequest(card_number=CARD_A, points=30, ttl_seconds=60))
    assert story.report("stuck", 40, 40).rows == []
    story.clock.advance(seconds=61)
    rows = story.report("stuck", 40, 40).rows
    assert [(r[0], r[5], r[7]) for r in rows] == [("hold_overdue", "…0001", 30)]


def test_bad_parameters_are_refused_with_a_clear_message(story: Shop) -> None:
    from gateway.reports import ReportError

    with pytest.raises(ReportError, match="no zone"):
        story.report("summary", 0, 1, zone="nowhere")
    with pytest.raises(ReportError, match="ends before it starts"):
        story.report("summary", 2, 1)
    with pytest.raises(ReportError, match="no report"):
        story.report("nonsense", 0, 1)


# -- reconciliation --------------------------------------------------------------------------------

purchase = st.tuples(
    st.sampled_from([CARD_A, CARD_B]),
    st.integers(min_value=1, max_value=500_000),  # kopecks
    st.integers(min_value=0, max_value=60),  # points to try to spend
    st.integers(min_value=0, max_value=20),  # days later
    st.booleans(),  # return it in full afterwards
)


_STORY_DAYS = [0]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(purchases=st.lists(purchase, min_size=1, max_size=6), split=st.integers(min_value=0, max_value=80))
def test_point_flows_reconcile_with_the_ledger(database_url: str, purchases: list[Any], split: int) -> None:
    """opening + accrued + welcome − spent − expired − reversed + returned + other = closing, and
    closing is what the ledger's own balances add up to, for any split of the history."""
    # Hypothesis runs every example on the same database: each starts after the last one ended,
    # so the history up to an example's end is the whole ledger.
    _STORY_DAYS[0] += 400
    shop = Shop(database_url, start=NOON + timedelta(days=_STORY_DAYS[0]))
    origin = DAY0 + timedelta(days=_STORY_DAYS[0])
    prefix = uuid.uuid4().hex[:6]
    cards = {c: f"29{prefix}{c[-5:]}".replace("a", "1")[:13] for c in (CARD_A, CARD_B)}
    cards = {c: "".join(ch if ch.isdigit() else "7" for ch in n) for c, n in cards.items()}
    for number in cards.values():
        shop.register(number)
    day = 0
    for card, kopecks, points, later, returned in purchases:
        day += later
        shop.day(day)
        shop.expire()
        number = cards[card]
        available = shop.service.balance("tills", BalanceRequest(card_number=number)).available
        spend = min(points, available, kopecks // 200)  # within the 50 % cap
        price = f"{Decimal(kopecks) / 100:.2f}"
        result = shop.buy(number, "S01", [line("1", "CEMENT", price)], points=spend)
        if returned:
            shop.refund_all(result.receipt_id)
    shop.day(day + 1)
    shop.expire()
    first = origin + timedelta(days=min(split, day))
    whole = make_filters(shop.program, DAY0 - timedelta(days=3650), origin + timedelta(days=day + 1))
    before = make_filters(shop.program, DAY0 - timedelta(days=3650), first - timedelta(days=1))
    after = make_filters(shop.program, first, origin + timedelta(days=day + 1))
    total = metrics(run_report(shop.db, shop.program, "summary", whole))
    early = metrics(run_report(shop.db, shop.program, "summary", before))
    late = metrics(run_report(shop.db, shop.program, "summary", after))
    assert early["liability_closing"] == late["liability_opening"]
    flows = ("accrued", "welcome", "returned", "other")
    outflows = ("spent", "expired", "reversed")
    moved = sum(late[f"points_{k}"] for k in flows) - sum(late[f"points_{k}"] for k in outflows)
    assert late["liability_opening"] + moved == late["liability_closing"] == total["liability_closing"]
    ledger = sum(shop.service.balance("tills", BalanceRequest(card_number=n)).balance for n in shop_cards(shop))
    assert total["liability_closing"] == ledger
    report = shop.service.check()
    assert report.ok, report.violations
    shop.db.dispose()


def shop_cards(shop: Shop) -> list[str]:
    from sqlalchemy import text

    with shop.db.read() as session:
        return [str(n) for (n,) in session.execute(text("SELECT number FROM cards")).all()]


# -- exports -----------------------------------------------------------------------------------------


def test_cli_writes_csv_xlsx_and_json_that_read_back(story: Shop, database_url: str, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from gateway.cli import app as cli

    runner = CliRunner()
    base = ["report", "stores", "--from", "2026-06-10", "--to", "12.06.2026", "--database-url", database_url]
    config = tmp_path / "gateway.yaml"
    config.write_text(_config_yaml(), encoding="utf-8")
    base += ["--config", str(config)]

    out_csv = tmp_path / "stores.csv"
    result = runner.invoke(cli, [*base, "--format", "csv", "--output", str(out_csv)])
    assert result.exit_code == 0, result.output
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0][:4] == ["Зона", "Магазин", "Канал (клиент шлюза)", "Чеков"]
    by_store = {row[1]: row for row in table[1:]}
    assert by_store["S01"][5] == "1400,00" and by_store["S06"][7] == "169,00"

    out_xlsx = tmp_path / "stores.xlsx"
    result = runner.invoke(cli, [*base, "--format", "xlsx", "--output", str(out_xlsx)])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out_xlsx).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "Магазины и каналы" and values[1][0] == "10.06.2026 — 12.06.2026"
    header = values[2]
    s01 = next(r for r in values[3:] if r[1] == "S01")
    assert s01[header.index("Оборот, руб.")] == 1400 and s01[header.index("Чеков")] == 2  # numbers, not text

    result = runner.invoke(cli, [*base, "--format", "json", "--locale", "en"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["columns"][5]["title"] == "Turnover, RUB"
    assert {r["store"]: r["turnover"] for r in data["rows"]} == {"S01": "1400.00", "S06": "931.00"}

    result = runner.invoke(cli, [*base, "--zone", "nowhere"])
    assert result.exit_code == 2 and "no zone" in result.output


def _config_yaml() -> str:
    import yaml

    from gateway.config import DEMO_CONFIG

    data = yaml.safe_load(Path(DEMO_CONFIG).read_text(encoding="utf-8"))
    data["program"] = PROGRAM
    data.pop("demo", None)
    return yaml.safe_dump(data, allow_unicode=True)


# -- HTTP -----------------------------------------------------------------------------------------------


def test_reports_over_http_need_operator_credentials(gateway: Gateway) -> None:
    assert gateway.http.get("/api/v1/reports").status_code == 401
    refused = gateway.http.get("/api/v1/reports/summary", headers=TILL)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    listing = gateway.http.get("/api/v1/reports", headers=OPERATOR).json()
    assert {"summary", "top_customers", "rfm", "stuck", "pairs"} <= {r["name"] for r in listing["reports"]}


def test_a_marketer_reads_reports_and_the_dashboard_but_books_nothing_and_sees_no_ledger_tools(
    gateway: Gateway,
) -> None:
    assert gateway.http.get("/api/v1/reports/summary", headers=MARKETER).status_code == 200
    assert gateway.http.get("/dashboard", headers=MARKETER).status_code == 200
    hold = gateway.http.post(
        "/api/v1/holds", headers={**MARKETER, **key()}, json={"card_number": "2700000000014", "points": 10}
    )
    assert hold.status_code == 403 and hold.json()["error"]["code"] == "forbidden"
    assert gateway.http.get("/api/v1/cards/2700000000014/balance", headers=MARKETER).status_code == 403
    assert gateway.http.get("/api/v1/ledger/check", headers=MARKETER).status_code == 403
    assert gateway.http.get("/operator", headers=MARKETER).status_code == 403
    # Nor may its credentials book through a till protocol (1C «Сервер лояльности»).
    till_call = gateway.http.get("/hs/loyaltyservice/getcardtypes", headers=MARKETER)
    assert till_call.status_code >= 400


def test_reports_over_http_in_json_csv_and_xlsx(gateway: Gateway) -> None:
    from openpyxl import load_workbook

    card = "2700000000014"  # a seeded demo card
    receipt = {
        "receipt_id": "H-1",
        "card_number": card,
        "store": "S01",
        "lines": [{"line_id": "1", "item": "CEMENT", "quantity": "2", "price": "125.50"}],
    }
    assert (
        gateway.http.post("/api/v1/receipts", json=receipt, headers={**TILL, "Idempotency-Key": "k1"}).status_code
        == 200
    )
    today = gateway.clock().astimezone(gateway.service.program.zone).date().isoformat()
    summary = gateway.http.get(f"/api/v1/reports/summary?from={today}&to={today}", headers=OPERATOR).json()
    values = {row["metric"]: row["value"] for row in summary["rows"]}
    assert values["receipts_with_card"] == 1 and values["turnover"] == "251.00"
    assert summary["period"] == {"from": today, "to": today}

    csv_reply = gateway.http.get("/api/v1/reports/stores?format=csv", headers=OPERATOR)
    assert csv_reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_reply.headers["content-disposition"]
    assert "S01;tills;1;1;251,00" in csv_reply.content.decode("utf-8-sig")

    xlsx = gateway.http.get("/api/v1/reports/top_customers?format=xlsx&locale=en", headers=OPERATOR)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["A1"].value == "Top customers"

    bad = gateway.http.get("/api/v1/reports/summary?from=2026-02-01&to=2026-01-01", headers=OPERATOR)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    missing = gateway.http.get("/api/v1/reports/nothing", headers=OPERATOR)
    assert missing.status_code == 404


def test_campaign_codes_per_store_with_their_discount(database_url: str) -> None:
    """A shared code of a promo campaign used in Moscow and in Petersburg: uses, revenue and the
    code's own discount per store (in Petersburg after the paint discount: 10 % of 450.00)."""
    from contracts.accounts import CampaignRequest

    shop = Shop(database_url)
    shop.service.campaign_create(
        "operator",
        uuid.uuid4().hex,
        CampaignRequest(
            name="Зима",
            description="Зимняя скидка 10%",
            discount_percent=Decimal(10),
            uses_per_code=None,
            code="WINTER",
        ),
    )
    shop.register(CARD_A)
    shop.buy(CARD_A, "S01", [line("1", "CEMENT", "1000.00")], promo="WINTER")
    shop.buy(CARD_A, "S06", [line("1", "PN-RED", "500.00")], promo="WINTER")
    shop.buy(CARD_A, "S06", [line("1", "PN-RED", "500.00")])  # no code: not a use
    rows = rows_by(shop.report("campaigns", 0, 0), "store")
    shop.db.dispose()
    assert {s: (r["campaign"], r["zone"], r["uses"], r["revenue"], r["discount"]) for s, r in rows.items()} == {
        "S01": ("Зима", "msk", 1, 90000, 10000),
        "S06": ("Зима", "spb", 1, 40500, 4500),
    }
