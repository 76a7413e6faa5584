"""Who is primary, since which epoch: fencing and promotion.

The topology record (primary region, epoch) lives in two places: the control item
CONTROL/TOPOLOGY of every region's table (replicated by regions.replication, version =
epoch) and one row of PostgreSQL (replicated physically with the database). A promotion
raises the epoch in both, PostgreSQL first, with compare-and-set writes: an older epoch never
overwrites a newer one, and of two regions claiming the same epoch only the first succeeds.

Who checks what:
- the mutation start (WriteFence.check, in every API process): a process that acts as the
  primary under epoch E refuses with StaleEpochError (errorType ReadOnlyRegion) once it knows
  of a newer epoch, or of a rival claim of E; it learns of them from its region's control
  item, read every second in the background (TopologyWatcher);
- every saga step and catalog write (adapters.postgres.topology.EpochFence, inside the
  write's own transaction): it runs only if the database names this region primary at the
  epoch its worker runs under, so a demoted primary's worker writes nothing;
- write routing (WriteFence.primary_region): a secondary sends its writes to the primary the
  newest record names, so after a promotion every region follows without a restart.

A network partition that cuts an old primary off from both its replicated control item and
the promoted database is not fenced until it heals (no quorum here, as with Aurora's managed
failover): the old primary's own database still names it, and what it writes meanwhile is
the RPO that its rejoin (pg_rewind) reports as lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from domain.errors import HemisphereError, StaleEpochError
from domain.model import RegionControl
from regions.ports import TopologyStore

log = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 1.0


class EpochConflictError(HemisphereError):
    """A promotion found a newer epoch, or a rival claim of its own epoch, already stored."""

    error_type = "EpochConflict"


# --- decisions (pure) -------------------------------------------------------------------------


def newer(known: RegionControl | None, seen: RegionControl | None) -> RegionControl | None:
    """The newer of two topology records: the higher epoch. At the same epoch the one known
    first stays: a rival claim of an epoch never replaces the first (the stores refuse it
    too, so it can only come from a split brain, which the fencing then refuses)."""
    if seen is None:
        return known
    if known is None or seen.epoch > known.epoch:
        return seen
    return known


def stale_reason(acting: RegionControl, known: RegionControl | None) -> str | None:
    """Why a process acting as `acting.primary_region`'s primary under `acting.epoch` must
    refuse writes, knowing `known`; None when it may write.

    Only another region's claim of this epoch or a later one fences: a later epoch naming
    this same region (promoted again, or a control item recreated at epoch 1 and then
    replaced by the replicated one) leaves it the primary."""
    if known is None or known.epoch < acting.epoch:
        return None
    if known.primary_region == acting.primary_region:
        return None
    if known.epoch > acting.epoch:
        return (
            f"epoch {known.epoch} names {known.primary_region} primary; region "
            f"{acting.primary_region} acts under epoch {acting.epoch}"
        )
    return f"epoch {known.epoch} is claimed by {known.primary_region}, not {acting.primary_region}"


def next_epoch(records: Sequence[RegionControl | None]) -> int:
    return max((record.epoch for record in records if record is not None), default=0) + 1


# --- learning the topology --------------------------------------------------------------------


class TopologyWatcher:
    """The newest topology record this process knows of, refreshed in the background from
    `read` (the region's control item: one strongly consistent GetItem a second). It never
    goes back to an older epoch, and keeps the last one known while the store is down."""

    def __init__(
        self,
        read: Callable[[], Awaitable[RegionControl | None]],
        *,
        initial: RegionControl | None = None,
        interval: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self._read = read
        self._current = initial
        self._interval = interval
        self.refreshed_at: float | None = None  # monotonic
        self._changed = asyncio.Event()

    @property
    def current(self) -> RegionControl | None:
        return self._current

    def observe(self, record: RegionControl | None) -> RegionControl | None:
        before = self._current
        self._current = newer(before, record)
        if self._current != before:
            log.info("topology: %s primary at epoch %s", *_describe(self._current))
            self._changed.set()
            self._changed = asyncio.Event()
        return self._current

    async def refresh(self) -> RegionControl | None:
        """Read the store once; the store being down keeps what is known."""
        try:
            record = await self._read()
        except Exception as error:
            log.debug("topology: not refreshed (%s); keeping epoch %s", error, self.epoch)
            return self._current
        self.refreshed_at = time.monotonic()
        return self.observe(record)

    @property
    def epoch(self) -> int | None:
        return None if self._current is None else self._current.epoch

    async def run(self) -> None:
        """Refresh every `interval` seconds until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)

    async def changed(self) -> None:
        """Wait for the next change of the known record."""
        await self._changed.wait()


