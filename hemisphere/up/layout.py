"""Where every part of `hemisphere up` listens, and the topology file that tells clients.

Region i (in the order given) owns ten ports from B+10*i: its user location's edge, its API,
its local AWS endpoint, its PostgreSQL, then the delay proxies of its outgoing links (to
each other region's AWS endpoint, then to each other region's PostgreSQL), and last its
replicator's status endpoint. A region keeps
its ports across stop/start, so its URLs never change. B+98 is the card provider (a third
party, one for the world) and B+99 the control endpoint, which also serves the development
token issuer's discovery documents (its URL is the issuer's).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
TOPOLOGY_FILE = "topology.json"
PORTS_PER_REGION = 10
# Five fixed ports (edge, API, AWS endpoint, PostgreSQL, replicator status) and two proxies
# per other region.
MAX_REGIONS = 3
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class LayoutError(ValueError):
    """The regions or ports asked for cannot be laid out; the message says why."""


@dataclass(frozen=True)
class RegionPorts:
    """The ports of one region (and of the user location named after it)."""

    index: int
    name: str
    edge: int
    api: int
    aws: int
    postgres: int
    # Outgoing links: this region's view of each other region's AWS endpoint / PostgreSQL,
    # through a delay proxy that adds the round-trip time between the two.
    aws_via: dict[str, int]
    postgres_via: dict[str, int]
    replicator_status: int

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.api}/graphql"

    @property
    def realtime_url(self) -> str:
        return f"ws://127.0.0.1:{self.api}/graphql/realtime"

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.edge}/graphql"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api}"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws}"


@dataclass(frozen=True)
class Layout:
    regions: tuple[RegionPorts, ...]
    base_port: int
    data_dir: Path

    @classmethod
    def plan(cls, names: list[str], base_port: int, data_dir: Path) -> Layout:
        if not names:
            raise LayoutError("--regions names no region")
        if len(set(names)) != len(names):
            raise LayoutError(f"--regions names a region twice: {','.join(names)}")
        for name in names:
            if not _REGION.match(name):
                raise LayoutError(f"{name!r} is not an AWS region name like us-east-1")
        if len(names) > MAX_REGIONS:
            raise LayoutError(f"at most {MAX_REGIONS} regions fit the port layout")
        if not 1024 <= base_port <= 65535 - 100:
            raise LayoutError(f"--base-port {base_port} leaves no room for 100 ports")
        regions = []
        for i, name in enumerate(names):
            first = base_port + PORTS_PER_REGION * i
            others = [other for other in names if other != name]
            links = iter(range(first + 4, first + PORTS_PER_REGION - 1))
            aws_via = {other: next(links) for other in others}
            postgres_via = {other: next(links) for other in others}
            regions.append(
                RegionPorts(
                    index=i,
                    name=name,
                    edge=first,
                    api=first + 1,
                    aws=first + 2,
                    postgres=first + 3,
                    aws_via=aws_via,
                    postgres_via=postgres_via,
                    replicator_status=first + PORTS_PER_REGION - 1,
                )
            )
        return cls(tuple(regions), base_port, data_dir)

    @property
    def names(self) -> list[str]:
        return [region.name for region in self.regions]

    def region(self, name: str) -> RegionPorts:
        for region in self.regions:
            if region.name == name:
                return region
        raise LayoutError(f"no region {name!r} in this topology ({', '.join(self.names)})")

    @property
    def payments_port(self) -> int:
        return self.base_port + 98

    @property
    def control_port(self) -> int:
        return self.base_port + 99

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def token_issuer_url(self) -> str:
        """The development issuer's `iss`: discovery at <url>/.well-known/…"""
        return self.control_url

    def region_dir(self, name: str) -> Path:
        return self.data_dir / name

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def topology(
        self,
        *,
        primary: str,
        epoch: int,
        api_key: str,
        iam: str,
        latency: dict[str, Any],
        token_issuer: str | None = None,
    ) -> dict[str, Any]:
        """The shape of DATA_DIR/topology.json (GLOBAL.md); `latency` is the injected matrix
        in the FILE form of regions/latency.py; `token_issuer`, when `up` runs one, the URL of
        the development issuer whose tokens every region accepts."""
        topology = {
            "primary": primary,
            "epoch": epoch,
            "api_key": api_key,
            "iam": iam,
            "control": self.control_url,
            "regions": {
                r.name: {"graphql": r.graphql_url, "realtime": r.realtime_url} for r in self.regions
            },
            "edge": {r.name: r.edge_url for r in self.regions},
            "latency": latency,
        }
        if token_issuer is not None:
            topology["token_issuer"] = token_issuer
        return topology


def write_topology(data_dir: Path, topology: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    path = data_dir / TOPOLOGY_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(topology, indent=2) + "\n")
    os.replace(temporary, path)


def read_topology(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / TOPOLOGY_FILE
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded
