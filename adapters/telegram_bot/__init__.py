"""Telegram bot adapter (Bot API): the webhook, long polling, replies and notifications into a
chat. The conversation itself is ``gateway.bots``."""

from adapters.telegram_bot.api import BotApi, BotApiError, TelegramSender
from adapters.telegram_bot.bot import CHANNEL, TelegramBot
from adapters.telegram_bot.polling import TelegramPoller
from adapters.telegram_bot.router import build_router

__all__ = ["CHANNEL", "BotApi", "BotApiError", "TelegramBot", "TelegramPoller", "TelegramSender", "build_router"]
