"""The rooms of ../shared/DESIGN.md ("Rooms (top-level folders)"): what each top-level folder
may import, read from the source (every import statement, at any depth, TYPE_CHECKING ones
included), and no import loop between folders.

A *ports module* is a `ports.py` or `*_ports.py`: small Protocols (and the named errors of
their contracts) that import nothing of the project but `domain`, so that importing one never
makes a loop. Rooms whose row says "ports" may import any room's ports modules; adapters may
import "the `*/ports.py` whose port [they implement]" (which of them an adapter implements is
left to review: the test checks that it is a ports module).

One deliberate addition to DESIGN.md's table (docs/decisions.md, 2026-12-03): `resolvers`
may import `subscriptions`. The resolvers compose the API, Subscription root included (the
executable schema in resolvers/schema.py), and the publish* mutations hand their result to
the broker (subscriptions/publication.py); so subscriptions/ must never import resolvers/,
which the loop check holds.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# DESIGN.md's table: the rooms each room may import (besides itself), and whether its row says
# "ports". `hemisphere` is the composition root: everything.
ROOMS: dict[str, tuple[frozenset[str], bool]] = {
    "domain": (frozenset(), False),  # and only the standard library: see below
    "schema": (frozenset({"domain"}), False),
    "resolvers": (frozenset({"schema", "domain", "subscriptions"}), True),
    "subscriptions": (frozenset({"schema", "domain"}), True),
    "workflows": (frozenset({"domain"}), True),
    "projections": (frozenset({"domain"}), True),
    "regions": (frozenset({"domain"}), True),
    "adapters": (frozenset({"domain"}), True),
    "hemisphere": (frozenset(), True),  # may import every room
}
# Rows marked "—": not part of the service; they may import anything, nothing imports them.
UNCHECKED = frozenset({"tests", "bench", "deploy"})

# Imports that break a rule today, each with why it is tolerated and what would remove it.
# The test fails when one is no longer made, so the list only shrinks.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("adapters.redis", "subscriptions.inprocess"): (
        "The Redis broker delivers each message to this instance's subscribers through "
        "subscriptions' own LocalFanout and VersionGate (the subscriber index and the "
        "never-an-older-version rule are subscriptions' logic, reused rather than copied). "
        "To remove: the composition root hands RedisBroker its fan-out."
    ),
    ("regions.replication", "subscriptions.checkpoints"): (
        "The replicator reads each region's stream as the publisher does: it shares the "
        "CheckpointStore port and ready_shards (parents before children), which live beside "
        "the publisher. To remove: move them to a module both may import (a ports module and "
        "a shared stream-reading helper)."
    ),
    ("regions.replication", "subscriptions.lease"): (
        "The replicator holds its per-region lease with the publisher's LeaseKeeper. To "
        "remove: the lease keeper moves below both rooms, with the checkpoints above."
    ),
}


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, `adapters.redis`
    target: str  # the imported module, as precise as the files allow
    line: int

    @property
    def source_room(self) -> str:
        return self.source.split(".")[0]

    @property
    def target_room(self) -> str:
        return self.target.split(".")[0]

    def __str__(self) -> str:
        path = self.source.replace(".", "/")
        return f"{path}.py:{self.line} imports {self.target}"


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _project_files() -> Iterator[Path]:
    for room in ROOMS:
        yield from sorted((ROOT / room).rglob("*.py"))


def _imports(path: Path) -> Iterator[Import]:
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # `from adapters.dynamodb import items` imports the module adapters.dynamodb.items.
                submodule = f"{base}.{alias.name}"
                yield Import(module, submodule if _is_module(submodule) else base, node.lineno)


@cache
def _all_imports() -> list[Import]:
    # A set first: `from x import a, b` names module x twice on one line.
    found = {i for path in _project_files() for i in _imports(path)}
    return sorted(found, key=lambda i: (i.source, i.line, i.target))


def _project_imports() -> list[Import]:
    return [i for i in _all_imports() if i.target_room in ROOMS or i.target_room in UNCHECKED]


def _is_ports_module(module: str) -> bool:
    name = module.rsplit(".", 1)[-1]
    return name == "ports" or name.endswith("_ports")


def _allowed(i: Import) -> bool:
    if i.source_room == i.target_room:
        return True
    rooms, ports = ROOMS[i.source_room]
    if i.source_room == "hemisphere" and i.target_room in ROOMS:
        return True
    if ports and _is_ports_module(i.target):
        return True
    return i.target_room in rooms


def test_every_top_level_folder_with_python_has_a_row() -> None:
    folders = {p.relative_to(ROOT).parts[0] for p in ROOT.glob("*/**/*.py")}
    folders -= {".venv", "node_modules", "build"}
    folders = {f for f in folders if not f.startswith(".")}
    assert folders <= set(ROOMS) | UNCHECKED, folders - set(ROOMS) - UNCHECKED


def test_domain_imports_the_standard_library_only() -> None:
    outside = [
        str(i)
        for i in _all_imports()
        if i.source_room == "domain"
        and i.target_room != "domain"
        and i.target_room not in sys.stdlib_module_names
    ]
    assert outside == []


def test_ports_modules_import_only_domain() -> None:
    # What makes importing a ports module safe from loops.
    wrong = [
        str(i)
        for i in _project_imports()
        if _is_ports_module(i.source) and i.target_room != "domain"
    ]
    assert wrong == []


def test_no_room_imports_what_its_row_does_not_allow() -> None:
    imports = _project_imports()
    broken = [i for i in imports if not _allowed(i)]
    unexplained = [str(i) for i in broken if (i.source, i.target) not in KNOWN_EXCEPTIONS]
    heading = "imports DESIGN.md's rooms do not allow (fix, or explain in KNOWN_EXCEPTIONS):"
    assert unexplained == [], "\n".join([heading, *unexplained])
    made = {(i.source, i.target) for i in broken}
    stale = sorted(set(KNOWN_EXCEPTIONS) - made)
    assert stale == [], f"no longer made (remove from KNOWN_EXCEPTIONS): {stale}"


def _room_graph(imports: list[Import]) -> dict[str, dict[str, list[Import]]]:
    """room -> room it imports -> the imports that make the edge. Imports of ports modules
    are left out: a ports module imports only domain (test above), so no loop goes through
    one."""
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for i in imports:
        if i.source_room != i.target_room and not _is_ports_module(i.target):
            graph[i.source_room][i.target_room].append(i)
    return graph


def _loops(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The strongly connected groups of more than one room (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(room: str) -> None:
        index[room] = low[room] = len(index)
        stack.append(room)
        on_stack.add(room)
        for other in graph.get(room, {}):
            if other not in index:
                visit(other)
                low[room] = min(low[room], low[other])
            elif other in on_stack:
                low[room] = min(low[room], index[other])
        if low[room] == index[room]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == room:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for room in sorted(graph):
        if room not in index:
            visit(room)
    return groups


def test_no_import_loop_between_top_level_folders() -> None:
    graph = _room_graph(_project_imports())
    described = []
    for group in _loops(graph):
        edges = [
            str(i)
            for a in group
            for b in group
            for i in graph.get(a, {}).get(b, [])[:3]  # a few of each edge are enough
        ]
        described.append(f"loop between {', '.join(group)}:\n  " + "\n  ".join(edges))
    assert described == [], "\n".join(described)


def test_the_loop_check_sees_a_loop() -> None:
    # The two imports this change removed (subscriptions/ importing resolvers/) would be one.
    imports = [
        Import("resolvers.schema", "subscriptions.fields", 1),
        Import("subscriptions.delivery", "resolvers.context", 1),
        Import("subscriptions.context", "resolvers.ports", 1),
    ]
    assert _loops(_room_graph(imports)) == [["resolvers", "subscriptions"]]
