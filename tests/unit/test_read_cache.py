"""The regional read cache (projections.read_cache) and the feed's rules (change_feed): pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from domain.codec import order_to_plain, product_to_plain
from domain.model import Money, Order, OrderStatus, Product
from projections.change_feed import apply_change
from projections.read_cache import ABSENT, PRODUCT_PAGES, ReadCache, orders_of
from subscriptions.ports import STREAM_KEY

AT = datetime(2026, 12, 3, tzinfo=UTC)


def product(version: int, name: str = "Lamp", category: str = "home") -> Product:
    return Product(
        id="p-1",
        sku="SKU-1",
        name=name,
        description=None,
        category=category,
        price=Money(1000, "USD"),
        available=3,
        updated_at=AT,
        version=version,
    )


class Switch:
    """The feed's liveness, set by the test."""

    def __init__(self) -> None:
        self.state: object | None = 1

    def __call__(self) -> object | None:
        return self.state


def cache(**limits: Any) -> tuple[ReadCache, Switch]:
    switch = Switch()
    return ReadCache(switch, **limits), switch


def test_a_read_is_kept_and_served() -> None:
    c, _ = cache()
    assert c.item("product", "p-1") is None
    c.offer_item("product", "p-1", product(1), c.clock())
    assert c.item("product", "p-1") == product(1)


def test_the_stream_replaces_an_item_and_an_older_read_never_comes_back() -> None:
    c, _ = cache()
    since = c.clock()  # a read begins ...
    c.changed("product", "p-1", 2, product(2, "Lamp v2"))  # ... the stream says v2 ...
    c.offer_item("product", "p-1", product(1), since)  # ... the read returns v1
    assert c.item("product", "p-1") == product(2, "Lamp v2")


def test_an_older_read_is_refused_even_after_the_newer_item_was_evicted() -> None:
    c, _ = cache(max_items=1)
    c.changed("product", "p-1", 5, product(5))
    c.offer_item("product", "p-2", replace(product(1), id="p-2"), c.clock())  # evicts p-1
    assert c.item("product", "p-1") is None
    c.offer_item("product", "p-1", product(4), c.clock())
    assert c.item("product", "p-1") is None
    c.offer_item("product", "p-1", product(5), c.clock())
    assert c.item("product", "p-1") == product(5)


def test_a_partial_change_drops_the_item_rather_than_keeping_the_old_one() -> None:
    c, _ = cache()
    c.offer_item("product", "p-1", product(1), c.clock())
    c.changed("product", "p-1", 2, None)
    assert c.item("product", "p-1") is None


def test_absence_is_kept_until_the_item_appears() -> None:
    c, _ = cache()
    c.offer_item("order", "o-9", None, c.clock())
    assert c.item("order", "o-9") is ABSENT
    c.changed("order", "o-9", 1, "the order")
    assert c.item("order", "o-9") == "the order"


def test_absence_read_while_the_item_was_created_is_not_kept() -> None:
    c, _ = cache()
    since = c.clock()
    c.changed("order", "o-9", 1, None)
    c.offer_item("order", "o-9", None, since)
    assert c.item("order", "o-9") is None


def test_an_entry_is_dropped_when_one_of_its_tags_changes() -> None:
    c, _ = cache()
    assert c.put_entry("answer", b"{}", [("product", "p-1"), PRODUCT_PAGES], c.clock())
    assert c.entry("answer") == b"{}"
    c.changed("product", "p-2", 1, None, [PRODUCT_PAGES])
    assert c.entry("answer") is None


def test_an_entry_built_while_what_it_read_changed_is_refused() -> None:
    c, _ = cache()
    since = c.clock()
    c.changed("product", "p-1", 2, product(2))
    assert not c.put_entry("answer", b"old", [("product", "p-1")], since)
    assert c.entry("answer") is None
    # What it did not read may change meanwhile.
    since = c.clock()
    c.changed("product", "p-7", 2, None)
    assert c.put_entry("answer", b"new", [("product", "p-1")], since)


