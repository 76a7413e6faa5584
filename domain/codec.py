"""Snapshots as plain JSON-compatible dicts (str, int, bool, None, list, dict).

One format serves the outbox payload and the attributes of a projection item, so the
projector copies an event into an item without translating it twice. Keys are the
contract's field names (camelCase), so an item reads like the GraphQL object it serves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import Customer, Money, Order, OrderLine, OrderStatus, Product, StatusChange

Plain = dict[str, Any]


def encode_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def decode_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _money(plain: Plain) -> Money:
    return Money(amount=int(plain["amount"]), currency=str(plain["currency"]))


def _plain_money(money: Money) -> Plain:
    return {"amount": money.amount, "currency": money.currency}


def product_to_plain(p: Product) -> Plain:
    return {
        "id": p.id,
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "price": _plain_money(p.price),
        "available": p.available,
        "updatedAt": encode_time(p.updated_at),
        "version": p.version,
    }


def product_from_plain(d: Plain) -> Product:
    return Product(
        id=d["id"],
        sku=d["sku"],
        name=d["name"],
        description=d.get("description"),
        category=d["category"],
        price=_money(d["price"]),
        available=int(d["available"]),
        updated_at=decode_time(d["updatedAt"]),
        version=int(d["version"]),
    )


def customer_to_plain(c: Customer) -> Plain:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "homeRegion": c.home_region,
        "loyaltyPoints": c.loyalty_points,
        "updatedAt": encode_time(c.updated_at),
        "version": c.version,
    }


def customer_from_plain(d: Plain) -> Customer:
    return Customer(
        id=d["id"],
        name=d["name"],
        email=d["email"],
        home_region=d["homeRegion"],
        loyalty_points=int(d["loyaltyPoints"]),
        updated_at=decode_time(d["updatedAt"]),
        version=int(d["version"]),
    )


def order_to_plain(o: Order) -> Plain:
    return {
        "id": o.id,
        "customerId": o.customer_id,
        "customerName": o.customer_name,
        "status": o.status.value,
        "lines": [
            {
                "productId": line.product_id,
                "productName": line.product_name,
                "quantity": line.quantity,
                "unitPrice": _plain_money(line.unit_price),
            }
            for line in o.lines
        ],
        "total": _plain_money(o.total),
        "failureReason": o.failure_reason,
        "history": [
            {"status": h.status.value, "at": encode_time(h.at), "reason": h.reason}
            for h in o.history
        ],
        "placedIn": o.placed_in,
        "createdAt": encode_time(o.created_at),
        "updatedAt": encode_time(o.updated_at),
        "version": o.version,
    }


def order_from_plain(d: Plain) -> Order:
    return Order(
        id=d["id"],
        customer_id=d["customerId"],
        customer_name=d["customerName"],
        status=OrderStatus(d["status"]),
        lines=tuple(
            OrderLine(
                product_id=line["productId"],
                product_name=line["productName"],
                quantity=int(line["quantity"]),
                unit_price=_money(line["unitPrice"]),
            )
            for line in d["lines"]
        ),
        total=_money(d["total"]),
        failure_reason=d.get("failureReason"),
        history=tuple(
            StatusChange(
                status=OrderStatus(h["status"]), at=decode_time(h["at"]), reason=h.get("reason")
            )
            for h in d["history"]
        ),
        placed_in=d["placedIn"],
        created_at=decode_time(d["createdAt"]),
        updated_at=decode_time(d["updatedAt"]),
        version=int(d["version"]),
    )


def event_to_plain(event: Event) -> Plain:
    """The outbox payload of an event: its snapshot, plain."""
    match event:
        case ProductChanged(product=p):
            return product_to_plain(p)
        case CustomerChanged(customer=c):
            return customer_to_plain(c)
        case OrderChanged(order=o):
            return order_to_plain(o)


def event_from_plain(kind: str, payload: Plain) -> Event:
    if kind == "Product":
        return ProductChanged(product_from_plain(payload))
    if kind == "Customer":
        return CustomerChanged(customer_from_plain(payload))
    if kind == "Order":
        return OrderChanged(order_from_plain(payload))
    raise ValueError(f"unknown aggregate kind {kind!r}")
