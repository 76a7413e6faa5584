"""APPSYNC_JS files from the sources under js/: AppSync takes one self-contained module per
resolver or function (it resolves no imports but `@aws-appsync/utils`), so the helpers of
js/lib/ that a source uses are copied into it, after its imports.

A helper file is included when the source (or a helper already included) names one of the
functions or constants it declares at top level, so a source never lists what it needs and
never carries a helper it does not use (ESLint's no-unused-vars checks the result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

APPSYNC_JS_RUNTIME: Final = {"name": "APPSYNC_JS", "runtimeVersion": "1.0.0"}

_DECLARATION: Final = re.compile(r"^(?:function|const|let)\s+([A-Za-z_$][\w$]*)", re.M)
_IMPORT: Final = re.compile(r"^import [^;]+;\n", re.M)
_WORD: Final = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True, slots=True)
class Helper:
    name: str
    text: str
    declares: frozenset[str]


def _root() -> Traversable:
    return resources.files(__package__ or __name__.rpartition(".")[0]) / "js"


def _read(relative: str) -> str:
    return (_root() / relative).read_text(encoding="utf-8")


@cache
def helpers() -> tuple[Helper, ...]:
    """The files of js/lib/, in name order (the order they are copied in)."""
    folder = _root() / "lib"
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".js"):
            text = entry.read_text(encoding="utf-8")
            found.append(Helper(entry.name, text, frozenset(_DECLARATION.findall(text))))
    return tuple(found)


def bundle(source: str) -> str:
    """The self-contained APPSYNC_JS module of `source` (a path under js/)."""
    text = _read(source)
    imports = "".join(_IMPORT.findall(text))
    body = _IMPORT.sub("", text).lstrip("\n")
    included: list[Helper] = []
    words = set(_WORD.findall(body))
    changed = True
    while changed:  # a helper may use another helper
        changed = False
        for helper in helpers():
            if helper not in included and helper.declares & words:
                included.append(helper)
                words |= set(_WORD.findall(helper.text))
                changed = True
    # Keep js/lib's name order, whatever order they were found in.
    ordered = [h for h in helpers() if h in included]
    parts = [imports.rstrip("\n")] if imports else []
    parts += [f"// --- helpers from {h.name} ---\n{h.text.strip()}" for h in ordered]
    parts.append(f"// --- {source} ---\n{body.strip()}")
    return "\n\n".join(parts) + "\n"
