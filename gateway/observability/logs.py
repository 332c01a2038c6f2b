"""Log configuration for the server and the workers: plain lines by default, JSON lines when
``GATEWAY_LOG_FORMAT=json``; every line carries the request id and has personal data masked —
uvicorn's access log included, whose query strings of 1C calls name phones, e-mails and names.

The filters sit on the handlers (not on loggers), so they see every record that is written,
whichever logger it came from."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.observability.context import current_request_id
from gateway.observability.masking import mask_text

LogFormat = Literal["plain", "json"]
PLAIN = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestContextFilter(logging.Filter):
    """Stamps the record with the current request id and masks personal data in its message
    (and exception text), once, before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        if not getattr(record, "_gateway_masked", False):
            record.msg = mask_text(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_text(record.exc_text)
            record._gateway_masked = True
        return True


# httpx logs every request's URL at INFO: outside systems' secrets and our customers' phones ride
# in those URLs (the Bot API's token, SMS.ru's api_id and recipient). Masked where the record is
# made, so no handler — ours, a test's, an embedding application's — ever sees them.
logging.getLogger("httpx").addFilter(RequestContextFilter())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, request id, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def logging_config(level: str = "info", fmt: LogFormat = "plain") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the gateway and uvicorn (pass it as uvicorn's
    ``log_config``): one stderr handler, request ids, masking."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if fmt == "json" else {"format": PLAIN, "datefmt": "%Y-%m-%dT%H:%M:%S%z"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "gateway",
        "filters": ["request_context"],
    }
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": RequestContextFilter}},
        "formatters": {"gateway": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": ["default"], "level": upper, "propagate": False},
        },
        "root": {"handlers": ["default"], "level": upper},
    }


def configure(level: str = "info", fmt: LogFormat = "plain") -> None:
    """Apply ``logging_config`` to this process (the ``worker`` command, scripts)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
