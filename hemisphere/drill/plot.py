"""`--plot OUT.png`: read latency per location over time, errors marked, events as vertical
lines. matplotlib with the Agg backend (no display), imported only when a plot is asked for:
it is the optional extra `hemisphere[drill]`."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from hemisphere.drill.phases import percentile
from hemisphere.drill.records import Observations
from hemisphere.drill.report import EventRow

BIN_S = 1.0


class PlotUnavailableError(Exception):
    pass


def plot_reads(observations: Observations, events: list[EventRow], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailableError(
            "--plot needs matplotlib: pip install 'hemisphere[drill]'"
        ) from None
    start = observations.started
    figure, axes = plt.subplots(figsize=(12, 6))
    for location in observations.locations:
        reads = [r for r in observations.requests if r.kind == "read" and r.location == location]
        bins: dict[int, list[float]] = defaultdict(list)
        for r in reads:
            if r.ok:
                bins[int((r.started - start) / BIN_S)].append(r.latency_ms)
        # A bin without reads (the readers were on the baseline path) breaks the line (NaN).
        xs = list(range(min(bins), max(bins) + 1)) if bins else []
        line = axes.plot(
            [x * BIN_S for x in xs],
            [_median(bins.get(x, [])) for x in xs],
            label=f"{location} p50 per {BIN_S:.0f} s",
        )
        failed = [r for r in reads if not r.ok]
        if failed:
            axes.scatter(
                [r.started - start for r in failed],
                [max(r.latency_ms, 1.0) for r in failed],
                marker="x",
                color=line[0].get_color(),
                label=f"{location} errors",
            )
    axes.set_yscale("log")
    axes.set_xlabel("seconds since the start")
    axes.set_ylabel("read latency (ms)")
    for index, event in enumerate(events):
        axes.axvline(event.at_s, color="grey", linestyle=":", linewidth=1)
        axes.annotate(
            f"{event.name} {event.region}",
            # Three heights in turn, so that the labels of close events do not overprint.
            (event.at_s, 1.0 - 0.22 * (index % 3)),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
        )
    axes.legend(loc="upper left", fontsize=8)
    axes.set_title("Reads per location through the edges")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _median(latencies: list[float]) -> float:
    value = percentile(latencies, 50)
    return math.nan if value is None else value