def test_nothing_is_served_or_kept_while_the_feed_is_not_listening() -> None:
    c, switch = cache()
    c.offer_item("product", "p-1", product(1), c.clock())
    c.put_entry("answer", b"{}", [], c.clock())
    switch.state = None
    assert c.item("product", "p-1") is None
    assert c.entry("answer") is None
    c.offer_item("product", "p-2", replace(product(1), id="p-2"), c.clock())
    assert not c.put_entry("other", b"{}", [], c.clock())


def test_a_gap_in_the_feed_empties_the_cache() -> None:
    c, switch = cache()
    c.offer_item("product", "p-1", product(1), c.clock())
    since = c.clock()
    c.put_entry("answer", b"{}", [], since)
    switch.state = None  # the broker's connection is lost: changes may be missed
    switch.state = 2  # back, with a new state
    assert c.item("product", "p-1") is None
    assert c.entry("answer") is None
    # A computation begun before the gap is refused too.
    assert not c.put_entry("answer", b"{}", [], since)
    assert c.stats().resets == 1


def test_entries_are_bounded_by_count_and_bytes() -> None:
    c, _ = cache(max_entries=3, max_entry_bytes=800)
    for n in range(5):
        c.put_entry(n, n, [("t", n)], c.clock(), size=10)
    assert c.stats().entries == 3
    assert c.entry(0) is None and c.entry(4) == 4
    c.put_entry("big", "x", [], c.clock(), size=90)
    c.put_entry("big2", "y", [], c.clock(), size=90)
    assert c.stats().entry_bytes <= 800
    # One entry may not take more than an eighth of the budget.
    assert not c.put_entry("huge", "z", [], c.clock(), size=200)


def test_forgotten_invalidations_refuse_what_began_before_them() -> None:
    c, _ = cache(max_entries=1)
    since = c.clock()
    for n in range(10):
        c.invalidate([("t", n)])
    assert not c.put_entry("answer", b"{}", [("other",)], since)
    assert c.put_entry("answer", b"{}", [("other",)], c.clock())


# --- what the feed makes of a publication ----------------------------------------------------


def stream(plain: dict[str, Any]) -> dict[str, Any]:
    return {**plain, STREAM_KEY: True}


def test_a_stream_publication_carries_the_new_snapshot_and_invalidates_the_lists() -> None:
    c, _ = cache()
    c.put_entry("page", [], [PRODUCT_PAGES], c.clock())
    apply_change(c, "publishProduct", stream(product_to_plain(product(3, "New"))))
    assert c.item("product", "p-1") == product(3, "New")
    assert c.entry("page") is None


def test_an_order_change_invalidates_its_customers_order_pages_only() -> None:
    c, _ = cache()
    order = Order(
        id="o-1",
        customer_id="c-1",
        customer_name="Ada",
        status=OrderStatus.CONFIRMED,
        lines=(),
        total=Money(0, "USD"),
        failure_reason=None,
        history=(),
        placed_in="us-east-1",
        created_at=AT,
        updated_at=AT,
        version=2,
    )
    c.put_entry("mine", [], [orders_of("c-1")], c.clock())
    c.put_entry("theirs", [], [orders_of("c-2")], c.clock())
    apply_change(c, "publishOrder", stream(order_to_plain(order)))
    assert c.entry("mine") is None and c.entry("theirs") == []
    assert c.item("order", "o-1") == order


def test_a_masked_publication_only_invalidates() -> None:
    c, _ = cache()
    c.offer_item("product", "p-1", product(1), c.clock())
    apply_change(c, "publishProduct", stream({"id": "p-1", "name": "Masked", "version": 2}))
    assert c.item("product", "p-1") is None


def test_publications_not_from_the_stream_never_reach_the_cache() -> None:
    c, _ = cache()
    c.offer_item("product", "p-1", product(1), c.clock())
    forged = product_to_plain(product(999, "Forged"))
    apply_change(c, "publishProduct", forged)  # an operator's IAM publish, no STREAM_KEY
    assert c.item("product", "p-1") == product(1)
