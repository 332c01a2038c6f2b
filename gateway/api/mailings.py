"""Mailings and one-off grants to an audience (capability ``marketing``: marketers and
operators), and the customer's unsubscribe page (public, the link's signed token is the key).

* ``POST /api/v1/audiences/size`` — how many customers an audience holds;
* ``POST /api/v1/mailings/preview`` — audience, consent, expected holdout, SMS parts and cost;
* ``POST /api/v1/mailings`` (``Idempotency-Key``) — a draft; ``GET …/{id}``, ``GET …/{id}/preview``;
* ``POST /api/v1/mailings/{id}/send`` — approve: the planner job queues it in batches;
  ``POST …/{id}/cancel`` — stop planning; ``GET …/{id}/report`` — delivery, opt-outs, uplift;
* ``POST /api/v1/grants`` (``Idempotency-Key``) — points to an audience; ``GET …/{id}``;
* ``GET /u/{token}`` — «Отписаться?» page; ``POST /u/{token}`` — confirm (also the mail
  client's one-click POST of RFC 8058).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from gateway.api.auth import require_marketing
from gateway.api.v1 import ERRORS, IdempotencyKey, Service, _key
from gateway.audience import Audience, audience_size
from gateway.config import ClientConfig, GatewayConfig
from gateway.mailings import grants, report, store, unsubscribe
from gateway.mailings.requests import (
    GrantRequest,
    GrantResult,
    MailingPreview,
    MailingReport,
    MailingRequest,
    MailingResult,
)

router = APIRouter(prefix="/api/v1", tags=["mailings"])
public = APIRouter(tags=["unsubscribe"], include_in_schema=False)
Marketer = Annotated[ClientConfig, Depends(require_marketing)]


def _config(request: Request) -> GatewayConfig:
    config: GatewayConfig = request.app.state.config
    return config


Config = Annotated[GatewayConfig, Depends(_config)]


class AudienceSize(BaseModel):
    size: int
    audience_text: str


@router.post("/audiences/size", response_model=AudienceSize, responses=ERRORS)
def size(body: Audience, _client: Marketer, service: Service) -> AudienceSize:
    with service.db.read() as session:
        return AudienceSize(size=audience_size(session, service.program, body), audience_text=body.describe())


@router.post("/mailings/preview", response_model=MailingPreview, responses=ERRORS)
def preview_request(body: MailingRequest, _client: Marketer, service: Service, config: Config) -> MailingPreview:
    return store.preview(service, config, body)


@router.post("/mailings", response_model=MailingResult, responses=ERRORS)
def create(
    body: MailingRequest, client: Marketer, service: Service, config: Config, key: IdempotencyKey = None
) -> MailingResult:
    return store.result(store.create(service, config, client.id, _key(key), body))


@router.get("/mailings/{mailing_id}", response_model=MailingResult, responses=ERRORS)
def show(mailing_id: str, _client: Marketer, service: Service) -> MailingResult:
    return store.result(store.read(service, mailing_id))


@router.get("/mailings/{mailing_id}/preview", response_model=MailingPreview, responses=ERRORS)
def preview(mailing_id: str, _client: Marketer, service: Service, config: Config) -> MailingPreview:
    return store.preview(service, config, store.request_of(store.read(service, mailing_id)))


@router.post("/mailings/{mailing_id}/send", response_model=MailingResult, responses=ERRORS)
def send(mailing_id: str, _client: Marketer, service: Service) -> MailingResult:
    return store.result(store.start(service, mailing_id))


@router.post("/mailings/{mailing_id}/cancel", response_model=MailingResult, responses=ERRORS)
def cancel(mailing_id: str, _client: Marketer, service: Service) -> MailingResult:
    return store.result(store.cancel(service, mailing_id))


@router.get("/mailings/{mailing_id}/report", response_model=MailingReport, responses=ERRORS)
def mailing_report(mailing_id: str, _client: Marketer, service: Service) -> MailingReport:
    return report.report(service, mailing_id)


@router.post("/grants", response_model=GrantResult, responses=ERRORS)
def create_grant(body: GrantRequest, client: Marketer, service: Service, key: IdempotencyKey = None) -> GrantResult:
    """Points to every customer of the audience; booked in batches by the mailings job."""
    return grants.result(service, grants.create(service, client.id, _key(key), body).id)


@router.get("/grants/{grant_id}", response_model=GrantResult, responses=ERRORS)
def show_grant(grant_id: str, _client: Marketer, service: Service) -> GrantResult:
    return grants.result(service, grant_id)


_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _page(title: str, text: str, form: str = "", status: int = 200) -> HTMLResponse:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


_NOT_OURS = (
    "Ссылка недействительна",
    "Эта ссылка для отписки повреждена или устарела. Проверьте, что она скопирована целиком.",
)


@public.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, service: Service, config: Config) -> HTMLResponse:
    """Asks first: a link opened by a mail scanner or a preview must not unsubscribe anyone."""
    if unsubscribe.find(service, token) is None:
        return _page(*_NOT_OURS, status=404)
    form = (
        f'<form method="post" action="/u/{html.escape(token)}">'
        '<button type="submit" style="font-size: 1.2em">Отписаться</button></form>'
    )
    return _page("Отписка от рассылки", config.mailings.unsubscribe_question, form)


@public.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe_confirm(token: str, service: Service, config: Config) -> HTMLResponse:
    found = unsubscribe.find(service, token)
    if found is None:
        return _page(*_NOT_OURS, status=404)
    unsubscribe.opt_out(service, found)
    return _page("Вы отписались", config.mailings.unsubscribe_done)
