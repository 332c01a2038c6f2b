"""calculatediscounts: 1C's cart in, our calculation out, in exactly the fields the till reads.

The request is what 1C:УНФ's cashier workplace builds (``AlexanderYekat/unf``
``CommonModules/ОбщегоНазначенияРМК`` ``ПолучитьСтруктуруПараметровРасчетаСкидок``,
``ПолучитьТаблицуТоваров``, ``ПолучитьТаблицуПромокодов``); the reply is read by the same module
(``РассчитатьАвтоматическиеСкидки`` and ``ПолучитьТаблицу…ИзЗапроса``): every field it reads is
present, because the till reads them without checking and an absent one aborts the calculation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from adapters.onec.loyaltyservice.config import OneCConfig
from adapters.onec.loyaltyservice.wire import WireError, as_bool, as_decimal, format_date, json_number, ref_of
from contracts.operations import CalculateResult, CartLine
from gateway.core.program import Program
from gateway.ledger.mappings import Unmapped

SOURCE = "onec"
MAX_LINES = 1000
MAX_CARD_CHARS = 64
MAX_PROMOCODES = 5
# Discount references the till stores are GUIDs: one stable GUID per rule of the program.
DISCOUNT_NAMESPACE = uuid.UUID("6f1c2d7e-3b54-4c1e-9a0e-1c0000000001")


def lowered(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


@dataclass
class Promo1C:
    code: str
    uid: str
    discount_uid: str


@dataclass
class Cart1C:
    lines: list[CartLine]
    store: str | None
    card_ids: list[str]
    is_return: bool
    block_bonuses: bool
    want_max_pay: bool
    promos: list[Promo1C]
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
    return cfg.default_store or ref[:128]


def _price_type(cfg: OneCConfig, data: dict[str, Any]) -> str | None:
    """The price type of the till's prices: the cart's ``PriceType`` if sent, else the store's."""
    ref, _ = ref_of(data.get("pricetype"))
    if ref is not None:
        mapped = cfg.price_types.get(ref) or cfg.price_types.get(ref.lower())
        # Unmapped: the program's catalogue may know the 1C GUID itself (price type ``refs``).
        return mapped or ref[:128]
    store, _ = ref_of(data.get("retailstore"))
    if store is None:
        return None
    return cfg.store_price_types.get(store) or cfg.store_price_types.get(store.lower())


