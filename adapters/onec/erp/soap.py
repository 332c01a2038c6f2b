"""The ERP through a web service its 1C developer publishes (``wsdl/loyalty_erp.wsdl``), with zeep.

The service assembles each order's whole state on the ERP side (the order, the sales documents
that shipped it, the returns, the card number, shipment lines already tied to order lines), so
one ``GetChangedOrders`` call brings a page of orders: the best batching there is. The cursor is
the ERP's own (for instance an exchange-plan message number): the gateway stores it and sends it
back, and the ERP treats a cursor as the acknowledgement of everything before it.

zeep is hardened: the WSDL is read from the package (no network), DTDs, entities and external
references are refused, huge trees are not allowed, and every operation has its timeout. One
``requests`` session (a pool of kept-alive connections) serves every call; HTTP Basic carries the
login as UTF-8 (Cyrillic logins work).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from requests.adapters import HTTPAdapter

from adapters.onec.erp.calls import basic_auth_header, call, classify_status
from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.documents import Document, DocumentLine, OrderDocument, OrderLine, OrderState, ref_or_none
from adapters.onec.erp.mapping import map_state
from gateway.core.erp import (
    CallGuard,
    CallKind,
    ErpLoyaltyResult,
    ErpOrderChange,
    ErpPage,
    ErpRejected,
    ErpUnavailable,
)

WSDL = Path(__file__).parent / "wsdl" / "loyalty_erp.wsdl"
NAMESPACE = "urn:loyalty-gateway:erp"
BINDINGS = {"soap11": f"{{{NAMESPACE}}}LoyaltyErpSoapBinding", "soap12": f"{{{NAMESPACE}}}LoyaltyErpSoap12Binding"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _naive(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ErpRejected(f"not a date: {value!r}")
    return value


def _decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _plain(value: Any) -> dict[str, Any]:
    data = zeep.helpers.serialize_object(value, dict)  # type: ignore[no-untyped-call]
    return dict(data) if data else {}


class SoapTransport:
    """``ErpPort`` over the ERP's published web service."""

    def __init__(self, config: ErpConfig, guard: CallGuard, *, session: requests.Session | None = None) -> None:
        self.config = config
        self.name = config.name
        self.guard = guard
        parallel = max([config.throttle.concurrency, *(w.concurrency for w in config.throttle.windows)])
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(parallel, 1), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Authorization"] = basic_auth_header(config.login, config.password.get_secret_value())
        transport = zeep.Transport(  # type: ignore[no-untyped-call]
            session=self.session,
            timeout=config.connect_timeout_seconds,
            operation_timeout=(config.connect_timeout_seconds, config.read_timeout_seconds),
        )
        settings = zeep.Settings(
            strict=True,
            xml_huge_tree=False,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        wsdl = config.soap.wsdl or str(WSDL)
        self.client = zeep.Client(wsdl=wsdl, transport=transport, settings=settings)  # type: ignore[no-untyped-call]
        address = f"{config.root}{config.soap.path}"
        self.service = self.client.create_service(BINDINGS[config.soap.binding], address)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.session.close()

    def _call(self, operation: str, kind: CallKind, what: str, **arguments: Any) -> Any:
        def attempt() -> Any:
            try:
                return getattr(self.service, operation)(**arguments)
            except requests.Timeout as exc:
                raise ErpUnavailable(f"{what}: timeout ({type(exc).__name__})") from exc
            except requests.ConnectionError as exc:
                raise ErpUnavailable(f"{what}: {type(exc).__name__}") from exc
            except zeep.exceptions.TransportError as exc:
                content = exc.content.decode("utf-8", "replace") if isinstance(exc.content, bytes) else ""
                raise classify_status(int(exc.status_code or 0), what, content) from exc
            except zeep.exceptions.Fault as exc:
                raise ErpRejected(f"{what}: SOAP fault {exc.code or ''}: {exc.message}") from exc
            except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError) as exc:
                raise ErpUnavailable(f"{what}: the answer is not readable XML: {exc}") from exc
            except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden) as exc:
                raise ErpRejected(f"{what}: the answer carries a DTD or entities (refused)") from exc
            except zeep.exceptions.ValidationError as exc:
                raise ErpRejected(f"{what}: {exc}") from exc

        return call(self.guard, kind, self.config.retry, what, attempt, attempts=1 if kind == "push" else None)

    # -- reading ------------------------------------------------------------------------------

    def _state(self, order: dict[str, Any]) -> OrderState:
        def document(data: dict[str, Any]) -> Document:
            return Document(
                ref=str(data["Ref"]),
                data_version=str(data.get("DataVersion") or ""),
                date=_naive(data["Date"]),
                changed=data.get("ChangedAt"),
                posted=bool(data.get("Posted")),
                deleted=bool(data.get("DeletionMark")),
                lines=tuple(
                    DocumentLine(
                        item_ref=str(line.get("ItemRef") or ""),
                        characteristic_ref=ref_or_none(line.get("CharacteristicRef")),
                        quantity=_decimal(line.get("Quantity")),
                        line_id=_text(line.get("LineId")),
                    )
                    for line in data.get("Line") or []
                ),
            )

        head = OrderDocument(
            ref=str(order["Ref"]),
            number=_text(order.get("Number")),
            data_version=str(order.get("DataVersion") or ""),
            date=_naive(order["Date"]),
            changed=order.get("ChangedAt"),
            posted=bool(order.get("Posted")),
            deleted=bool(order.get("DeletionMark")),
            status=_text(order.get("Status")),
            lines=tuple(
                OrderLine(
                    line_id=str(line["LineId"]),
                    item_ref=str(line.get("ItemRef") or ""),
                    characteristic_ref=ref_or_none(line.get("CharacteristicRef")),
                    item_name=_text(line.get("ItemName")),
                    price_type_ref=ref_or_none(line.get("PriceTypeRef")),
                    quantity=_decimal(line.get("Quantity")),
                    price=_decimal(line.get("Price")),
                    amount=_decimal(line.get("Amount")),
                    cancelled=bool(line.get("Cancelled")),
                    points=_decimal(line.get("Points")),
                )
                for line in order.get("Line") or []
            ),
            card_ref=ref_or_none(order.get("CardRef")),
            card_number=_text(order.get("CardNumber")),
            partner_ref=ref_or_none(order.get("PartnerRef")),
            store_ref=ref_or_none(order.get("StoreRef")),
        )
        return OrderState(
            order=head,
            shipments=[document(d) for d in order.get("Shipment") or []],
            returns=[document(d) for d in order.get("Return") or []],
            changed_at=order.get("ChangedAt"),
        )

    def _changes(self, orders: list[dict[str, Any]]) -> list[ErpOrderChange]:
        try:
            return [map_state(self._state(order), self.config.mapping) for order in orders]
        except (KeyError, TypeError, ValueError) as exc:
            raise ErpRejected(f"the ERP's answer does not follow the WSDL: {exc!r}") from exc

    def changed_orders(self, cursor: str | None, limit: int) -> ErpPage:
        answer = self._call("GetChangedOrders", "pull", "changed orders", Cursor=cursor, Limit=limit)
        data = _plain(answer)
        remaining = data.get("Remaining")
        return ErpPage(
            changes=self._changes(list(data.get("Order") or [])),
            next_cursor=_text(data.get("NextCursor")) or cursor,
            more=bool(data.get("More")),
            remaining=int(remaining) if remaining is not None else None,
            calls=1,
        )

    def fetch_orders(self, order_ids: Sequence[str]) -> list[ErpOrderChange]:
        if not order_ids:
            return []
        answer = self._call("GetOrders", "pull", "orders", Refs={"Ref": list(order_ids)})
        data = _plain(answer)
        return self._changes(list(data.get("Order") or []))

    def backlog(self, cursor: str | None) -> int | None:
        answer = self._call("CountChanges", "pull", "count of changes", Cursor=cursor)
        return int(answer) if answer is not None else None

    # -- results ------------------------------------------------------------------------------

    def push_results(self, results: Sequence[ErpLoyaltyResult]) -> None:
        if not results:
            return
        payload = {
            "Result": [
                {
                    "OrderRef": r.order_id,
                    "Version": r.version,
                    "Status": r.status,
                    "CardNumber": r.card_number,
                    "PointsSpent": r.points_spent,
                    "PointsPending": r.points_pending,
                    "PointsAvailable": r.points_available,
                    "PointsAccrued": r.points_accrued,
                    "PointsShortfall": r.points_shortfall,
                    "Balance": r.balance_available,
                    "UpdatedAt": r.updated_at,
                }
                for r in results
            ]
        }
        self._call("PutLoyaltyResults", "push", f"loyalty results of {len(results)} orders", Results=payload)
