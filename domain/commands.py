"""Commands: what a caller asks the write side to do, validated before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import BadRequestError
from domain.model import Money

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PRODUCT_ID = re.compile(r"^p-[0-9A-Za-z-]{1,60}$")


@dataclass(frozen=True, slots=True)
class UpsertProduct:
    id: str | None
    sku: str
    name: str
    description: str | None
    category: str
    price: Money
    available: int

    def __post_init__(self) -> None:
        if self.id is not None and not _PRODUCT_ID.match(self.id):
            raise BadRequestError(f"product id {self.id!r} must look like p-0001")
        for name, value in (("sku", self.sku), ("name", self.name), ("category", self.category)):
            if not value.strip():
                raise BadRequestError(f"{name} must not be empty")
            if len(value) > 200:
                raise BadRequestError(f"{name} is longer than 200 characters")
        if self.description is not None and len(self.description) > 4000:
            raise BadRequestError("description is longer than 4000 characters")
        if not _CURRENCY.match(self.price.currency):
            raise BadRequestError(f"currency {self.price.currency!r} is not an ISO 4217 code")
        if self.price.amount < 0:
            raise BadRequestError("price.amount must not be negative")
        if self.available < 0:
            raise BadRequestError("available must not be negative")
