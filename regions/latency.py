"""The latency matrix: round-trip times between regions and user locations.

Names are plain strings (a region, or a user location named after one). The matrix is
symmetric: `rtt_ms(a, b) == rtt_ms(b, a)`; `rtt_ms(a, a)` is the RTT from a user location to
its own region (`local_rtt_ms`). A cross-region link adds half the RTT in each direction
(`one_way_seconds`), which is what the delay proxies and the edge routers inject.

Presets (`--latency none|global`):
- `none`: 0 ms for every pair of any names.
- `global`: us-east-1↔eu-west-1 75 ms, us-east-1↔ap-southeast-2 200 ms,
  eu-west-1↔ap-southeast-2 250 ms, a location to its own region 10 ms.

FILE (`--latency path.json`), every key optional except that the result must name the pairs
it is asked for:

    {
      "base": "global",            // a preset to start from (default: no pairs at all)
      "local_rtt_ms": 10,          // a location to its own region
      "default_rtt_ms": 120,       // any pair not listed (default: an unknown pair is an error)
      "rtt_ms": {                  // pairs, either order, each pair once
        "us-east-1": {"eu-west-1": 80, "sa-east-1": 120},
        "eu-west-1": {"sa-east-1": 190}
      }
    }

Pairs in the file override the base preset's. A pair given twice with different values, a
negative or non-numeric RTT, or an unknown key is a `LatencyMatrixError` naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESETS = ("none", "global")
_FILE_KEYS = frozenset({"base", "local_rtt_ms", "default_rtt_ms", "rtt_ms"})


class LatencyMatrixError(ValueError):
    """A latency matrix that cannot be built, or a pair it does not know."""


def _pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


@dataclass(frozen=True)
class LatencyMatrix:
    """Symmetric round-trip times in milliseconds between named places."""

    name: str
    local_rtt_ms: float = 0.0
    # Any pair not listed; None makes an unknown pair an error (a typo must not read as 0 ms).
    default_rtt_ms: float | None = None
    pairs: Mapping[frozenset[str], float] = field(default_factory=dict)

    def rtt_ms(self, a: str, b: str) -> float:
        """The round-trip time between `a` and `b`; a location to its own region when equal."""
        if a == b:
            return self.local_rtt_ms
        rtt = self.pairs.get(_pair(a, b), self.default_rtt_ms)
        if rtt is None:
            known = sorted({name for pair in self.pairs for name in pair})
            raise LatencyMatrixError(
                f"latency matrix {self.name!r} has no RTT for {a}↔{b} "
                f"(it knows {', '.join(known) or 'no places'}); give a FILE with that pair"
            )
        return rtt

    def one_way_seconds(self, a: str, b: str) -> float:
        """The delay to add in each direction of a link between `a` and `b`: half the RTT."""
        return self.rtt_ms(a, b) / 2000.0

    def nearest_first(self, location: str, regions: list[str]) -> list[str]:
        """`regions` from the lowest RTT to `location` to the highest. On a tie the location's
        own region comes first (with `none`, every RTT is 0 and each location keeps its own),
        then the order given."""
        return sorted(
            regions, key=lambda region: (self.rtt_ms(location, region), region != location)
        )

    def to_json(self) -> dict[str, Any]:
        """The FILE form of this matrix (`load` reads it back to the same RTTs)."""
        table: dict[str, dict[str, float]] = {}
        for pair, rtt in sorted(self.pairs.items(), key=lambda item: sorted(item[0])):
            first, second = sorted(pair)
            table.setdefault(first, {})[second] = rtt
        document: dict[str, Any] = {"local_rtt_ms": self.local_rtt_ms, "rtt_ms": table}
        if self.default_rtt_ms is not None:
            document["default_rtt_ms"] = self.default_rtt_ms
        return document


NONE = LatencyMatrix(name="none", local_rtt_ms=0.0, default_rtt_ms=0.0)
GLOBAL = LatencyMatrix(
    name="global",
    local_rtt_ms=10.0,
    pairs={
        _pair("us-east-1", "eu-west-1"): 75.0,
        _pair("us-east-1", "ap-southeast-2"): 200.0,
        _pair("eu-west-1", "ap-southeast-2"): 250.0,
    },
)
_PRESETS = {"none": NONE, "global": GLOBAL}


def preset(name: str) -> LatencyMatrix:
    try:
        return _PRESETS[name]
    except KeyError:
        raise LatencyMatrixError(
            f"unknown latency preset {name!r}: use one of {', '.join(PRESETS)} or a JSON file"
        ) from None


def load(spec: str | Path | Mapping[str, Any]) -> LatencyMatrix:
    """A preset name, a path to a FILE, or a FILE's already-parsed content."""
    if isinstance(spec, Mapping):
        return from_document(spec, source="inline latency matrix")
    if isinstance(spec, str) and spec in _PRESETS:
        return _PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise LatencyMatrixError(
            f"latency {str(spec)!r} is neither a preset ({', '.join(PRESETS)}) nor a file"
        )
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LatencyMatrixError(f"latency file {path}: not readable JSON ({error})") from None
    return from_document(document, source=f"latency file {path}")


def from_document(document: object, source: str) -> LatencyMatrix:
    if not isinstance(document, Mapping):
        raise LatencyMatrixError(f"{source}: expected a JSON object at the top")
    unknown = set(document) - _FILE_KEYS
    if unknown:
        raise LatencyMatrixError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(_FILE_KEYS))}"
        )
    base = preset(_string(document["base"], f"{source}: base")) if "base" in document else None
    local = document.get("local_rtt_ms", base.local_rtt_ms if base else 0.0)
    default = document.get("default_rtt_ms", base.default_rtt_ms if base else None)
    pairs = dict(base.pairs) if base else {}
    pairs.update(_pairs(document.get("rtt_ms", {}), source))
    return LatencyMatrix(
        name=source,
        local_rtt_ms=_milliseconds(local, f"{source}: local_rtt_ms"),
        default_rtt_ms=None
        if default is None
        else _milliseconds(default, f"{source}: default_rtt_ms"),
        pairs=pairs,
    )


def _pairs(table: object, source: str) -> dict[frozenset[str], float]:
    if not isinstance(table, Mapping):
        raise LatencyMatrixError(f"{source}: rtt_ms must be an object of objects")
    pairs: dict[frozenset[str], float] = {}
    for a, row in table.items():
        if not isinstance(row, Mapping):
            raise LatencyMatrixError(f"{source}: rtt_ms[{a!r}] must be an object")
        for b, value in row.items():
            where = f"{source}: rtt_ms {a}↔{b}"
            if a == b:
                raise LatencyMatrixError(f"{where}: use local_rtt_ms for a place and itself")
            rtt = _milliseconds(value, where)
            previous = pairs.setdefault(_pair(a, b), rtt)
            if previous != rtt:
                raise LatencyMatrixError(f"{where}: given twice ({previous} and {rtt})")
    return pairs


def _milliseconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LatencyMatrixError(f"{where}: expected a number of milliseconds ≥ 0, got {value!r}")
    return float(value)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise LatencyMatrixError(f"{where}: expected a string, got {value!r}")
    return value
