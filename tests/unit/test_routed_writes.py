"""Writes that follow the replicated topology, without sockets: where they go after a
promotion, the fence at the mutation start, and the read-only answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.commands import (
    CancelOrder,
    Checkout,
    CheckoutLine,
    UpdateCustomerProfile,
    UpsertProduct,
)
from domain.errors import BackendUnavailableError, ReadOnlyRegionError, StaleEpochError
from domain.model import Money, Product, RegionControl
from domain.saga import order_id_for
from regions.checkout_intents import RecordedCheckouts
from regions.routing import (
    FencedCatalog,
    RoutedCatalog,
    RoutedCheckoutIntents,
    RoutedOrderWorkflows,
    RoutedProfileUpdates,
    WriteEndpoints,
    WriteTarget,
    write_target,
)
from tests.support.routing import Recording, fence_with

US, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-2"
CHECKOUT = Checkout("c-0001", (CheckoutLine("p-0001", 1),), "tok_visa", "key-1")
CANCEL = CancelOrder("o-1", "key-2")
PROFILE = UpdateCustomerProfile("c-0001", "Ada", None, "key-3")


def test_the_endpoint_map_names_where_each_primary_takes_writes() -> None:
    endpoints = WriteEndpoints(
        region=AP,
        primary_region=US,
        own="http://ap:1",
        primary="http://us-direct:1",
        by_region={US: "http://us:1", EU: "http://eu:1"},
    )
    assert write_target(endpoints) == WriteTarget(AP, US, "http://us:1")
    assert write_target(endpoints, EU) == WriteTarget(AP, EU, "http://eu:1")
    # A promoted region nobody named: AWS's own regional endpoint.
    assert write_target(WriteEndpoints(region=AP, primary_region=US), EU).endpoint_url is None


async def test_a_secondary_sends_its_writes_to_the_primary_the_control_item_names() -> None:
    us, eu = Recording(), Recording()
    fence = await fence_with(AP, RegionControl(US, 1), RegionControl(EU, 2))
    workflows = RoutedOrderWorkflows(fence, {US: us, EU: eu})
    await workflows.start_checkout(CHECKOUT, AP)
    await workflows.start_cancellation(CANCEL)
    profiles = RoutedProfileUpdates(fence, {US: us, EU: eu})
    assert await profiles.submit(PROFILE) == ("request-1", datetime(2026, 1, 1, tzinfo=UTC))
    assert eu.calls == ["checkout:ap-southeast-2", "cancel", "profile"]
    assert us.calls == []


async def test_a_primary_that_cannot_be_reached_or_is_unknown_reads_as_read_only() -> None:
    down = Recording(BackendUnavailableError("connection refused"))
    fence = await fence_with(AP, RegionControl(US, 1), None)
    with pytest.raises(ReadOnlyRegionError, match="cannot reach the primary region us-east-1"):
        await RoutedOrderWorkflows(fence, {US: down}).start_checkout(CHECKOUT, AP)
    promoted = await fence_with(AP, RegionControl(US, 1), RegionControl(EU, 2))
    with pytest.raises(ReadOnlyRegionError, match="knows no endpoint of the primary region"):
        await RoutedOrderWorkflows(promoted, {US: Recording()}).start_checkout(CHECKOUT, AP)


async def test_a_demoted_primary_starts_nothing_and_writes_no_catalog() -> None:
    own, eu = Recording(), Recording()
    fence = await fence_with(US, RegionControl(US, 1), RegionControl(EU, 2))
    with pytest.raises(StaleEpochError):
        await RoutedOrderWorkflows(fence, {US: own, EU: eu}).start_checkout(CHECKOUT, US)
    with pytest.raises(StaleEpochError):
        await RoutedProfileUpdates(fence, {US: own, EU: eu}).submit(PROFILE)
    command = UpsertProduct(
        id=None,
        sku="S",
        name="n",
        description="",
        category="c",
        price=Money(1, "EUR"),
        available=1,
    )
    with pytest.raises(StaleEpochError):
        await FencedCatalog(own, fence).upsert_product(command)
    assert own.calls == eu.calls == []


async def test_the_primary_writes_locally_while_its_epoch_is_the_newest() -> None:
    own = Recording()
    fence = await fence_with(US, RegionControl(US, 2), RegionControl(US, 2))
    await RoutedOrderWorkflows(fence, {US: own}).start_checkout(CHECKOUT, US)
    assert own.calls == ["checkout:us-east-1"]


# --- catalog writes follow the primary too -------------------------------------------------

UPSERT = UpsertProduct(None, "SKU-1", "Lamp", None, "garden", Money(100, "USD"), 1)


class CatalogRecording:
    """One region's relational model: records under which primary and epoch it was written."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.writes: list[RegionControl] = []

    async def upsert_product(self, command: UpsertProduct, under: RegionControl) -> Product:
        if self.error is not None:
            raise self.error
        self.writes.append(under)
        return Product(
            "p-new",
            command.sku,
            command.name,
            None,
            command.category,
            command.price,
            1,
            datetime(2026, 1, 1, tzinfo=UTC),
            1,
        )