def _card_ids(value: Any) -> list[str]:
    """``LoyaltyCardsList``: card codes, or the cards' GUIDs (servers above 3.0.7.1)."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) > 10:
        raise WireError("LoyaltyCardsList: more than 10 cards")
    ids: list[str] = []
    for item in items:
        if isinstance(item, dict):
            data = lowered(item)
            item = next((data[k] for k in ("barcode", "clientcardid", "cardguid", "magneticcode") if data.get(k)), "")
        text = str(item).replace(" ", "").strip()
        if len(text) > MAX_CARD_CHARS:
            raise WireError(f"LoyaltyCardsList: a card id longer than {MAX_CARD_CHARS} characters")
        if text:
            ids.append(text)
    return ids


def _promos(value: Any) -> list[Promo1C]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > MAX_PROMOCODES:
        raise WireError(f"PromocodesList: a list of at most {MAX_PROMOCODES} promo codes")
    promos: list[Promo1C] = []
    for item in value:
        data = lowered(item) if isinstance(item, dict) else {"promocode": item}
        code = str(data.get("promocode") or "").strip()
        if not code:
            continue
        if len(code) > 64:
            raise WireError("PromocodesList: a promo code longer than 64 characters")
        promos.append(
            Promo1C(
                code=code,
                uid=str(data.get("promocodeuid") or "")[:64],
                discount_uid=str(data.get("promocodediscountuid") or "")[:64],
            )
        )
    return promos


def parse_cart(cfg: OneCConfig, body: dict[str, Any]) -> Cart1C:
    data = lowered(body)
    missing = [name for name in ("Goods",) if name.lower() not in data]
    if missing:
        raise WireError(f"missing required fields: {', '.join(missing)}")
    goods = data["goods"]
    if isinstance(goods, dict):  # a single line sent as an object
        goods = [goods]
    if not isinstance(goods, list) or not goods:
        raise WireError("Goods must be a non-empty list")
    if len(goods) > MAX_LINES:
        raise WireError(f"Goods: more than {MAX_LINES} lines")
    unmapped: list[Unmapped] = []
    price_type = _price_type(cfg, data)
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
        quantity = abs(as_decimal(good.get("count"), f"Goods[{index}].Count", places=3))
        price = abs(as_decimal(good.get("price"), f"Goods[{index}].Price"))
        # Amount is price x packages less the manual discount; the automatic discount is ours.
        amount = (
            abs(as_decimal(good["amount"], f"Goods[{index}].Amount")) if good.get("amount") not in (None, "") else None
        )
        try:
            lines.append(
                CartLine(
                    line_id=str(good.get("lineuid") or index)[:64],
                    item=item[:128],
                    item_name=(name or None) and name[:256],
                    price_type=price_type,
                    quantity=quantity,
                    price=price,
                    amount=amount,
                )
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise WireError(f"Goods[{index}].{field}: {first['msg']}") from exc
    block = data.get("blockbonuses")
    return Cart1C(
        lines=lines,
        store=map_store(cfg, data.get("retailstore"), unmapped),
        card_ids=_card_ids(data.get("loyaltycardslist")),
        is_return=as_bool(data.get("return")),
        # The till sends "1"/"0" (a string) for BlockBonuses: ОбщегоНазначенияРМК.
        block_bonuses=str(block).strip() == "1" or block is True,
        want_max_pay=as_bool(data.get("getmaxbonuspay")),
        promos=_promos(data.get("promocodeslist")),
        unmapped=unmapped,
        goods=goods,
    )


def discount_ref(rule: str) -> dict[str, str]:
    return {"Ref": str(uuid.uuid5(DISCOUNT_NAMESPACE, rule)), "Name": rule}


def _goods_reply(cart: Cart1C, result: CalculateResult | None) -> list[dict[str, Any]]:
    """The till's lines back with our automatic discount in them: the till takes ``Amount``,
    ``AmountOfAutomaticDiscount`` and ``PercentOfAutomaticDiscount`` of the line with the same
    ``LineUID`` (and only when the percent changed)."""
    by_line = {line.line_id: line for line in result.lines} if result is not None else {}
    reply: list[dict[str, Any]] = []
    for raw, line in zip(cart.goods, cart.lines, strict=True):
        good = lowered(raw)
        total = line.total()
        ours = by_line.get(line.line_id)
        discount = ours.discount if ours is not None else Decimal(0)
        manual = (
            as_decimal(good["amountofmanualdiscount"], "AmountOfManualDiscount")
            if good.get("amountofmanualdiscount") not in (None, "")
            else Decimal(0)
        )
        gross = total + manual
        percent = (discount * 100 / gross).quantize(Decimal("0.01")) if gross else Decimal(0)
        reply.append(
            {
                "LineUID": good.get("lineuid") or line.line_id,
                "Item": good.get("item"),
                "Package": good.get("package") or {"Ref": "", "Name": ""},
                "Variant": good.get("variant") or {"Ref": "", "Name": ""},
                "Count": json_number(line.quantity),
                "PackagesCount": json_number(
                    as_decimal(good["packagescount"], "PackagesCount", places=3)
                    if good.get("packagescount") not in (None, "")
                    else line.quantity
                ),
                "Price": json_number(line.price),
                "Amount": json_number(total - discount),
                "AmountOfAutomaticDiscount": json_number(discount),
                "PercentOfAutomaticDiscount": json_number(percent),
                "AmountOfManualDiscount": json_number(manual),
                "PercentOfManualDiscount": json_number(
                    as_decimal(good["percentofmanualdiscount"], "PercentOfManualDiscount")
                    if good.get("percentofmanualdiscount") not in (None, "")
                    else 0
                ),
                "TotalAmount": json_number(gross),
                "VATAmount": json_number(
                    as_decimal(good["vatamount"], "VATAmount") if good.get("vatamount") not in (None, "") else 0
                ),
                "VATRate": good.get("vatrate") or "",
            }
        )
    return reply


def _discounts(cart: Cart1C, result: CalculateResult) -> list[dict[str, Any]]:
    """Every program discount per line (partner/segment, zone, price type, promo code…), keyed
    by the line's number and ``LineUID`` as ``ПолучитьТаблицуСкидокНаценокИзЗапроса`` reads it."""
    numbers = {line.line_id: n for n, line in enumerate(cart.lines, start=1)}
    discounts: list[dict[str, Any]] = []
    for application in result.explanation:
        if application.line_id is None or application.discount <= 0 or application.line_id not in numbers:
            continue
        discounts.append(
            {
                "KeyRelation": numbers[application.line_id],
                "LineUID": application.line_id,
                "Discount": {**discount_ref(application.rule), "Name": application.description or application.rule},
                "Amount": json_number(application.discount),
                "DiscountValue": json_number(application.discount),
                "MinimalPriceRestriction": False,
                "Return": cart.is_return,
            }
        )
    return discounts


