"""The service as 1C:Розница 2.3 declares it: namespace, operations with their parameters (names
and misspellings exactly as in ``WebServices/ДисконтныйСервер.xml``) and the XDTO object types
of ``XDTOPackages/ДисконтныйСервер/Ext/Package.bin`` (DeZargo/1c_retail_apple)."""

from __future__ import annotations

from dataclasses import dataclass

NS = "http://localhost/rt2discountservice"
SERVICE = "ДисконтныйСервер"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True, slots=True)
class Prop:
    name: str
    type: str  # "xs:string", "xs:decimal"… or the local name of an object type of NS
    nillable: bool = False
    many: bool = False  # lowerBound 0, upperBound -1


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    params: tuple[Prop, ...]
    returns: str
    returns_nillable: bool = True


TYPES: dict[str, tuple[Prop, ...]] = {
    "СтрокаРезультатаЗапросаОНакоплениях": (
        Prop("СуммаНакопления", "xs:decimal"),
        Prop("КоличествоНакопления", "xs:decimal"),
    ),
    "РезультатЗапросаОНакоплениях": (
        Prop("РезультатЗапроса", "СтрокаРезультатаЗапросаОНакоплениях", nillable=True, many=True),
    ),
    "СтрокаРезультатаЗапросаОПоследнейПокупке": (
        Prop("ДатаПокупки", "xs:dateTime"),
        Prop("СуммаНакопления", "xs:decimal"),
        Prop("КоличествоНакопления", "xs:decimal"),
    ),
    "РезультатЗапросаОПоследнейПокупке": (
        Prop("РезультатЗапроса", "СтрокаРезультатаЗапросаОПоследнейПокупке", nillable=True, many=True),
    ),
    "СтрокаРезультатаЗапросаОБонусах": (
        Prop("ДатаОперации", "xs:dateTime"),
        Prop("КоличествоБаллов", "xs:decimal"),
    ),
    "РезультатЗапросаОБонусах": (
        Prop("РезультатЗапроса", "СтрокаРезультатаЗапросаОБонусах", nillable=True, many=True),
    ),
    "СтрокаРезультатаЗапросаОБонусахРасширенного": (
        Prop("ПредставлениеПериода", "xs:string"),
        Prop("КоличествоБаллов", "xs:decimal"),
        Prop("Изменение", "xs:decimal"),
        Prop("ТекущийОстаток", "xs:boolean"),
    ),
    "РезультатЗапросаОБонусахРасширенный": (
        Prop("РезультатЗапроса", "СтрокаРезультатаЗапросаОБонусахРасширенного", nillable=True, many=True),
    ),
    "СтрокаТаблицыПродаж": (
        Prop("Период", "xs:dateTime"),
        Prop("ИдентификаторКарты", "xs:string", nillable=True),
        Prop("ИдентификаторНоменклатуры", "xs:string", nillable=True),
        Prop("ИдентификаторХарактеристики", "xs:string", nillable=True),
        Prop("Сумма", "xs:decimal", nillable=True),
        Prop("Количество", "xs:decimal", nillable=True),
    ),
    "ТаблицаПродаж": (Prop("СтрокиТаблицы", "СтрокаТаблицыПродаж", nillable=True, many=True),),
    "СтрокаТаблицыБонусов": (
        Prop("Период", "xs:dateTime"),
        Prop("ВидДвижения", "xs:decimal"),
        Prop("ИдентификаторБонуснойПрограммы", "xs:string", nillable=True),
        Prop("ИдентификаторКарты", "xs:string", nillable=True),
        Prop("Начислено", "xs:decimal", nillable=True),
        Prop("КСписанию", "xs:decimal", nillable=True),
    ),
    "ТаблицаБонусов": (Prop("СтрокиТаблицы", "СтрокаТаблицыБонусов", nillable=True, many=True),),
    "СтрокаТаблицыКупонов": (
        Prop("Период", "xs:dateTime"),
        Prop("ИдентификаторСкидки", "xs:string", nillable=True),
        Prop("КодКупона", "xs:string", nillable=True),
        Prop("Состояние", "xs:string", nillable=True),
        Prop("ИдентификаторМагазина", "xs:string", nillable=True),
        Prop("ПериодДействия", "xs:dateTime"),
    ),
    "ТаблицаКупонов": (Prop("СтрокиТаблицы", "СтрокаТаблицыКупонов", nillable=True, many=True),),
}

_CARD = Prop("ИдентификаторКарты", "xs:string")
_SEGMENT = Prop("ИдентификаторСегмента", "xs:string")
# Misspelt in 1C's metadata (double «т»): the WSDL, and so every request, carries this name.
_EXCLUDED = Prop("ИдентификаторИсключаемогоДокументта", "xs:string")
_DOC_TYPE = Prop("ТипДокумента", "xs:string")
_DOC_REF = Prop("ИдентификаторДокумента", "xs:string")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "ПолучитьСуммуНакопления",
        (_CARD, Prop("ДатаНачала", "xs:dateTime"), Prop("ДатаОкончания", "xs:dateTime"), _SEGMENT, _EXCLUDED),
        "РезультатЗапросаОНакоплениях",
    ),
    # Declared as a string; 1C's own implementation returns an object (see wire.RETURNED_TYPE).
    Operation(
        "ПолучитьДанныеПоследнейПокупки", (_CARD, Prop("ДатаРасчета", "xs:dateTime"), _SEGMENT, _EXCLUDED), "xs:string"
    ),
    Operation("ПолучитьОстатокБонусов", (_CARD, Prop("ДатаЗапроса", "xs:dateTime")), "РезультатЗапросаОНакоплениях"),
    Operation(
        "ПолучитьОстатокБонусовРасширенный", (_CARD, Prop("ДатаЗапроса", "xs:dateTime")), "РезультатЗапросаОНакоплениях"
    ),
    Operation("ОбновитьДанныеОПродажах", (_DOC_TYPE, _DOC_REF, Prop("ТаблицаТоваров", "ТаблицаПродаж")), "xs:boolean"),
    Operation("ОбновитьДанныеОБонусах", (_DOC_TYPE, _DOC_REF, Prop("ТаблицаБонусов", "ТаблицаБонусов")), "xs:boolean"),
    Operation(
        "ОбновитьДанныеОКупонах",
        (_DOC_TYPE, _DOC_REF, Prop("ТаблицаКупонов", "ТаблицаКупонов", nillable=True)),
        "xs:boolean",
    ),
    Operation(
        "ПолучитьСкидкиПоКупону",
        (Prop("КодКупона", "xs:string"), Prop("ДатаЗапроса", "xs:dateTime")),
        "ТаблицаКупонов",
        returns_nillable=False,
    ),
)
BY_NAME = {operation.name: operation for operation in OPERATIONS}
