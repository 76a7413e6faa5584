"""The ISO 4217 currencies the shop sells in (the card provider settles these)."""

from __future__ import annotations

SUPPORTED_CURRENCIES = frozenset(
    {"USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "SEK", "NOK", "DKK", "NZD", "SGD"}
)
