"""VK community bot adapter (Callback API, messages.send): the callback endpoint, replies and
notifications into a chat. The conversation itself is ``gateway.bots``."""

from adapters.vk.api import VkApi, VkApiError, VkSender, random_id
from adapters.vk.bot import CHANNEL, VkBot
from adapters.vk.router import build_router

__all__ = ["CHANNEL", "VkApi", "VkApiError", "VkBot", "VkSender", "build_router", "random_id"]
