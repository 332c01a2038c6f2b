"""Long polling (core.telegram.org/bots/api#getupdates): the embedded default, needing no public
address. ``getUpdates`` with ``offset`` = last handled id + 1 confirms the earlier updates to
Telegram; an update handled but not yet confirmed when the process stops comes again and is
dropped by the update id. Telegram allows one poller per bot (409 "Conflict: terminated by other
getUpdates request"), and none while a webhook is set: run polling in one process."""

from __future__ import annotations

import logging
import threading

import httpx

from adapters.telegram_bot.api import BotApi, BotApiError
from adapters.telegram_bot.bot import TelegramBot

log = logging.getLogger("adapters.telegram_bot")


class TelegramPoller:
    def __init__(self, bot: TelegramBot, api: BotApi, timeout_seconds: int = 25) -> None:
        self.bot = bot
        self.api = api
        self.timeout_seconds = timeout_seconds
        self.offset: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._handled = 0
        self._errors = 0

    def poll_once(self, timeout: int | None = None) -> int:
        """One ``getUpdates`` and the updates it brought, in order; returns how many. An update
        whose handling fails (the database) is not confirmed: the next poll brings it again."""
        updates = self.api.get_updates(self.offset, self.timeout_seconds if timeout is None else timeout)
        handled = 0
        for update in updates:
            update_id = update.get("update_id")
            if not isinstance(update_id, int):
                continue
            self.bot.handle(update)
            self.offset = update_id + 1
            handled += 1
        return handled

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
                with self._lock:
                    self._handled += handled
            except (BotApiError, httpx.HTTPError) as exc:
                log.warning(
                    "telegram getUpdates failed: %s", exc if isinstance(exc, BotApiError) else type(exc).__name__
                )
                with self._lock:
                    self._errors += 1
                self._stop.wait(5.0)
            except Exception:  # a bug or a database outage must not end polling for good
                log.exception("telegram update handling failed")
                with self._lock:
                    self._errors += 1
                self._stop.wait(5.0)

    def __call__(self) -> dict[str, int]:
        """The periodic job: keeps the polling thread running and reports what it did since."""
        with self._lock:
            done = {"telegram_updates": self._handled, "telegram_poll_errors": self._errors}
            self._handled = self._errors = 0
            if not self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="telegram-polling", daemon=True)
                self._thread.start()
        return {k: v for k, v in done.items() if v}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_seconds + 15.0)