def _describe(record: RegionControl | None) -> tuple[str, str]:
    if record is None:
        return ("nobody", "-")
    return (record.primary_region, str(record.epoch))


@dataclass
class WriteFence:
    """The mutation start's check and the write target of one process.

    `configured` is what the process was started as: the primary region it was told of and,
    when it is that primary itself, the epoch it acts under."""

    region: str
    configured: RegionControl
    watcher: TopologyWatcher

    @property
    def acts_as_primary(self) -> bool:
        return self.configured.primary_region == self.region

    def check(self) -> None:
        """Raise StaleEpochError (errorType ReadOnlyRegion) if this process acts as a primary
        that a newer epoch superseded."""
        if not self.acts_as_primary:
            return
        reason = stale_reason(self.configured, self.watcher.current)
        if reason is not None:
            raise StaleEpochError(
                f"region {self.region} is not the primary any more ({reason}): it serves "
                "reads only until it rejoins as a secondary. Retry with the same "
                "idempotencyKey: the edge sends you to a region that can write."
            )

    def primary_region(self) -> str:
        """Where writes go now: the primary of the newest record known, else the configured
        one."""
        return self.primary().primary_region

    def primary(self) -> RegionControl:
        """The primary writes go to now, with the epoch it writes under: the newest record
        known, else what this process was started as."""
        known = self.watcher.current
        if known is None or known.epoch < self.configured.epoch:
            return self.configured
        return known


# --- promotion --------------------------------------------------------------------------------


async def read_newest(stores: Sequence[TopologyStore]) -> RegionControl | None:
    """The newest record among the stores that answer (asked side by side; a store that is
    down is skipped)."""
    answers = await asyncio.gather(*(store.read() for store in stores), return_exceptions=True)
    newest: RegionControl | None = None
    for store, answer in zip(stores, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("topology: %s did not answer (%s)", store.name, answer)
        else:
            newest = newer(newest, answer)
    return newest


async def _claim_where_reachable(store: TopologyStore, control: RegionControl) -> None:
    try:
        if not await store.claim(control):
            log.warning(
                "topology: %s holds a newer record than epoch %d", store.name, control.epoch
            )
    except Exception as error:
        # Replication brings the record there when it answers again.
        log.info("topology: %s not written now (%s)", store.name, error)


async def claim_primary(
    region: str,
    required: Sequence[TopologyStore],
    optional: Sequence[TopologyStore] = (),
    *,
    epoch: int | None = None,
) -> RegionControl:
    """Make `region` the primary under a new epoch: one above the newest any store holds,
    or `epoch` when given (to retry a promotion idempotently: the same region and epoch
    claimed again succeeds). Written to every `required` store in order (PostgreSQL of the
    promoted database first, then the region's own control item), then to the `optional`
    ones that answer (other regions' tables: replication brings it there anyway).

    Raises EpochConflictError, before writing anything further, when a required store holds a
    newer epoch or a rival claim of this one; the error of a required store that cannot be
    reached passes unchanged (retry with the same `epoch`).
    """
    if not required:
        raise ValueError("claim_primary needs at least one required store")
    known = [await store.read() for store in required]
    newest_optional = await read_newest(optional)
    target = epoch if epoch is not None else next_epoch([*known, newest_optional])
    control = RegionControl(primary_region=region, epoch=target)
    for store in required:
        if not await store.claim(control):
            stored = await store.read()
            raise EpochConflictError(
                f"{store.name} holds {_describe(stored)[0]} primary at epoch "
                f"{_describe(stored)[1]}: region {region} cannot claim epoch {target}"
            )
    await asyncio.gather(*(_claim_where_reachable(store, control) for store in optional))
    log.info("topology: %s claimed primary at epoch %d", region, target)
    return control
