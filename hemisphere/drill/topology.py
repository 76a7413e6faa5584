"""The running `hemisphere up` a drill works against: DATA_DIR/topology.json (GLOBAL.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions.latency import GLOBAL, LatencyMatrix, LatencyMatrixError
from regions.latency import load as load_matrix

TOPOLOGY_FILE = "topology.json"


class TopologyError(Exception):
    """No usable `hemisphere up` in the data directory; the message says what to do."""


@dataclass(frozen=True, slots=True)
class RegionUrls:
    graphql: str
    realtime: str


@dataclass(frozen=True, slots=True)
class Topology:
    primary: str
    api_key: str
    control: str
    regions: dict[str, RegionUrls]
    # Keyed by user location (one per region, named after it).
    edges: dict[str, str]
    latency: LatencyMatrix

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(self.edges)

    def edge_realtime(self, location: str) -> str:
        """The edge's AppSync real-time URL: the edge proxies WebSockets on the same paths."""
        return self.edges[location].replace("http", "ws", 1) + "/realtime"

    def nearest_secondary(self, to: str) -> str:
        secondaries = [name for name in self.regions if name != to]
        if not secondaries:
            raise TopologyError(f"{to} has no secondary region to promote")
        return self.latency.nearest_first(to, secondaries)[0]


def load_topology(data_dir: Path, latency: str | None = None) -> Topology:
    path = data_dir / TOPOLOGY_FILE
    if not path.is_file():
        raise TopologyError(
            f"no `hemisphere up` found: {path} does not exist "
            f"(start one with `hemisphere up --data-dir {data_dir}`, or pass --data-dir)"
        )
    try:
        document = json.loads(path.read_text())
        return parse_topology(document, latency)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise TopologyError(f"{path} is not a topology `hemisphere up` wrote: {error}") from None


def parse_topology(document: dict[str, Any], latency: str | None = None) -> Topology:
    """`latency` (a preset or FILE) overrides the matrix the topology names; without either the
    `global` preset is assumed (`hemisphere up`'s default)."""
    try:
        if latency is not None:
            matrix = load_matrix(latency)
        elif "latency" in document:
            matrix = load_matrix(document["latency"])
        else:
            matrix = GLOBAL
    except LatencyMatrixError as error:
        raise ValueError(str(error)) from None
    regions = {
        name: RegionUrls(graphql=str(urls["graphql"]), realtime=str(urls["realtime"]))
        for name, urls in document["regions"].items()
    }
    edges = {location: str(url) for location, url in document["edge"].items()}
    if not regions or not edges:
        raise ValueError("it names no regions or no edges")
    primary = str(document["primary"])
    if primary not in regions:
        raise ValueError(f"its primary {primary!r} is not one of its regions")
    return Topology(
        primary=primary,
        api_key=str(document["api_key"]),
        control=str(document["control"]).rstrip("/"),
        regions=regions,
        edges=edges,
        latency=matrix,
    )
