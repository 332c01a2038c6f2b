"""The ``bots:`` section of the configuration file: the Telegram and VK bots, the questionnaire
and the texts. Tokens and secrets belong in the environment (``${TELEGRAM_BOT_TOKEN}``)."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.bots.texts import TEXTS

QuestionField = Literal["name", "birth_date", "gender", "ad_consent"]
QUESTIONS: tuple[QuestionField, ...] = ("name", "birth_date", "gender", "ad_consent")


class TelegramBotConfig(BaseModel):
    """A Telegram bot (core.telegram.org/bots/api): a webhook Telegram calls, or long polling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=10, pattern=r"^[0-9]+:[A-Za-z0-9_\-]+$", description="From @BotFather")
    mode: Literal["polling", "webhook"] = Field(
        default="polling", description="polling: the gateway asks Telegram (no public address needed)"
    )
    webhook_path: str = Field(default="/bots/telegram/webhook", pattern=r"^/[A-Za-z0-9_\-/]+$")
    webhook_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="setWebhook secret_token: Telegram sends it in X-Telegram-Bot-Api-Secret-Token",
    )
    username: str | None = Field(default=None, max_length=64, description="For the referral link t.me/<username>")
    api_url: str = Field(default="https://api.telegram.org", pattern=r"^https?://[^\s]+$")
    poll_timeout_seconds: int = Field(default=25, ge=0, le=50)

    @model_validator(mode="after")
    def _webhook_has_secret(self) -> TelegramBotConfig:
        if self.mode == "webhook" and not self.webhook_secret:
            raise ValueError("a webhook needs webhook_secret (the header Telegram sends is checked)")
        return self


class VkBotConfig(BaseModel):
    """A VK community bot (dev.vk.com/ru/api/callback/getting-started): the Callback API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_id: int = Field(gt=0)
    access_token: str = Field(min_length=10, description="The community's access token (messages)")
    secret: str = Field(min_length=8, max_length=50, description="The Callback API secret key")
    confirmation: str = Field(min_length=1, max_length=64, description="The string the server must answer")
    callback_path: str = Field(default="/bots/vk/callback", pattern=r"^/[A-Za-z0-9_\-/]+$")
    api_url: str = Field(default="https://api.vk.com", pattern=r"^https?://[^\s]+$")
    api_version: str = Field(default="5.199", pattern=r"^\d+\.\d+$")


class BotsConfig(BaseModel):
    """Chat bots for customers: balance, card, history, promotions, registration, opt-out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(
        default="bot", max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$", description="Whose the bot's ledger calls are"
    )
    telegram: TelegramBotConfig | None = None
    vk: VkBotConfig | None = None
    questionnaire: list[QuestionField] = Field(
        default_factory=lambda: list(QUESTIONS),
        description="Asked after the phone, in this order; a field the customer's profile has is skipped",
    )
    texts: dict[str, str] = Field(default_factory=dict, description="Russian texts replacing the built-in ones")
    texts_en: dict[str, str] = Field(default_factory=dict, description="English texts replacing the built-in ones")
    promotions: list[str] = Field(default_factory=list, description="Lines shown under «Акции» before promo codes")
    history_lines: int = Field(default=10, ge=1, le=50)
    unread_fallback_hours: int | None = Field(
        default=None,
        ge=1,
        le=168,
        description="A notification the customer has not read in the bot (written to it since) within this many "
        "hours goes once by the chain's next provider; None: a delivered bot message is final",
    )

    @field_validator("questionnaire")
    @classmethod
    def _no_repeats(cls, fields: list[QuestionField]) -> list[QuestionField]:
        if len(fields) != len(set(fields)):
            raise ValueError("a questionnaire field is named twice")
        return fields

    @model_validator(mode="after")
    def _known_texts(self) -> BotsConfig:
        for given in (self.texts, self.texts_en):
            unknown = sorted(set(given) - set(TEXTS["ru"]))
            if unknown:
                raise ValueError(f"unknown texts {unknown}; known: {', '.join(sorted(TEXTS['ru']))}")
            for name, text in given.items():
                allowed = _fields(TEXTS["ru"][name])
                wrong = sorted(_fields(text) - allowed)
                if wrong:
                    shown = ", ".join(sorted(allowed)) or "none"
                    raise ValueError(f"texts.{name}: {{{wrong[0]}}} is not a field of this text (it has: {shown})")
        return self

    def text(self, locale: str, name: str) -> str:
        own = self.texts_en if locale == "en" else self.texts
        return own.get(name) or TEXTS["en" if locale == "en" else "ru"][name]


def _fields(text: str) -> set[str]:
    """The ``{fields}`` a text names (a positional ``{}`` or a broken brace is a field no text has)."""
    try:
        return {name or "{}" for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return {"unbalanced brace"}
