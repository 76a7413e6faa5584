"""Reading the control endpoint's GET /status answers (GLOBAL.md's shape), tolerant of fields
a version of `hemisphere up` does not fill in: a missing figure is None, never an error."""

from __future__ import annotations

from collections.abc import Iterator

from hemisphere.drill.records import Json, StatusPoll


def region_entry(status: Json | None, region: str) -> Json:
    if not status:
        return {}
    entry = (status.get("regions") or {}).get(region)
    return entry if isinstance(entry, dict) else {}


def dynamodb_lags(status: Json | None) -> Iterator[tuple[str, str, float]]:
    """(region, other region, lag ms) for every replication lag a region reports."""
    for region, entry in ((status or {}).get("regions") or {}).items():
        lags = entry.get("dynamodb_replication_lag_ms") if isinstance(entry, dict) else None
        for other, lag in (lags or {}).items():
            if isinstance(lag, int | float):
                yield region, other, float(lag)


def dynamodb_lag_histograms(status: Json | None) -> Iterator[tuple[str, str, Json]]:
    """(region, other region, histogram) for every replication pipeline that reports its
    lag histogram (regions.lag_histogram's wire shape)."""
    for region, entry in ((status or {}).get("regions") or {}).items():
        histograms = (
            entry.get("dynamodb_replication_lag_histogram") if isinstance(entry, dict) else None
        )
        for other, histogram in (histograms or {}).items():
            if isinstance(histogram, dict):
                yield region, other, histogram


def dynamodb_pending(status: Json | None) -> Iterator[tuple[str, str, float | None]]:
    """(region, other region, age ms of the oldest change on its way there, or None when
    nothing waits) for every pipeline that reports it."""
    for region, entry in ((status or {}).get("regions") or {}).items():
        pending = entry.get("dynamodb_replication_pending_ms") if isinstance(entry, dict) else None
        for other, age in (pending or {}).items():
            yield region, other, float(age) if isinstance(age, int | float) else None


def postgres_lags(status: Json | None) -> Iterator[tuple[str, float]]:
    """(region, replay lag ms) for every standby that reports one."""
    for region, entry in ((status or {}).get("regions") or {}).items():
        lag = entry.get("postgres_replay_lag_ms") if isinstance(entry, dict) else None
        if isinstance(lag, int | float):
            yield region, float(lag)


def last_before(polls: list[StatusPoll], at: float) -> StatusPoll | None:
    """The last answered poll taken before `at`."""
    answered = [poll for poll in polls if poll.at < at and poll.status is not None]
    return answered[-1] if answered else None
