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


def _per_pipeline(status: Json | None, field: str) -> Iterator[tuple[str, str, object]]:
    """(region, other region, value) of a region's per-target `field` in every region."""
    for region, entry in ((status or {}).get("regions") or {}).items():
        values = entry.get(field) if isinstance(entry, dict) else None
        if isinstance(values, dict):
            for other, value in values.items():
                yield region, other, value


def dynamodb_lags(status: Json | None) -> Iterator[tuple[str, str, float]]:
    """(region, other region, lag ms) for every replication lag a region reports."""
    for region, other, lag in _per_pipeline(status, "dynamodb_replication_lag_ms"):
        if isinstance(lag, int | float):
            yield region, other, float(lag)


def dynamodb_lag_histograms(status: Json | None) -> Iterator[tuple[str, str, Json]]:
    """(region, other region, histogram) for every replication pipeline that reports its
    lag histogram (regions.lag_histogram's wire shape)."""
    for region, other, histogram in _per_pipeline(status, "dynamodb_replication_lag_histogram"):
        if isinstance(histogram, dict):
            yield region, other, histogram


def dynamodb_pending(status: Json | None) -> Iterator[tuple[str, str, float | None]]:
    """(region, other region, age ms of the oldest change on its way there, or None when
    nothing waits) for every pipeline that reports it."""
    for region, other, age in _per_pipeline(status, "dynamodb_replication_pending_ms"):
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
