"""The development provider: messages go to a JSON-lines file (full text, for the developer
reading codes) and to the log (phone masked, text withheld). The embedded default, so the
gateway runs with no provider account anywhere."""

from __future__ import annotations

import json
import logging
import threading
from decimal import Decimal
from pathlib import Path

from gateway.core.messaging import OutgoingMessage, SendResult
from gateway.ledger.phones import mask_phone

log = logging.getLogger("adapters.sms.console")


class ConsoleProvider:
    name = "console"
    dedupes = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        record = {"id": message.message_id, "kind": message.kind, "phone": message.phone, "text": message.text}
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.info(
            "message %s (%s) to %s written to %s",
            message.message_id,
            message.kind,
            mask_phone(message.phone),
            self.path,
        )
        return SendResult(self.name, message.message_id, Decimal(0))
