"""Normalized loyalty operations, their results and the catalogue of stable error codes.

Every protocol adapter (1C loyaltyservice, SOAP, Bitrix, the JSON API) translates its messages
into these models and back. This package depends on nothing else of ours.
"""

from contracts.errors import ERROR_CATALOGUE, ErrorCode, LoyaltyError
from contracts.money import Money, Points, Quantity, kopecks_to_money, money_to_kopecks

__all__ = [
    "ERROR_CATALOGUE",
    "ErrorCode",
    "LoyaltyError",
    "Money",
    "Points",
    "Quantity",
    "kopecks_to_money",
    "money_to_kopecks",
]
