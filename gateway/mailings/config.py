"""The ``mailings:`` section of the configuration file: the public address of unsubscribe links,
who sends a mailing's SMS and e-mail, the price of one message per channel, the pace of sending
and the texts a customer reads about unsubscribing."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["sms", "email"]

DEFAULT_FOOTERS: dict[Channel, str] = {
    "sms": "Отписаться: {unsubscribe_url}",
    "email": "\n\nВы получили это письмо, потому что согласились получать наши новости. Отписаться: {unsubscribe_url}",
}


class MailingsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+[^/\s]$",
        description="Where customers reach the gateway (https://loyalty.shop.ru): unsubscribe links start "
        "with it; advertising mailings need it",
    )
    chains: dict[Channel, list[str]] = Field(
        default_factory=dict,
        description="Providers (of notifications.providers) tried in order per channel; sms defaults to the "
        "notification chain",
    )
    prices: dict[Channel, Decimal] = Field(
        default_factory=dict, description="Roubles per message (per SMS part) for the preview's cost estimate"
    )
    per_minute: int = Field(default=600, ge=1, le=1_000_000, description="Messages of one mailing per minute")
    batch: int = Field(default=200, ge=1, le=5000, description="Customers planned per write transaction")
    holdout_percent: int = Field(
        default=10, ge=0, le=50, description="Default share of an advertising mailing that gets nothing (service: none)"
    )
    conversion_days: int = Field(default=14, ge=1, le=365, description="Default report window after sending")
    footers: dict[Channel, str] = Field(
        default_factory=lambda: dict(DEFAULT_FOOTERS),
        description="Added to advertising whose template has no {unsubscribe_url}",
    )
    unsubscribe_question: str = Field(
        default="Отписаться от рекламных сообщений магазина? Сервисные сообщения (о бонусах и покупках) "
        "продолжат приходить.",
        max_length=1000,
    )
    unsubscribe_done: str = Field(
        default="Готово: рекламные сообщения вам больше не придут. Передумаете — скажите кассиру или "
        "включите рассылку в личном кабинете.",
        max_length=1000,
    )
