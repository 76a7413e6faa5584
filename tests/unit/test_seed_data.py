"""The demo data plan: its shape and its determinism, without a database."""

from __future__ import annotations

import re
from collections import Counter

from adapters.postgres import seed_data
from domain.model import OrderStatus

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def test_the_plan_is_the_same_every_time() -> None:
    assert seed_data.products() == seed_data.products()
    assert seed_data.customers() == seed_data.customers()
    assert seed_data.orders() == seed_data.orders()


def test_catalogue_has_240_products_in_8_categories() -> None:
    products = seed_data.products()
    assert [p.id for p in products] == [f"p-{n:04d}" for n in range(1, 241)]
    assert len({p.sku for p in products}) == len({p.name for p in products}) == 240
    assert all(p.sku.startswith("SKU-") for p in products)
    assert Counter(p.category for p in products) == dict.fromkeys(
        ["books", "electronics", "garden", "kitchen", "music", "outdoors", "toys", "apparel"], 30
    )
    assert all(p.price.currency == "USD" and p.price.amount % 100 == 99 for p in products)
    assert all(p.available >= 0 for p in products)
    assert sum(p.available > 0 for p in products) > 230


def test_customers_have_valid_emails_and_known_regions() -> None:
    customers = seed_data.customers()
    assert [c.id for c in customers] == [f"c-{n:04d}" for n in range(1, 51)]
    assert len({c.name for c in customers}) == len({c.email for c in customers}) == 50
    assert all(EMAIL.match(c.email) for c in customers)
    assert {c.home_region for c in customers} == {"us-east-1", "eu-west-1", "ap-southeast-2"}


def test_orders_reference_the_catalogue_and_tell_a_complete_story() -> None:
    in_stock = {p.id for p in seed_data.products() if p.available > 0}
    customers = {c.id: c for c in seed_data.customers()}
    orders = seed_data.orders()
    assert len(orders) == 20
    assert sum(o.customer_id == "c-0001" for o in orders) >= 3
    for order in orders:
        assert order.customer_id in customers
        assert order.placed_in == customers[order.customer_id].home_region
        assert order.lines and all(pid in in_stock and qty > 0 for pid, qty in order.lines)
        steps = [status for status, _, _ in order.history]
        times = [at for _, at, _ in order.history]
        assert times == sorted(times) and times[0] == order.created_at
        assert steps[-1] is order.status
        if order.status is OrderStatus.CONFIRMED:
            assert steps == [
                OrderStatus.PENDING,
                OrderStatus.RESERVED,
                OrderStatus.AUTHORIZED,
                OrderStatus.CAPTURED,
                OrderStatus.CONFIRMED,
            ]
        else:
            assert order.status is OrderStatus.FAILED
            assert order.history[-1][2] == "PAYMENT_DECLINED"
    statuses = Counter(o.status for o in orders)
    assert statuses[OrderStatus.FAILED] >= 2
    assert statuses[OrderStatus.CONFIRMED] >= 15


def test_loyalty_points_count_confirmed_dollars() -> None:
    prices = {p.id: p.price.amount for p in seed_data.products()}
    ada = seed_data.customers()[0]
    confirmed = [
        o for o in seed_data.orders() if o.customer_id == "c-0001" and o.status.name == "CONFIRMED"
    ]
    expected = sum(sum(prices[p] * q for p, q in o.lines) // 100 for o in confirmed)
    assert ada.loyalty_points == expected > 0
