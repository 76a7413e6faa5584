"""The rooms' import rules (DESIGN.md, "Rooms"), read from the source: arrows point
inward, and an adapter imports another room only through the `ports` module whose port it
implements (a port is defined once, never copied into its adapter)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = (
    "adapters",
    "domain",
    "hemisphere",
    "projections",
    "regions",
    "resolvers",
    "schema",
    "subscriptions",
    "workflows",
)
# Imports that break the rules today, each to be removed rather than added to.
KNOWN = {
    ("adapters/redis.py", "subscriptions.inprocess"),  # LocalFanout and VersionGate
}


def project_imports(room: str) -> Iterator[tuple[str, str]]:
    """(file, module) for every import of a project module in the room."""
    for path in sorted((ROOT / room).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in ROOMS:
                    yield str(path.relative_to(ROOT)), module


def is_ports(module: str) -> bool:
    return module.rsplit(".", 1)[-1].endswith("ports")


def test_the_domain_imports_only_itself() -> None:
    assert [i for i in project_imports("domain") if not i[1].startswith("domain")] == []


@pytest.mark.parametrize(
    "room", ["workflows", "projections", "regions", "resolvers", "subscriptions", "schema"]
)
def test_no_inner_room_imports_an_adapter_or_the_composition_root(room: str) -> None:
    outward = [i for i in project_imports(room) if i[1].split(".")[0] in {"adapters", "hemisphere"}]
    assert outward == []


def test_adapters_import_other_rooms_only_through_their_ports() -> None:
    others = [
        (path, module)
        for path, module in project_imports("adapters")
        if module.split(".")[0] not in {"adapters", "domain"} and not is_ports(module)
    ]
    assert set(others) == KNOWN


def test_a_ports_module_imports_only_the_domain() -> None:
    ports = [
        (path, module)
        for room in ROOMS
        for path, module in project_imports(room)
        if Path(path).stem.endswith("ports") and not module.startswith("domain")
    ]
    assert ports == []
