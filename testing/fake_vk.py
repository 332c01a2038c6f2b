"""A fake VK: the API a community bot calls and the Callback API events VK posts to the bot.

It imitates the documented behaviour of:

* the Callback API (https://dev.vk.com/ru/api/callback/getting-started): a ``confirmation``
  event whose answer must be the community's confirmation string; other events carry
  ``group_id``, ``type``, ``event_id``, ``v``, ``object`` and the configured ``secret``; VK sends
  an event again when the answer is not the plain text ``ok`` (up to 5 times here);
* ``message_new`` (https://dev.vk.com/ru/api/community-events/json-schema#message_new):
  ``object.message`` with ``from_id``, ``peer_id``, ``text``, ``conversation_message_id`` and
  ``object.client_info``;
* API methods at ``/method/<name>`` answering ``{"response": …}`` or ``{"error": {"error_code",
  "error_msg", "request_params"}}`` with HTTP 200 (https://dev.vk.com/ru/reference/errors):
  5 "User authorization failed", 100 "One of the parameters specified was missing or invalid",
  901 "Can't send messages for users without permission", 9 "Flood control";
* ``messages.send`` (https://dev.vk.com/ru/method/messages.send): ``random_id`` is required and a
  repeated ``random_id`` to the same peer sends nothing again (the first message's id comes back);
* a picture in a message (https://dev.vk.com/ru/api/upload/photo-in-message):
  ``photos.getMessagesUploadServer`` → POST the file as ``photo`` to ``upload_url`` →
  ``photos.saveMessagesPhoto`` → ``attachment=photo<owner_id>_<id>_<access_key>``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

RESENDS = 5


@dataclass
class VkMessage:
    """What the community sent to a user."""

    message_id: int
    peer_id: int
    text: str
    random_id: int
    keyboard: dict[str, Any] | None
    photo: bytes | None


class FakeVk:
    def __init__(
        self,
        group_id: int = 229000001,
        access_token: str = "vk1.a.fake-community-token",
        secret: str = "vk-callback-secret",
        confirmation: str = "5c1f2a9e",
    ) -> None:
        self.group_id = group_id
        self.access_token = access_token
        self.secret = secret
        self.confirmation = confirmation
        self.callback_url = ""
        self.sent: list[VkMessage] = []
        self.forbidden: set[int] = set()  # users who did not allow the community's messages
        self.deliveries: list[tuple[str, int, str]] = []  # (event_id, HTTP status, body) of every post
        self._sent_by_random: dict[tuple[int, int], int] = {}
        self._uploads: dict[str, bytes] = {}  # upload "photo" token -> bytes
        self._photos: dict[int, bytes] = {}  # saved photo id -> bytes
        self._ids = itertools.count(1)
        self._cmids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-vk", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeVk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- VK's side of the Callback API ------------------------------------------------------

    def confirm(self) -> httpx.Response:
        """VK checks the server: ``{"type": "confirmation", "group_id": …}``."""
        return httpx.post(self.callback_url, json={"type": "confirmation", "group_id": self.group_id}, timeout=30)

    def message_new(self, user_id: int, text: str, secret: str | None = None) -> dict[str, Any]:
        """A user writes to the community; the event is posted (again, until the answer is ``ok``)."""
        event = {
            "group_id": self.group_id,
            "type": "message_new",
            "event_id": uuid.uuid4().hex[:40],
            "v": "5.199",
            "object": {
                "message": {
                    "date": int(time.time()),
                    "from_id": user_id,
                    "id": 0,
                    "out": 0,
                    "peer_id": user_id,
                    "text": text,
                    "conversation_message_id": next(self._cmids),
                    "fwd_messages": [],
                    "important": False,
                    "is_hidden": False,
                    "attachments": [],
                },
                "client_info": {
                    "button_actions": ["text", "vkpay", "open_app", "location", "open_link"],
                    "keyboard": True,
                    "inline_keyboard": True,
                    "carousel": True,
                    "lang_id": 0,
                },
            },
            "secret": self.secret if secret is None else secret,
        }
        self.post(event)
        return event

    def post(self, event: dict[str, Any]) -> str:
        """Post an event as VK does: again while the answer is not ``ok``; returns the last answer."""
        body = ""
        for _ in range(RESENDS):
            response = httpx.post(self.callback_url, json=event, timeout=30)
            body = response.text
            with self._lock:
                self.deliveries.append((str(event.get("event_id")), response.status_code, body))
            if response.status_code == 200 and body == "ok":
                break
        return body

    def messages_to(self, user_id: int) -> list[VkMessage]:
        with self._lock:
            return [m for m in self.sent if m.peer_id == user_id]

    # -- the API ----------------------------------------------------------------------------

    @staticmethod
    def _error(code: int, message: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        shown = [{"key": "method", "value": method}] + [
            {"key": k, "value": str(v)} for k, v in params.items() if k != "access_token"
        ]
        return {"error": {"error_code": code, "error_msg": message, "request_params": shown}}

    def _api(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("access_token") != self.access_token:
            return self._error(5, "User authorization failed: invalid access_token (4).", method, params)
        if not params.get("v"):
            return self._error(8, "Invalid request: v (version) is required", method, params)
        if method == "messages.send":
            return self._send(method, params)
        if method == "photos.getMessagesUploadServer":
            return {
                "response": {
                    "album_id": -3,
                    "upload_url": f"{self.url}/upload/photo",
                    "user_id": 0,
                    "group_id": self.group_id,
                }
            }
        if method == "photos.saveMessagesPhoto":
            data = self._uploads.pop(str(params.get("photo") or ""), None)
            if data is None:
                return self._error(100, "One of the parameters specified was missing or invalid: photo", method, params)
            photo_id = next(self._ids)
            self._photos[photo_id] = data
            return {
                "response": [{"id": photo_id, "owner_id": -self.group_id, "access_key": f"k{photo_id}", "album_id": -3}]
            }
        return self._error(3, "Unknown method passed", method, params)

    def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            peer = int(str(params.get("peer_id")))
            random = int(str(params.get("random_id")))
        except ValueError:
            return self._error(
                100, "One of the parameters specified was missing or invalid: random_id, peer_id", method, params
            )
        text = str(params.get("message") or "")
        attachment = str(params.get("attachment") or "")
        if not text and not attachment:
            return self._error(100, "One of the parameters specified was missing or invalid: message", method, params)
        with self._lock:
            if peer in self.forbidden:
                return self._error(901, "Can't send messages for users without permission", method, params)
            earlier = self._sent_by_random.get((peer, random))
            if earlier is not None:
                return {"response": earlier}
            photo = None
            if attachment.startswith("photo"):
                photo_id = int(attachment[len("photo") :].split("_")[1])
                photo = self._photos.get(photo_id)
            keyboard = params.get("keyboard")
            message = VkMessage(next(self._ids), peer, text, random, json.loads(keyboard) if keyboard else None, photo)
            self.sent.append(message)
            self._sent_by_random[(peer, random)] = message.message_id
            return {"response": message.message_id}

    def _upload(self, files: dict[str, bytes]) -> dict[str, Any]:
        data = files.get("photo")
        if not data:
            return {"server": 1, "photo": "[]", "hash": ""}
        token = json.dumps([{"photo": secrets.token_hex(8), "sizes": [], "kid": "k"}])
        self._uploads[token] = data
        return {"server": 1, "photo": token, "hash": secrets.token_hex(16)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type") or ""
                params: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                files: dict[str, bytes] = {}
                if ctype.startswith("application/x-www-form-urlencoded"):
                    params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                elif ctype.startswith("multipart/form-data"):
                    message = BytesParser(policy=HTTP).parsebytes(
                        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
                    )
                    for part in message.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True)
                        if isinstance(name, str) and isinstance(payload, bytes):
                            files[name] = payload
                if parsed.path == "/upload/photo":
                    return self._answer(fake._upload(files))
                if parsed.path.startswith("/method/"):
                    return self._answer(fake._api(parsed.path[len("/method/") :], params))
                self.send_response(404)
                self.end_headers()

            def _answer(self, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
