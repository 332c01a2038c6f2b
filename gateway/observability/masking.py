"""Personal data out of log lines: phones, e-mails and names become masks that still tell two
customers apart (``+7***01``, ``a***@example.ru``, ``И***``).

Two passes over the finished line: values of query-string keys that carry personal data in the
1C protocols (``Phone=…&Email=…&Client=…`` of ``/hs/loyaltyservice/…``, where 1C sends values
unencoded and our HTTP layer percent-encodes them), then any phone number or e-mail address left
anywhere in the text. Secrets outside systems put in URLs go too: a Telegram bot's token in the
Bot API path (``/bot<token>/sendMessage``) and credentials in query strings (SMS.ru's
``api_id``, SMSC's ``psw``…), which httpx logs with every request it makes."""

from __future__ import annotations

import re
from urllib.parse import unquote

# Query keys (case-insensitive) whose values are personal data in 1C's loyalty calls and ours.
_PARAM = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z_\-]{0,40})=([^&\s\"']*)")
_PD_KEY = re.compile(
    r"(?i)(?:phone|mail|surname|patronymic|birth|fio|address)"
    r"|^(?:name|firstname|lastname|middlename|client|clientname|customername|fullname)$"
)
# Query keys whose values are secrets of ours with an outside system.
_SECRET_KEY = re.compile(r"(?i)^(?:api_id|api_key|apikey|psw|password|passwd|token|access_token|secret|client_secret)$")
_BOT_TOKEN = re.compile(r"/bot\d+:[A-Za-z0-9_\-]+")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
# Russian mobile numbers in the usual written forms: +7 912 555-44-33, 8(912)5554433, 79125554433.
_MANY_DIGITS = re.compile(r"\d{3}")  # no phone without three digits in a row: skip the costly pass
_PHONE = re.compile(r"(?<![\d])(?:\+7|7|8)?[\s\-(]{0,2}9\d{2}[\s\-)]{0,2}\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?![\d])")


def _mask_value(key: str, raw: str) -> str:
    if not raw:
        return raw
    value = unquote(raw)
    lowered = key.lower()
    if "phone" in lowered:
        digits = re.sub(r"\D", "", value)
        return "***" + digits[-4:] if len(digits) > 6 else "***"
    if "mail" in lowered and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return "***"


def mask_text(text: str) -> str:
    """``text`` with every phone, e-mail, personal query value and secret in a URL masked."""
    if "/bot" in text:
        text = _BOT_TOKEN.sub("/bot***", text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if _MANY_DIGITS.search(text):
        text = _PHONE.sub(lambda m: "+7***" + re.sub(r"\D", "", m.group(0))[-2:], text)
    return text


def _mask_param(match: re.Match[str]) -> str:
    key, value = match.group(1), match.group(2)
    if _SECRET_KEY.match(key):
        return f"{key}=***" if value else match.group(0)
    if not _PD_KEY.search(key):
        return match.group(0)
    return f"{key}={_mask_value(key, value)}"
