"""Epochs and fencing, pure and with in-memory topology stores: which record is newer, when
a primary is stale, where writes go, and how a promotion claims its epoch."""

from __future__ import annotations

import pytest

from domain.errors import ReadOnlyRegionError, StaleEpochError
from domain.model import RegionControl
from regions.control import (
    EpochConflictError,
    TopologyWatcher,
    WriteFence,
    claim_primary,
    newer,
    next_epoch,
    stale_reason,
)

US, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-2"


class MemoryStore:
    """regions.ports.TopologyStore with the adapters' compare-and-set."""

    def __init__(self, name: str, record: RegionControl | None = None) -> None:
        self.name = name
        self.record = record
        self.down = False

    async def read(self) -> RegionControl | None:
        if self.down:
            raise ConnectionError(f"{self.name} is down")
        return self.record

    async def claim(self, control: RegionControl) -> bool:
        if self.down:
            raise ConnectionError(f"{self.name} is down")
        current = self.record
        if current is None or current.epoch < control.epoch or current == control:
            self.record = control
            return True
        return False


def test_the_higher_epoch_is_newer_and_a_rival_of_the_same_epoch_never_replaces() -> None:
    assert newer(None, RegionControl(US, 1)) == RegionControl(US, 1)
    assert newer(RegionControl(US, 1), RegionControl(EU, 2)) == RegionControl(EU, 2)
    assert newer(RegionControl(EU, 2), RegionControl(US, 1)) == RegionControl(EU, 2)
    assert newer(RegionControl(EU, 2), RegionControl(AP, 2)) == RegionControl(EU, 2)
    assert newer(RegionControl(EU, 2), None) == RegionControl(EU, 2)


def test_a_primary_is_stale_once_a_newer_epoch_or_a_rival_claim_is_known() -> None:
    acting = RegionControl(US, 1)
    assert stale_reason(acting, None) is None
    assert stale_reason(acting, RegionControl(US, 1)) is None
    assert stale_reason(RegionControl(US, 3), RegionControl(EU, 2)) is None  # ours not seen yet
    assert "epoch 2 names eu-west-1" in str(stale_reason(acting, RegionControl(EU, 2)))
    assert "claimed by eu-west-1" in str(stale_reason(acting, RegionControl(EU, 1)))
    # A newer epoch naming the same region (promoted again): still the primary.
    assert stale_reason(acting, RegionControl(US, 2)) is None


def test_next_epoch_is_one_above_the_newest_known() -> None:
    assert next_epoch([]) == 1
    assert next_epoch([None, RegionControl(US, 3), RegionControl(EU, 2)]) == 4


async def _fence(acting: RegionControl, region: str, known: RegionControl | None) -> WriteFence:
    store = MemoryStore("control", known)
    watcher = TopologyWatcher(store.read)
    await watcher.refresh()
    return WriteFence(region, acting, watcher)


async def test_a_demoted_primary_refuses_writes_with_read_only_region() -> None:
    fence = await _fence(RegionControl(US, 1), US, RegionControl(EU, 2))
    with pytest.raises(StaleEpochError) as refused:
        fence.check()
    assert isinstance(refused.value, ReadOnlyRegionError)
    assert refused.value.error_type == "ReadOnlyRegion"
    assert fence.primary_region() == EU


async def test_a_secondary_is_never_fenced_and_follows_the_newest_primary() -> None:
    fence = await _fence(RegionControl(US, 1), AP, RegionControl(EU, 2))
    fence.check()
    assert fence.primary_region() == EU
    unknown = await _fence(RegionControl(US, 1), AP, None)
    assert unknown.primary_region() == US


async def test_the_watcher_never_goes_back_and_keeps_the_record_while_the_store_is_down() -> None:
    store = MemoryStore("control", RegionControl(EU, 2))
    watcher = TopologyWatcher(store.read)
    assert await watcher.refresh() == RegionControl(EU, 2)
    store.record = RegionControl(US, 1)  # a stale record written back by a restart
    assert await watcher.refresh() == RegionControl(EU, 2)
    store.down = True
    assert await watcher.refresh() == RegionControl(EU, 2)
    store.down, store.record = False, RegionControl(AP, 3)
    assert await watcher.refresh() == RegionControl(AP, 3)


async def test_claim_primary_writes_the_next_epoch_everywhere_it_can() -> None:
    database = MemoryStore("postgresql", RegionControl(US, 1))
    own = MemoryStore("dynamodb:eu-west-1", RegionControl(US, 1))
    other = MemoryStore("dynamodb:ap-southeast-2", RegionControl(US, 1))
    gone = MemoryStore("dynamodb:us-east-1", RegionControl(US, 1))
    gone.down = True

    control = await claim_primary(EU, [database, own], [other, gone])

    assert control == RegionControl(EU, 2)
    assert database.record == own.record == other.record == control
    assert gone.record == RegionControl(US, 1)  # replication brings it when it returns


async def test_claim_primary_refuses_a_stale_or_rival_claim_and_writes_no_further() -> None:
    database = MemoryStore("postgresql", RegionControl(AP, 3))
    own = MemoryStore("dynamodb:eu-west-1", RegionControl(US, 1))
    with pytest.raises(EpochConflictError):
        await claim_primary(EU, [database, own], epoch=3)
    assert own.record == RegionControl(US, 1)
    # Retried with the epoch it was given, the same claim succeeds again (idempotent).
    assert await claim_primary(AP, [database, own], epoch=3) == RegionControl(AP, 3)
    assert own.record == RegionControl(AP, 3)


async def test_claim_primary_needs_its_required_stores() -> None:
    database = MemoryStore("postgresql", RegionControl(US, 1))
    database.down = True
    with pytest.raises(ConnectionError):
        await claim_primary(EU, [database])
    with pytest.raises(ValueError, match="required"):
        await claim_primary(EU, [])
