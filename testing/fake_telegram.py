"""A fake Telegram: the Bot API server a bot calls, and the users who write to the bot.

It imitates the documented behaviour of https://core.telegram.org/bots/api:

* methods at ``/bot<token>/<method>`` (JSON, form or multipart bodies), answering
  ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description"}`` with the same
  HTTP status ("Making requests"); a wrong token is 401 "Unauthorized", an unknown method 404;
* ``sendMessage`` / ``sendPhoto`` (the ``photo`` as a multipart file), with the errors a bot meets:
  403 "Forbidden: bot was blocked by the user", 400 "Bad Request: chat not found",
  400 "Bad Request: message text is empty", and 429 "Too Many Requests: retry after N" with
  ``parameters.retry_after`` ("ResponseParameters");
* ``getUpdates`` with ``offset`` (an update is confirmed once getUpdates is called with an offset
  higher than its ``update_id``; unconfirmed ones come again) and long polling ``timeout``; 409
  "Conflict: can't use getUpdates method while webhook is active" while a webhook is set;
* ``setWebhook`` with ``secret_token`` / ``deleteWebhook``: each update is POSTed to the webhook
  with the header ``X-Telegram-Bot-Api-Secret-Token``; an answer other than 2xx leaves the
  update undelivered, and Telegram sends it again (``redeliver``) — "In case of an unsuccessful
  request, we will give up after a reasonable amount of attempts";
* users' messages as ``Update`` objects: ``message.text``, and ``message.contact`` whose
  ``user_id`` is the sender's own id when the user shared their own phone with a
  ``request_contact`` button ("KeyboardButton", "Contact").
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

BOT_ID = 7000000001


@dataclass
class TelegramUser:
    id: int
    first_name: str
    phone: str  # as Telegram gives it in a contact: digits, no "+"
    language_code: str = "ru"


@dataclass
class SentMessage:
    """What the bot sent into a chat."""

    message_id: int
    chat_id: int
    method: str  # sendMessage | sendPhoto
    text: str  # the text, or a photo's caption
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None


@dataclass
class _Failure:
    code: int
    description: str
    retry_after: int | None = None


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)  # not yet confirmed by getUpdates
    undelivered: list[dict[str, Any]] = field(default_factory=list)  # the webhook did not answer 2xx
    sent: list[SentMessage] = field(default_factory=list)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    blocked: set[int] = field(default_factory=set)
    failures: list[_Failure] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)


class FakeTelegram:
    def __init__(self, token: str = "7000000001:AAfake-bot-token_for-tests") -> None:
        self.token = token
        self.users: dict[int, TelegramUser] = {}
        self.state = _State()
        self._lock = threading.Condition()
        self._update_ids = itertools.count(500_000_001)
        self._message_ids = itertools.count(1)
        self.webhook_statuses: list[int] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the users' side --------------------------------------------------------------------

    def user(self, user_id: int, first_name: str, phone: str, language_code: str = "ru") -> TelegramUser:
        self.users[user_id] = TelegramUser(user_id, first_name, phone, language_code)
        return self.users[user_id]

    def send_text(self, user: TelegramUser, text: str) -> dict[str, Any]:
        """The user writes ``text``; returns the update (delivered to the webhook if one is set)."""
        return self._push(user, {"text": text})

    def share_contact(self, user: TelegramUser, of: TelegramUser | None = None) -> dict[str, Any]:
        """The user shares a contact: their own (the ``request_contact`` button) or ``of`` another."""
        owner = of or user
        contact = {"phone_number": owner.phone, "first_name": owner.first_name, "user_id": owner.id}
        return self._push(user, {"contact": contact})

    def resend(self, update: dict[str, Any]) -> int:
        """Deliver the same update again (Telegram did not get the answer to the first one)."""
        return self._deliver(update)

    def redeliver(self) -> list[int]:
        """Telegram's retry of every update the webhook has not accepted yet."""
        with self._lock:
            pending, self.state.undelivered = self.state.undelivered, []
        return [self._deliver(update) for update in pending]

    def messages_to(self, user: TelegramUser) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.state.sent if m.chat_id == user.id]

    def block(self, user: TelegramUser) -> None:
        with self._lock:
            self.state.blocked.add(user.id)

    def fail_next(self, code: int = 429, retry_after: int | None = 1, description: str | None = None) -> None:
        """The next send fails with ``code`` (429 "Too Many Requests: retry after N" by default)."""
        text = description or (f"Too Many Requests: retry after {retry_after}" if code == 429 else "Bad Gateway")
        with self._lock:
            self.state.failures.append(_Failure(code, text, retry_after))

    def set_webhook(self, url: str, secret: str) -> None:
        with self._lock:
            self.state.webhook_url, self.state.webhook_secret = url, secret

    @property
    def calls(self) -> list[str]:
        with self._lock:
            return list(self.state.calls)

    def _push(self, user: TelegramUser, content: dict[str, Any]) -> dict[str, Any]:
        update = {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "from": {
                    "id": user.id,
                    "is_bot": False,
                    "first_name": user.first_name,
                    "language_code": user.language_code,
                },
                "chat": {"id": user.id, "first_name": user.first_name, "type": "private"},
                "date": int(time.time()),
                **content,
            },
        }
        with self._lock:
            self.state.updates.append(update)
            webhook = self.state.webhook_url
            self._lock.notify_all()
        if webhook:
            self._deliver(update)
        return update

    def _deliver(self, update: dict[str, Any]) -> int:
        with self._lock:
            url, secret = self.state.webhook_url, self.state.webhook_secret
        assert url, "no webhook is set"
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        try:
            status = httpx.post(url, json=update, headers=headers, timeout=30).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.webhook_statuses.append(status)
            if 200 <= status < 300:
                self.state.updates = [u for u in self.state.updates if u["update_id"] != update["update_id"]]
            elif update not in self.state.undelivered:
                self.state.undelivered.append(update)
        return status

    # -- the Bot API ------------------------------------------------------------------------

    def _api(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.state.calls.append(method)
        if method in {"sendMessage", "sendPhoto"}:
            return self._send(method, params, files)
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "setWebhook":
            self.set_webhook(str(params.get("url") or ""), str(params.get("secret_token") or ""))
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "deleteWebhook":
            self.set_webhook("", "")
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": BOT_ID, "is_bot": True, "first_name": "Бонусы"}}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _send(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        chat_id = int(str(params.get("chat_id") or 0))
        with self._lock:
            if self.state.failures:
                failure = self.state.failures.pop(0)
                body: dict[str, Any] = {"ok": False, "error_code": failure.code, "description": failure.description}
                if failure.retry_after is not None:
                    body["parameters"] = {"retry_after": failure.retry_after}
                return failure.code, body
            if chat_id not in self.users:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            if chat_id in self.state.blocked:
                return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
            text = str(params.get("text" if method == "sendMessage" else "caption") or "")
            if method == "sendMessage" and not text.strip():
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            photo = files.get("photo")
            if method == "sendPhoto" and not photo:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: there is no photo in the request",
                }
            markup = params.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            message = SentMessage(next(self._message_ids), chat_id, method, text, markup, photo)
            self.state.sent.append(message)
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Бонусы"},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
        }
        if photo:
            result["photo"] = [{"file_id": f"photo-{message.message_id}", "file_size": len(photo)}]
            result["caption"] = text
        else:
            result["text"] = text
        return 200, {"ok": True, "result": result}

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offset = int(str(params.get("offset") or 0))
        timeout = min(float(str(params.get("timeout") or 0)), 5.0)  # long polling, kept short in tests
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.state.webhook_url:
                return 409, {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                }
            if offset:
                self.state.updates = [u for u in self.state.updates if u["update_id"] >= offset]
            while not self.state.updates and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            return 200, {"ok": True, "result": list(self.state.updates[:100])}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                parsed = urlparse(self.path)
                parts = parsed.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    return self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                if parts[0][3:] != fake.token:
                    return self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                params: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                files: dict[str, bytes] = {}
                ctype = self.headers.get("Content-Type") or ""
                if ctype.startswith("application/json") and raw:
                    params.update(json.loads(raw))
                elif ctype.startswith("application/x-www-form-urlencoded"):
                    params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                elif ctype.startswith("multipart/form-data"):
                    message = BytesParser(policy=HTTP).parsebytes(
                        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
                    )
                    for part in message.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True)
                        if not isinstance(name, str) or not isinstance(payload, bytes):
                            continue
                        if part.get_filename():
                            files[name] = payload
                        else:
                            params[name] = payload.decode()
                status, body = fake._api(parts[1], params, files)
                self._answer(status, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
