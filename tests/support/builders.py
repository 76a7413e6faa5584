"""Snapshot builders shared by the projection tests (no tests here).

Named test_items_* only because that is the file pattern this work may add; its home is
tests/support/builders.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.model import (
    Customer,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    StatusChange,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def product(
    product_id: str = "p-0001",
    *,
    category: str = "books",
    version: int = 1,
    name: str | None = None,
    description: str | None = "A thing worth having",
    available: int = 5,
    amount: int = 1299,
) -> Product:
    return Product(
        id=product_id,
        sku=f"SKU-{product_id}",
        name=name or f"Product {product_id}",
        description=description,
        category=category,
        price=Money(amount=amount, currency="EUR"),
        available=available,
        updated_at=T0 + timedelta(minutes=version),
        version=version,
    )


def customer(customer_id: str = "c-0001", *, version: int = 1, points: int = 0) -> Customer:
    return Customer(
        id=customer_id,
        name=f"Customer {customer_id}",
        email=f"{customer_id}@example.com",
        home_region="eu-west-1",
        loyalty_points=points,
        updated_at=T0 + timedelta(minutes=version),
        version=version,
    )


_PATH = (
    OrderStatus.PENDING,
    OrderStatus.RESERVED,
    OrderStatus.AUTHORIZED,
    OrderStatus.CAPTURED,
    OrderStatus.CONFIRMED,
)


def order(
    order_id: str = "o-0001",
    *,
    customer_id: str = "c-0001",
    created_at: datetime = T0,
    version: int = 1,
    failure_reason: str | None = None,
) -> Order:
    """An order after `version` steps of the checkout saga (version 1 = PENDING)."""
    steps = _PATH[: min(version, len(_PATH))]
    history = tuple(
        StatusChange(status=status, at=created_at + timedelta(seconds=i), reason=None)
        for i, status in enumerate(steps)
    )
    lines = (
        OrderLine("p-0001", "Product p-0001", 2, Money(1299, "EUR")),
        OrderLine("p-0002", "Produit été ☀", 1, Money(500, "EUR")),
    )
    return Order(
        id=order_id,
        customer_id=customer_id,
        customer_name=f"Customer {customer_id}",
        status=steps[-1],
        lines=lines,
        total=Money(3098, "EUR"),
        failure_reason=failure_reason,
        history=history,
        placed_in="us-east-1",
        created_at=created_at,
        updated_at=created_at + timedelta(seconds=version),
        version=version,
    )