def promocodes_reply(cart: Cart1C, active: dict[str, str | None]) -> list[dict[str, Any]]:
    """``PromocodesList`` replaces the till's list: each code it sent, applied or with the reason."""
    reply: list[dict[str, Any]] = []
    for promo in cart.promos:
        reason = active.get(promo.code.upper(), "Промокод не найден")
        reply.append(
            {
                "Promocode": promo.code,
                "PromocodeUID": promo.uid or str(uuid.uuid4()),
                "PromocodeActivation": False,
                "DiscountActive": reason is None,
                "ErrorDescription": reason or "",
                "PromocodeDiscount": discount_ref(f"promo:{promo.code.upper()}")
                if not promo.discount_uid
                else {"Ref": promo.discount_uid, "Name": promo.code},
                "DiscountCondition": {"Ref": "", "Name": ""},
            }
        )
    return reply


def loyalty_card(
    cfg: OneCConfig,
    program: Program,
    *,
    barcode: str,
    card_ref: str,
    client_ref: str,
    name: str,
    phone: str,
    email: str,
    birth: str,
    points: int,
    blocked: bool,
    sell_count: Decimal = Decimal(0),
    search_type: str = "",
) -> dict[str, Any]:
    """``LoyaltyCard`` with every field the till reads (``ИнтерфейсРМКСлужебный``
    ``ЗаполнитьПараметрыКартыЛояльности`` and ``ОтобразитьИнформациюОБонусныхБаллах``)."""
    return {
        "ClientName": name,
        "IsPerson": True,
        "DateOfBirth": birth,
        "Phone": phone,
        "Email": email,
        "Barcode": barcode,
        "MagneticCode": "",
        "CardGUID": card_ref,
        "ClientGUID": client_ref,
        "IsBlocked": blocked,
        "BonusData": {
            "PaymentPercent": json_number(program.redemption.max_share_percent),
            "BonusCount": 0 if blocked else points,
            "BonusRate": json_number(program.point_value),
            "BonusCurrency": cfg.bonus_currency,
        },
        "SellCount": json_number(sell_count),
        "SearchType": search_type,
        "Valid": not blocked,
    }


def calculation_reply(
    cfg: OneCConfig,
    program: Program,
    cart: Cart1C,
    result: CalculateResult | None,
    now: datetime,
    *,
    card: dict[str, Any] | None,
    promo_state: dict[str, str | None],
) -> dict[str, Any]:
    """The calculatediscounts reply: the goods back, discounts, points to accrue, the card."""
    zone = cfg.zone
    program_ref = {"Ref": cfg.bonus_program.ref, "Name": cfg.bonus_program.name}
    accrual_at = now + timedelta(days=program.accrual.pending_days)
    write_off_at = accrual_at + timedelta(days=program.expiry.days) if program.expiry.days else None
    bonuses: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    if result is not None and not cart.is_return and card is not None:
        for number, line in enumerate(result.lines, start=1):
            if line.points_accrued:
                bonuses.append(
                    {
                        "KeyRelation": number,  # the line's number: ПолучитьТаблицуБонусовИзЗапроса
                        "LineUID": line.line_id,
                        "Discount": program_ref,
                        "BonusProgramm": program_ref,
                        "BonusCount": line.points_accrued,
                        "AccuralDate": format_date(accrual_at, zone),
                        "WriteOffDate": format_date(write_off_at, zone),
                    }
                )
        if result.points_to_accrue:
            messages.append({"AfterSale": True, "MessageText": f"Будет начислено бонусов: {result.points_to_accrue}"})
    reply: dict[str, Any] = {
        "Goods": _goods_reply(cart, result),
        "DiscountsList": _discounts(cart, result) if result is not None else [],
        "Gifts": [],
        "Messages": messages,
        "BonusesToAccrue": bonuses,
        "PromocodesList": promocodes_reply(cart, promo_state),
        "CurrentDiscounts": [],
        "LoyaltyCardDescription": {"CardNotFound": card is None, "LoyaltyCard": card or {}},
    }
    if cart.want_max_pay:
        # Money the till may take in points, on the prices it will charge (after our discounts).
        points = result.max_points_payable if result is not None and card is not None else 0
        reply["MaxBonusPay"] = json_number(Decimal(points) * program.point_value)
    return reply