async def test_a_secondary_sends_catalog_writes_to_the_primary_s_database() -> None:
    databases = {US: CatalogRecording(), EU: CatalogRecording()}
    fence = await fence_with(EU, RegionControl(US, 1), RegionControl(US, 1))
    await RoutedCatalog(fence, databases).upsert_product(UPSERT)
    assert databases[US].writes == [RegionControl(US, 1)] and databases[EU].writes == []


async def test_after_a_promotion_catalog_writes_go_to_the_new_primary_under_its_epoch() -> None:
    databases = {US: CatalogRecording(), EU: CatalogRecording()}
    # Started as a secondary of us-east-1; eu-west-1 was promoted since (epoch 2).
    fence = await fence_with(EU, RegionControl(US, 1), RegionControl(EU, 2))
    await RoutedCatalog(fence, databases).upsert_product(UPSERT)
    assert databases[EU].writes == [RegionControl(EU, 2)] and databases[US].writes == []


async def test_a_demoted_primary_writes_no_catalog() -> None:
    databases = {US: CatalogRecording(), EU: CatalogRecording()}
    fence = await fence_with(US, RegionControl(US, 1), RegionControl(EU, 2))
    with pytest.raises(StaleEpochError):
        await RoutedCatalog(fence, databases).upsert_product(UPSERT)
    assert databases[US].writes == [] and databases[EU].writes == []


async def test_an_unreachable_primary_database_makes_catalog_writes_read_only() -> None:
    down = CatalogRecording(BackendUnavailableError("the primary's PostgreSQL is down"))
    fence = await fence_with(EU, RegionControl(US, 1), RegionControl(US, 1))
    with pytest.raises(ReadOnlyRegionError, match="cannot reach the primary region us-east-1"):
        await RoutedCatalog(fence, {US: down, EU: CatalogRecording()}).upsert_product(UPSERT)


class IntentRecording:
    """One region's database as the checkout intents see it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.intents: list[tuple[str, RegionControl]] = []

    async def record(self, order_id: str, execution_input: str, under: RegionControl) -> bool:
        self.log.append("intent")
        new = all(order_id != known for known, _ in self.intents)
        self.intents.append((order_id, under))
        return new


async def test_a_checkout_is_answered_once_started_and_recorded_in_the_primary() -> None:
    log: list[str] = []

    class Started(Recording):
        async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
            log.append("started")
            return False  # Step Functions cannot tell

    databases = {US: IntentRecording(log), EU: IntentRecording(log)}
    fence = await fence_with(EU, RegionControl(US, 1), RegionControl(US, 1))
    routed = RoutedOrderWorkflows(fence, {US: Started(), EU: Started()})
    workflows = RecordedCheckouts(routed, RoutedCheckoutIntents(fence, databases))
    # The primary's database tells the first start (no order yet) from a repeat.
    assert await workflows.start_checkout(CHECKOUT, EU) is True
    assert log == ["started", "intent"]
    [(order_id, under)] = databases[US].intents
    assert order_id == order_id_for(CHECKOUT.customer_id, CHECKOUT.idempotency_key)
    assert under == RegionControl(US, 1) and databases[EU].intents == []
    assert await workflows.start_checkout(CHECKOUT, EU) is False


async def test_a_checkout_that_did_not_start_leaves_no_intent() -> None:
    log: list[str] = []
    databases = {US: IntentRecording(log)}
    fence = await fence_with(US, RegionControl(US, 1), RegionControl(US, 1))
    refused = RoutedOrderWorkflows(fence, {US: Recording(BackendUnavailableError("throttled"))})
    workflows = RecordedCheckouts(refused, RoutedCheckoutIntents(fence, databases))
    with pytest.raises(BackendUnavailableError):
        await workflows.start_checkout(CHECKOUT, US)
    assert databases[US].intents == []
