"""The publish* mutations' inputs as domain snapshots."""

from __future__ import annotations

from domain.model import Customer, Money, Order, OrderLine, Product, StatusChange
from schema.inputs import CustomerPublication, MoneyInput, OrderPublication, ProductPublication


def _money(m: MoneyInput) -> Money:
    return Money(amount=m.amount, currency=m.currency)


def product_of(p: ProductPublication) -> Product:
    return Product(
        id=str(p.id),
        sku=p.sku,
        name=p.name,
        description=p.description,
        category=p.category,
        price=_money(p.price),
        available=p.available,
        updated_at=p.updated_at,
        version=p.version,
    )


def customer_of(c: CustomerPublication) -> Customer:
    return Customer(
        id=str(c.id),
        name=c.name,
        email=c.email,
        home_region=c.home_region,
        loyalty_points=c.loyalty_points,
        updated_at=c.updated_at,
        version=c.version,
    )


def order_of(o: OrderPublication) -> Order:
    return Order(
        id=str(o.id),
        customer_id=str(o.customer_id),
        customer_name=o.customer_name,
        status=o.status,
        lines=tuple(
            OrderLine(
                product_id=str(line.product_id),
                product_name=line.product_name,
                quantity=line.quantity,
                unit_price=_money(line.unit_price),
            )
            for line in o.lines
        ),
        total=_money(o.total),
        failure_reason=o.failure_reason,
        history=tuple(StatusChange(status=h.status, at=h.at, reason=h.reason) for h in o.history),
        placed_in=o.placed_in,
        created_at=o.created_at,
        updated_at=o.updated_at,
        version=o.version,
    )
