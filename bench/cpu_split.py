"""Split a Python server's CPU samples into where the time went, for bench/read_path.py.

Each py-spy sample (a stack, root first) goes to the category of its innermost frame whose
file belongs to a category:

- `graphql`: graphql-core and strawberry (parse, validate, execute, serialize);
- `store`: the DynamoDB client stack (aioboto3, aiobotocore, botocore, aiohttp);
- `http`: the HTTP server (uvicorn, starlette, h11, httptools);
- `project`: Hemisphere's own code (the repository's packages; not the CLI's launch frames).

Frames of the standard library and of other third-party packages (yarl, jmespath, orjson
wrappers, itsdangerous, ...) match no category: they count for whoever called them, e.g.
`hmac` under botocore's signer is store-client work. A sample with no matching frame at all
is the event loop's own work (`loop`: asyncio's selector and callbacks) or `other`.
`project`, `loop` and `other` together are "the rest".

`split_cprofile` does the same from cProfile statistics (the fallback when py-spy cannot
attach): self time of a function in a category counts for it; self time elsewhere is handed
to its callers in proportion to the time each caller spent in it.
"""

from __future__ import annotations

import pstats
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CATEGORY_LABELS: dict[str, str] = {
    "graphql": "GraphQL (graphql-core + strawberry)",
    "store": "store client (aiobotocore/botocore/aiohttp)",
    "http": "HTTP server (uvicorn/starlette/h11/httptools)",
    "project": "rest: Hemisphere's own code",
    "loop": "rest: event loop (asyncio)",
    "other": "rest: other (stdlib, elsewhere)",
}
MAIN_CATEGORIES = ("graphql", "store", "http")
REST_CATEGORIES = ("project", "loop", "other")

_PACKAGES: dict[str, tuple[str, ...]] = {
    "graphql": ("graphql", "strawberry"),
    "store": ("aioboto3", "aiobotocore", "botocore", "boto3", "aiohttp"),
    "http": ("uvicorn", "starlette", "h11", "httptools"),
}
# The serve process's launch frames: present at the root of every stack, not request work.
_LAUNCH_FILES = ("hemisphere/cli.py",)


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        """`function (path)` or `function (path:line)`, as py-spy writes them."""
        head, sep, tail = text.rpartition(" (")
        if not sep or not tail.endswith(")"):
            return cls(text, "")
        path = tail[:-1]
        name, colon, line = path.rpartition(":")
        if colon and line.isdigit():
            path = name
        return cls(head, path)


@dataclass
class Split:
    """Samples (or seconds, for cProfile) per category, with the frames they landed on."""

    source: str
    total: float = 0.0
    by_category: dict[str, float] = field(default_factory=dict)
    # per category: the innermost matching frame (the leaf, for loop/other) -> amount
    frames: dict[str, dict[str, float]] = field(default_factory=dict)
    # where the CPU actually was: (leaf frame, category) -> amount
    leaves: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, category: str, frame_label: str, leaf: tuple[str, str], amount: float) -> None:
        self.total += amount
        self.by_category[category] = self.by_category.get(category, 0.0) + amount
        frames = self.frames.setdefault(category, {})
        frames[frame_label] = frames.get(frame_label, 0.0) + amount
        self.leaves[leaf] = self.leaves.get(leaf, 0.0) + amount

    def share(self, category: str) -> float:
        return self.by_category.get(category, 0) / self.total if self.total else 0.0

    def rest_share(self) -> float:
        return sum(self.share(c) for c in REST_CATEGORIES)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "total": self.total,
            "share": {c: self.share(c) for c in CATEGORY_LABELS},
            "top_frames": {c: dict(top(n, 8)) for c, n in self.frames.items()},
            "top_leaves": [
                {"frame": frame, "category": cat, "amount": amount}
                for (frame, cat), amount in top(self.leaves, 15)
            ],
        }


def top(amounts: Mapping[T, float], n: int) -> list[tuple[T, float]]:
    return sorted(amounts.items(), key=lambda kv: kv[1], reverse=True)[:n]


class Classifier:
    def __init__(self, repo: Path) -> None:
        self._repo = str(repo.resolve()) + "/"

    def category(self, path: str) -> str | None:
        """The category of a file, or None when its frames count for their caller."""
        if "site-packages/" in path:
            package = path.split("site-packages/", 1)[1].split("/", 1)[0]
            for category, packages in _PACKAGES.items():
                if package in packages:
                    return category
            return None
        if path.startswith(self._repo) and "/.venv/" not in path:
            relative = path[len(self._repo) :]
            return None if relative in _LAUNCH_FILES else "project"
        return None

    def unmatched(self, leaf: Frame) -> str:
        is_loop = "/asyncio/" in leaf.file or leaf.file.endswith(("/selectors.py", "uvloop"))
        return "loop" if is_loop else "other"

    def label(self, frame: Frame) -> str:
        path = frame.file
        if "site-packages/" in path:
            path = path.split("site-packages/", 1)[1]
        elif path.startswith(self._repo):
            path = path[len(self._repo) :]
        elif "/lib/python3" in path:
            path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return f"{path}:{frame.function}"


def split_pyspy(raw_lines: Iterable[str], classifier: Classifier) -> Split:
    """Parse py-spy's `--format raw` output (collapsed stacks: `f1;f2;...;leaf COUNT`)."""
    split = Split(source="py-spy")
    for line in raw_lines:
        stack, _, count_text = line.strip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [Frame.parse(part) for part in stack.split(";")]
        leaf = frames[-1]
        matched: tuple[str, Frame] | None = None
        for frame in reversed(frames):
            category = classifier.category(frame.file)
            if category is not None:
                matched = (category, frame)
                break
        category, frame = matched or (classifier.unmatched(leaf), leaf)
        split.add(
            category, classifier.label(frame), (classifier.label(leaf), category), int(count_text)
        )
    return split


_Key = tuple[str, int, str]


def split_cprofile(stats_path: Path, classifier: Classifier) -> Split:
    """The same split from a cProfile dump (self time, handed to callers when unmatched)."""
    stats: Mapping[_Key, tuple[int, int, float, float, Mapping[_Key, tuple[float, ...]]]]
    stats = pstats.Stats(str(stats_path)).stats  # type: ignore[attr-defined]
    resolved: dict[_Key, dict[tuple[str, str], float]] = {}

    def owners(key: _Key, seen: frozenset[_Key]) -> dict[tuple[str, str], float]:
        """(category, frame label) -> fraction of key's self time."""
        if key in resolved:
            return resolved[key]
        file, _, function = key
        frame = Frame(function, file)
        category = classifier.category(file)
        if category is not None:
            result = {(category, classifier.label(frame)): 1.0}
        else:
            callers = stats[key][4] if key in stats else {}
            weights = {c: float(v[2]) for c, v in callers.items() if c not in seen}
            total = sum(weights.values())
            if not total:
                result = {(classifier.unmatched(frame), classifier.label(frame)): 1.0}
            else:
                result = {}
                for caller, weight in weights.items():
                    for owner, fraction in owners(caller, seen | {key}).items():
                        result[owner] = result.get(owner, 0.0) + fraction * weight / total
        resolved[key] = result  # also under a cycle guard: an approximation, rare in practice
        return result

    split = Split(source="cProfile")
    for key, (_, _, self_time, _, _) in stats.items():
        if self_time <= 0:
            continue
        leaf = classifier.label(Frame(key[2], key[0]))
        for (category, label), fraction in owners(key, frozenset()).items():
            split.add(category, label, (leaf, category), self_time * fraction)
    return split
