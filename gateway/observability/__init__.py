"""What operators see of a running gateway: request ids, masked logs and Prometheus metrics."""

from gateway.observability.context import current_request_id
from gateway.observability.logs import logging_config
from gateway.observability.masking import mask_text
from gateway.observability.middleware import RequestContextMiddleware

__all__ = ["RequestContextMiddleware", "current_request_id", "logging_config", "mask_text"]
