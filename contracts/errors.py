"""One catalogue of stable error codes shared by every protocol.

Codes are part of the public contract: tills, the site plugin and integrators match on them.
Never rename a code; add new ones instead. Each code carries the HTTP status the JSON API uses;
adapters whose protocol has its own error form (1C, SOAP faults) map from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CARD_NOT_FOUND = "card_not_found"
    CARD_BLOCKED = "card_blocked"
    CARD_ALREADY_EXISTS = "card_already_exists"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    CUSTOMER_ALREADY_EXISTS = "customer_already_exists"
    INSUFFICIENT_POINTS = "insufficient_points"
    POINTS_LIMIT_EXCEEDED = "points_limit_exceeded"
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_EXPIRED = "hold_expired"
    HOLD_ALREADY_RESOLVED = "hold_already_resolved"
    HOLD_CARD_MISMATCH = "hold_card_mismatch"
    RECEIPT_NOT_FOUND = "receipt_not_found"
    RECEIPT_ALREADY_COMMITTED = "receipt_already_committed"
    REFUND_EXCEEDS_RECEIPT = "refund_exceeds_receipt"
    GIFT_CARD_NOT_FOUND = "gift_card_not_found"
    GIFT_CARD_BLOCKED = "gift_card_blocked"
    GIFT_CARD_EXPIRED = "gift_card_expired"
    GIFT_CARD_INSUFFICIENT = "gift_card_insufficient"
    PROMOCODE_NOT_FOUND = "promocode_not_found"
    PROMOCODE_UNAVAILABLE = "promocode_unavailable"
    GIFT_CARD_REFUND_EXCEEDS = "gift_card_refund_exceeds"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    CUSTOMER_MERGED = "customer_merged"
    MERGE_OPEN_HOLDS = "merge_open_holds"
    COMPANY_NOT_FOUND = "company_not_found"
    MEMBER_NOT_FOUND = "member_not_found"
    MEMBER_ALREADY_EXISTS = "member_already_exists"
    MEMBER_MAY_NOT_SPEND = "member_may_not_spend"
    MEMBER_MAY_NOT_EARN = "member_may_not_earn"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_VERSION_CONFLICT = "order_version_conflict"
    REFERRER_NOT_FOUND = "referrer_not_found"
    RATE_LIMITED = "rate_limited"
    CODE_INVALID = "code_invalid"
    CODE_EXPIRED = "code_expired"
    CODE_ATTEMPTS_EXCEEDED = "code_attempts_exceeded"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_IN_FLIGHT = "idempotency_in_flight"
    SIGNATURE_INVALID = "signature_invalid"
    REQUEST_EXPIRED = "request_expired"
    WEBHOOK_TOKEN_INVALID = "webhook_token_invalid"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_CONFIGURED = "not_configured"
    CONFIG_ERROR = "config_error"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    http_status: int
    description: str


ERROR_CATALOGUE: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.VALIDATION_ERROR: ErrorSpec(422, "The request is malformed or a field is out of range."),
    ErrorCode.UNAUTHORIZED: ErrorSpec(401, "Missing or wrong credentials."),
    ErrorCode.FORBIDDEN: ErrorSpec(403, "The client may not perform this operation."),
    ErrorCode.NOT_FOUND: ErrorSpec(404, "No such resource."),
    ErrorCode.CARD_NOT_FOUND: ErrorSpec(404, "No card with this number."),
    ErrorCode.CARD_BLOCKED: ErrorSpec(409, "The card is blocked or was replaced by another card."),
    ErrorCode.CARD_ALREADY_EXISTS: ErrorSpec(409, "A card with this number already exists."),
    ErrorCode.CUSTOMER_NOT_FOUND: ErrorSpec(404, "No customer matches."),
    ErrorCode.CUSTOMER_ALREADY_EXISTS: ErrorSpec(409, "A customer with this phone or e-mail already exists."),
    ErrorCode.INSUFFICIENT_POINTS: ErrorSpec(409, "The account has fewer available points than requested."),
    ErrorCode.POINTS_LIMIT_EXCEEDED: ErrorSpec(409, "More points requested than the program allows for this receipt."),
    ErrorCode.HOLD_NOT_FOUND: ErrorSpec(404, "No hold with this id."),
    ErrorCode.HOLD_EXPIRED: ErrorSpec(409, "The hold passed its void deadline; its points were released."),
    ErrorCode.HOLD_ALREADY_RESOLVED: ErrorSpec(409, "The hold was already committed or cancelled."),
    ErrorCode.HOLD_CARD_MISMATCH: ErrorSpec(409, "The hold belongs to another card."),
    ErrorCode.RECEIPT_NOT_FOUND: ErrorSpec(404, "No committed receipt with this id."),
    ErrorCode.RECEIPT_ALREADY_COMMITTED: ErrorSpec(
        409, "A receipt with this id was already committed with other content."
    ),
    ErrorCode.REFUND_EXCEEDS_RECEIPT: ErrorSpec(422, "The refund returns more than is left on the receipt."),
    ErrorCode.GIFT_CARD_NOT_FOUND: ErrorSpec(404, "No gift certificate with this number."),
    ErrorCode.GIFT_CARD_BLOCKED: ErrorSpec(409, "The gift certificate is blocked."),
    ErrorCode.GIFT_CARD_EXPIRED: ErrorSpec(409, "The gift certificate has expired."),
    ErrorCode.GIFT_CARD_INSUFFICIENT: ErrorSpec(409, "Less money is left on the gift certificate than asked."),
    ErrorCode.PROMOCODE_NOT_FOUND: ErrorSpec(404, "No such promo code."),
    ErrorCode.PROMOCODE_UNAVAILABLE: ErrorSpec(
        409, "The promo code cannot be used now: not yet or no longer valid, used up, or the receipt is too small."
    ),
    ErrorCode.GIFT_CARD_REFUND_EXCEEDS: ErrorSpec(
        422, "The refund puts more money back on the gift certificate than was paid with it."
    ),
    ErrorCode.CAMPAIGN_NOT_FOUND: ErrorSpec(404, "No promo campaign with this id."),
    ErrorCode.CUSTOMER_MERGED: ErrorSpec(409, "The customer was merged into another customer; use the survivor."),
    ErrorCode.MERGE_OPEN_HOLDS: ErrorSpec(
        409, "The customer to merge has open holds; commit or cancel them, then merge again."
    ),
    ErrorCode.COMPANY_NOT_FOUND: ErrorSpec(404, "No company account with this id."),
    ErrorCode.MEMBER_NOT_FOUND: ErrorSpec(404, "The customer is not a contact of this company account."),
    ErrorCode.MEMBER_ALREADY_EXISTS: ErrorSpec(409, "The customer is already a contact of this company account."),
    ErrorCode.MEMBER_MAY_NOT_SPEND: ErrorSpec(403, "This contact's role does not allow spending the company's points."),
    ErrorCode.MEMBER_MAY_NOT_EARN: ErrorSpec(403, "This contact's role does not allow earning points for the company."),
    ErrorCode.ORDER_NOT_FOUND: ErrorSpec(404, "No order with this id."),
    ErrorCode.ORDER_VERSION_CONFLICT: ErrorSpec(
        409, "This version of the order was already applied with other content; send a newer version."
    ),
    ErrorCode.REFERRER_NOT_FOUND: ErrorSpec(404, "No customer or card matches the given referrer."),
    ErrorCode.RATE_LIMITED: ErrorSpec(429, "Too many requests; retry after the given number of seconds."),
    ErrorCode.CODE_INVALID: ErrorSpec(422, "The confirmation code is wrong."),
    ErrorCode.CODE_EXPIRED: ErrorSpec(410, "The confirmation code has expired; request a new one."),
    ErrorCode.CODE_ATTEMPTS_EXCEEDED: ErrorSpec(
        429, "Too many wrong codes; this code no longer works, request a new one."
    ),
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED: ErrorSpec(400, "Mutating requests need an Idempotency-Key."),
    ErrorCode.IDEMPOTENCY_CONFLICT: ErrorSpec(422, "This idempotency key was already used with a different request."),
    ErrorCode.IDEMPOTENCY_IN_FLIGHT: ErrorSpec(
        409, "A request with this idempotency key is still being processed; retry later."
    ),
    ErrorCode.SIGNATURE_INVALID: ErrorSpec(401, "The request's signature is missing or does not match its body."),
    ErrorCode.REQUEST_EXPIRED: ErrorSpec(
        401, "The request's timestamp is missing or outside the replay window; check the sender's clock."
    ),
    ErrorCode.WEBHOOK_TOKEN_INVALID: ErrorSpec(403, "Unknown sender or wrong application token."),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorSpec(413, "The request body is larger than this endpoint accepts."),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(405, "The resource does not support this HTTP method; see Allow."),
    ErrorCode.NOT_CONFIGURED: ErrorSpec(
        409, "This needs a setting the gateway's configuration does not have (the message names it)."
    ),
    ErrorCode.CONFIG_ERROR: ErrorSpec(500, "The gateway configuration is invalid."),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(500, "Unexpected failure; nothing was changed."),
}


class LoyaltyError(Exception):
    """A business or input error with a stable code. Raising it rolls back the unit of work."""

    def __init__(self, code: ErrorCode, message: str | None = None, **details: Any) -> None:
        self.code = code
        self.message = message or ERROR_CATALOGUE[code].description
        self.details: dict[str, Any] = details
        super().__init__(f"{code.value}: {self.message}")

    @property
    def http_status(self) -> int:
        return ERROR_CATALOGUE[self.code].http_status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body
