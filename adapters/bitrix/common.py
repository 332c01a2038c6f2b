"""What the parts of the Bitrix adapter share: the configuration section and bounded body reading."""

from __future__ import annotations

from fastapi import Request

from adapters.bitrix.config import BitrixConfig
from contracts.errors import ErrorCode, LoyaltyError


def bitrix_section(request: Request) -> BitrixConfig | None:
    section: BitrixConfig | None = getattr(request.app.state.config, "bitrix", None)
    return section


class BodyTooLarge(LoyaltyError):
    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.VALIDATION_ERROR, f"the body is larger than {limit} bytes", limit=limit)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (``validation_error``) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)
