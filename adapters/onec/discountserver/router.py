"""``/<any publication>/ws/DiscountService.1cws``: the WSDL (GET ``?wsdl``) and the eight
operations (POST, SOAP 1.1 or 1.2), as a Розница 2.3 base publishes its «Дисконтный сервер».

The store enters the address with ``?wsdl`` (``АдресДисконтногоСервера``) and a user and
password (HTTP Basic; the gateway's ``till`` clients, Cyrillic logins included).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapters.onec.discountserver import booking, coupons, queries, wire, wsdl
from contracts.errors import LoyaltyError
from gateway import xmlsafe
from gateway.config import ClientConfig
from gateway.ledger.context import Ctx
from gateway.ledger.service import LoyaltyService
from gateway.soap_envelope import CONTENT_TYPE, Version

log = logging.getLogger("adapters.onec.discountserver")
DESCRIPTOR = "DiscountService.1cws"
PATHS = (f"/ws/{DESCRIPTOR}", f"/{{publication:path}}/ws/{DESCRIPTOR}")
ALLOWED_KINDS = ("till",)


def _fault(version: Version, error: wire.Fault, status: int = 500) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="discount-server", charset="UTF-8"'} if status == 401 else None
    return Response(wire.fault(version, error), status_code=status, media_type=CONTENT_TYPE[version], headers=headers)


class Handler:
    """One call: the service, who calls, and what was sent."""

    def __init__(self, service: LoyaltyService, client: ClientConfig, call: wire.Call) -> None:
        self.service = service
        self.client = client
        self.call = call
        self.zone = service.program.zone

    @contextmanager
    def _reading(self) -> Iterator[Ctx]:
        with self.service.db.read() as session:
            yield Ctx(self.service.db, session, self.service.program, self.service.clock(), self.client.id)

    @contextmanager
    def _writing(self) -> Iterator[Ctx]:
        with self.service.db.write() as session:
            yield Ctx(self.service.db, session, self.service.program, self.service.clock(), self.client.id)

    def answer(self) -> bytes:
        call, element, zone = self.call, self.call.element, self.zone
        name = call.operation.name
        if name == "ПолучитьСуммуНакопления":
            self._no_segment()
            with self._reading() as ctx:
                amount, quantity = queries.accumulations(
                    ctx,
                    wire.guid(element, "ИдентификаторКарты"),
                    wire.date(element, "ДатаНачала", zone),
                    wire.date(element, "ДатаОкончания", zone),
                    wire.guid(element, "ИдентификаторИсключаемогоДокументта"),
                )
            return wire.reply_table(
                call, "РезультатЗапроса", [{"СуммаНакопления": amount, "КоличествоНакопления": quantity}], zone
            )
        if name == "ПолучитьДанныеПоследнейПокупки":
            self._no_segment()
            with self._reading() as ctx:
                when, kopecks, thousandths = queries.last_purchase(
                    ctx,
                    wire.guid(element, "ИдентификаторКарты"),
                    wire.date(element, "ДатаРасчета", zone),
                    wire.guid(element, "ИдентификаторИсключаемогоДокументта"),
                )
            row: wire.Row = {
                "ДатаПокупки": when,
                "СуммаНакопления": Decimal(kopecks) / 100,
                "КоличествоНакопления": Decimal(thousandths) / 1000,
            }
            return wire.reply_table(call, "РезультатЗапроса", [row], zone)
        if name == "ПолучитьОстатокБонусов":
            with self._reading() as ctx:
                points = queries.balance(ctx, wire.guid(element, "ИдентификаторКарты"))
                at = wire.date(element, "ДатаЗапроса", zone) or ctx.now
            return wire.reply_table(call, "РезультатЗапроса", [{"ДатаОперации": at, "КоличествоБаллов": points}], zone)
        if name == "ПолучитьОстатокБонусовРасширенный":
            with self._reading() as ctx:
                table = queries.balance_forecast(ctx, wire.guid(element, "ИдентификаторКарты"), zone)
            return wire.reply_table(call, "РезультатЗапроса", table, zone)
        if name == "ПолучитьСкидкиПоКупону":
            code = wire.text(element, "КодКупона")
            with self._reading() as ctx:
                table = queries.coupon_discounts(ctx, code, wire.date(element, "ДатаЗапроса", zone))
            return wire.reply_table(call, "СтрокиТаблицы", table, zone)
        return wire.reply_value(call, self._update())

    def _no_segment(self) -> None:
        segment = wire.guid(self.call.element, "ИдентификаторСегмента")
        if segment is not None:
            # 1C's segments are sets of its goods the gateway does not have; an answer for all
            # goods would give a discount the store's rule does not grant.
            raise wire.Fault(
                "validation_error",
                f"Накопления по сегменту номенклатуры {segment} шлюз не ведёт: "
                "условие скидки по сегменту рассчитывается в 1С",
            )

    def _update(self) -> bool:
        element, zone, name = self.call.element, self.zone, self.call.operation.name
        document = booking.document_of(element)
        try:
            now = self.service.clock()
            if name == "ОбновитьДанныеОПродажах":
                lines = booking.sales_of(element, zone, now)
                return booking.run(self._writing, lambda ctx: booking.update_sales(ctx, document, lines))
            if name == "ОбновитьДанныеОБонусах":
                target = booking.bonuses_of(element, zone)
                return booking.run(self._writing, lambda ctx: booking.update_bonuses(ctx, document, target))
            states = coupons.coupons_of(element, zone)
            return booking.run(self._writing, lambda ctx: coupons.update_coupons(ctx, document, states))
        except (wire.Fault, LoyaltyError) as exc:
            code = exc.code if isinstance(exc, wire.Fault) else exc.code.value
            message = f"{name}: {exc.message}"
            with self.service.db.write() as session:
                booking.mark_refused(session, self.client.id, document, code, message, self.service.clock())
            if isinstance(exc, LoyaltyError):
                raise wire.Fault(code, f"Шлюз лояльности отказал: {exc.message}") from exc
            raise


def _read_body(request: Request) -> Any:
    async def read() -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > xmlsafe.MAX_BYTES:
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > xmlsafe.MAX_BYTES:
                return None
        return body

    return read()


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def description(request: Request) -> Response:
        if "wsdl" not in {key.lower() for key in request.query_params}:
            return Response("Дисконтный сервер: добавьте ?wsdl к адресу", media_type="text/plain; charset=utf-8")
        return Response(wsdl.wsdl(str(request.url.replace(query=""))), media_type="text/xml; charset=utf-8")

    async def operation(request: Request) -> Response:
        version: Version = "1.2" if "application/soap+xml" in request.headers.get("content-type", "") else "1.1"
        body = await _read_body(request)
        if body is None:
            return _fault(version, wire.Fault("validation_error", "Сообщение больше допустимого размера"))
        try:
            authenticator = request.app.state.authenticator
            client = authenticator.from_header(request.headers.get("authorization"), capability="loyalty")
        except LoyaltyError as exc:
            return _fault(version, wire.Fault(exc.code.value, "Неверное имя пользователя или пароль"), status=401)
        if client.kind not in ALLOWED_KINDS:
            return _fault(version, wire.Fault("forbidden", "Пользователь шлюза не является кассой (kind: till)"), 403)
        try:
            call = wire.open_call(xmlsafe.parse(body, request.headers.get("content-type")))
        except xmlsafe.UnsafeXml as exc:
            return _fault(version, wire.Fault("validation_error", f"Некорректный XML: {exc}"))
        except wire.Fault as exc:
            return _fault(version, exc)
        handler = Handler(request.app.state.service, client, call)
        try:
            payload = await run_in_threadpool(handler.answer)
        except wire.Fault as exc:
            return _fault(call.version, exc)
        except LoyaltyError as exc:
            return _fault(call.version, wire.Fault(exc.code.value, exc.message))
        except Exception:
            log.exception("discount server %s by %s failed", call.operation.name, client.id)
            return _fault(call.version, wire.Fault("internal_error", "Внутренняя ошибка шлюза", sender=False))
        return Response(payload, media_type=CONTENT_TYPE[call.version])

    for path in PATHS:
        router.add_api_route(path, description, methods=["GET"])
        router.add_api_route(path, operation, methods=["POST"])
    return router
