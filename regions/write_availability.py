"""Whether this region can write now: what `region { readOnly }` tells a frontend.

A region is read-only while its writes would be refused with ReadOnlyRegion: it acts as a
primary that a newer epoch superseded (the fence), or the primary its writes go to cannot be
reached. The second is known from the writes themselves (the read-only guard of
regions.routing reports each call's outcome here) and, between writes, from a probe of the
primary's workflow endpoint (`PrimaryProbe`): without it, a secondary would claim it can
write until a user's checkout found out otherwise. The operator's switch in the replicated
control record is read beside this, by the resolver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from domain.errors import BackendUnavailableError, ReadOnlyRegionError
from regions.control import WriteFence

log = logging.getLogger(__name__)

# Probes in a row that must fail before a primary no write has reached counts as
# unreachable: one lost probe on a busy link is not an outage. A write that fails counts at
# once: it is what the user met.
PROBE_FAILURES_TO_UNREACHABLE = 2
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 1.0


class PrimaryEndpoint(Protocol):
    async def ping(self) -> None:
        """Return once the endpoint answered anything (a refusal is an answer); raise
        BackendUnavailableError when it cannot be reached."""
        ...


class WriteAvailability:
    """The region's answer to "can I write now?", kept from its writes and its probes."""

    def __init__(
        self, fence: WriteFence, *, failures_to_unreachable: int = PROBE_FAILURES_TO_UNREACHABLE
    ) -> None:
        self._fence = fence
        self._failures_to_unreachable = failures_to_unreachable
        self._failures: dict[str, int] = {}
        self._unreachable: dict[str, str] = {}  # primary region -> what failed

    def read_only_reason(self) -> str | None:
        """Why this region's writes would be refused now; None when they would go through."""
        try:
            self._fence.check()
        except ReadOnlyRegionError as fenced:
            return fenced.message
        primary = self._fence.primary_region()
        if primary == self._fence.region:
            return None
        return self._unreachable.get(primary)

    def reached(self, primary: str) -> None:
        """A call to `primary`'s write endpoint was answered."""
        if self._unreachable.pop(primary, None) is not None:
            log.info("the primary region %s answers again: this region can write", primary)
        self._failures.pop(primary, None)

    def missed(self, primary: str, cause: str, *, by_a_write: bool) -> None:
        """A call to `primary`'s write endpoint found it unreachable (`by_a_write`: a user's
        write, which counts at once; else a probe, which counts after a few in a row)."""
        failures = self._failures.get(primary, 0) + 1
        self._failures[primary] = failures
        if primary in self._unreachable:
            return
        if by_a_write or failures >= self._failures_to_unreachable:
            self._unreachable[primary] = f"cannot reach the primary region {primary} ({cause})"
            log.warning("the primary region %s is unreachable (%s): read-only", primary, cause)


class PrimaryProbe:
    """Asks the primary's workflow endpoint for an answer every `interval` while another
    region is the primary, and tells `availability` what it found."""

    def __init__(
        self,
        availability: WriteAvailability,
        fence: WriteFence,
        endpoints: Mapping[str, PrimaryEndpoint],
        *,
        interval: float = PROBE_INTERVAL_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self._availability = availability
        self._fence = fence
        self._endpoints = endpoints
        self._interval = interval
        self._timeout = timeout

    async def run(self) -> None:
        while True:
            try:
                await self.probe_once()
            except Exception:  # a bug in an endpoint must not end the probing for good
                log.exception("probe of the primary's write endpoint failed")
            await asyncio.sleep(self._interval)

    async def probe_once(self) -> None:
        primary = self._fence.primary_region()
        endpoint = self._endpoints.get(primary)
        if primary == self._fence.region or endpoint is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await endpoint.ping()
        except TimeoutError:
            cause = f"no answer within {self._timeout:g}s"
            self._availability.missed(primary, cause, by_a_write=False)
        except BackendUnavailableError as unreachable:
            self._availability.missed(primary, unreachable.message, by_a_write=False)
        else:
            self._availability.reached(primary)
