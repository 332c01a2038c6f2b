"""calculatediscounts: 1C's cart in, our calculation out, in the contract's field names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from adapters.onec.loyaltyservice.config import OneCConfig
from adapters.onec.loyaltyservice.wire import WireError, as_bool, as_decimal, format_date, ref_of
from contracts.operations import CalculateResult, CartLine
from gateway.core.program import Program
from gateway.ledger.mappings import Unmapped

SOURCE = "onec"


def lowered(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


@dataclass
class Cart1C:
    lines: list[CartLine]
    store: str | None
    card_numbers: list[str]
    is_return: bool
    want_max_pay: bool
    unmapped: list[Unmapped]
    goods: list[dict[str, Any]]


def map_store(cfg: OneCConfig, value: Any, unmapped: list[Unmapped]) -> str | None:
    ref, name = ref_of(value)
    if ref is None:
        return None
    mapped = cfg.stores.get(ref) or cfg.stores.get(ref.lower())
    if mapped is not None:
        return mapped
    unmapped.append(Unmapped(SOURCE, "store", ref, name))
    return cfg.default_store or ref


def _card_numbers(value: Any) -> list[str]:
    """LoyaltyCardsList: a list of card numbers, or of objects carrying one."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else [value]
    numbers: list[str] = []
    for item in items:
        if isinstance(item, dict):
            data = lowered(item)
            for key in ("clientcardid", "barcode", "cardid", "cardnumber", "number", "magneticcode"):
                if data.get(key):
                    numbers.append(str(data[key]).strip())
                    break
        elif str(item).strip():
            numbers.append(str(item).strip())
    return numbers


def parse_cart(cfg: OneCConfig, body: dict[str, Any]) -> Cart1C:
    data = lowered(body)
    missing = [name for name in ("ObjectTime", "LoyaltyCardsList", "Goods", "RetailStore") if name.lower() not in data]
    if missing:
        raise WireError(f"missing required fields: {', '.join(missing)}")
    goods = data["goods"]
    if isinstance(goods, dict):  # a single line sent as an object
        goods = [goods]
    if not isinstance(goods, list) or not goods:
        raise WireError("Goods must be a non-empty list")
    unmapped: list[Unmapped] = []
    lines: list[CartLine] = []
    for index, raw in enumerate(goods, start=1):
        if not isinstance(raw, dict):
            raise WireError(f"Goods[{index}] must be an object")
        good = lowered(raw)
        ref, name = ref_of(good.get("item"))
        if ref is None:
            raise WireError(f"Goods[{index}].Item.Ref is required")
        item = cfg.goods.get(ref) or cfg.goods.get(ref.lower())
        if item is None:
            unmapped.append(Unmapped(SOURCE, "goods", ref, name))
            item = cfg.default_item or ref
        quantity = abs(as_decimal(good.get("count"), f"Goods[{index}].Count"))
        price = abs(as_decimal(good.get("price"), f"Goods[{index}].Price"))
        amount: Decimal | None = None
        if good.get("totalamount") not in (None, ""):
            amount = as_decimal(good["totalamount"], f"Goods[{index}].TotalAmount")
        elif good.get("amount") not in (None, ""):
            amount = as_decimal(good["amount"], f"Goods[{index}].Amount")
            for key in ("amountofautomaticdiscount", "amountofmanualdiscount"):
                if good.get(key) not in (None, ""):
                    amount -= as_decimal(good[key], f"Goods[{index}].{key}")
        try:
            lines.append(
                CartLine(
                    line_id=str(good.get("lineuid") or index),
                    item=item[:128],
                    item_name=(name or None) and name[:256],
                    quantity=quantity,
                    price=price,
                    amount=abs(amount) if amount is not None else None,
                )
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise WireError(f"Goods[{index}].{field}: {first['msg']}") from exc
    return Cart1C(
        lines=lines,
        store=map_store(cfg, data.get("retailstore"), unmapped),
        card_numbers=_card_numbers(data.get("loyaltycardslist")),
        is_return=as_bool(data.get("return")),
        want_max_pay=as_bool(data.get("getmaxbonuspay")),
        unmapped=unmapped,
        goods=goods,
    )


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def calculation_reply(
    cfg: OneCConfig,
    program: Program,
    cart: Cart1C,
    result: CalculateResult | None,
    now: datetime,
    *,
    card_found: bool,
    card_blocked: bool,
    locked: int,
) -> dict[str, Any]:
    """The calculatediscounts reply: the goods back, discounts, points to accrue, the card."""
    zone = cfg.zone
    program_ref = {"Ref": cfg.bonus_program.ref, "Name": cfg.bonus_program.name}
    accrual_at = now + timedelta(days=program.accrual.pending_days)
    write_off_at = accrual_at + timedelta(days=program.expiry.days) if program.expiry.days else None
    bonuses: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    if result is not None and not cart.is_return:
        for line in result.lines:
            if line.points_accrued:
                bonuses.append(
                    {
                        "KeyRelation": line.line_id,
                        "Discount": program_ref,
                        "BonusProgramm": program_ref,
                        "BonusCount": line.points_accrued,
                        "AccuralDate": format_date(accrual_at, zone),
                        "WriteOffDate": format_date(write_off_at, zone),
                    }
                )
        if result.points_to_accrue:
            messages.append({"AfterSale": True, "MessageText": f"Будет начислено бонусов: {result.points_to_accrue}"})
    # The till's own lock is its to spend: show it as part of the card's bonuses.
    available = locked + (result.balance.available if result is not None and result.balance is not None else 0)
    reply: dict[str, Any] = {
        "Goods": _jsonable(cart.goods),
        "DiscountsList": [],
        "Messages": messages,
        "BonusesToAccrue": bonuses,
        "LoyaltyCardDescription": {
            "CardNotFound": not card_found,
            "LoyaltyCard": {"BonusData": {"BonusCount": available}, "IsBlocked": card_blocked},
        },
    }
    if cart.want_max_pay:
        reply["MaxBonusPay"] = result.max_points_payable if result is not None else 0
    return reply
