"""The AppSync SDL of the schema, and the check that it agrees with the committed contract.

AppSync accepts a narrower SDL than GraphQL allows: its scalars and `aws_*` directives are used,
never declared; the `schema {}` block is always there; no `extend`; comments are `#` lines (it
rejects some `\"\"\"` descriptions). `export_sdl` prints exactly that; `appsync_violations` says
what in an SDL AppSync would refuse.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import strawberry
from graphql import (
    DirectiveDefinitionNode,
    DocumentNode,
    InterfaceTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    parse,
    print_ast,
)
from strawberry.printer import print_schema

from schema.scalars import APPSYNC_SCALARS

CONTRACT_PATH = Path(__file__).with_name("appsync.graphql")

HEADER = """\
# The AppSync contract Hemisphere serves, exported by `hemisphere schema export`.
# Default authorization mode: API_KEY. Additional modes: AWS_IAM, OPENID_CONNECT.
"""

_BLOCK_DESCRIPTION = re.compile(r'^(?P<indent>[ \t]*)"""\n(?P<body>.*?)\n[ \t]*"""\n', re.M | re.S)
_LINE_DESCRIPTION = re.compile(r'^(?P<indent>[ \t]*)"""(?P<body>.*?)"""\n', re.M)
_SCALAR_DECLARATION = re.compile(r"^scalar (AWS\w+)[^\n]*\n\n?", re.M)


def export_sdl(schema: strawberry.Schema) -> str:
    """The schema as an SDL that AppSync accepts."""
    printed = print_schema(schema)
    printed = _SCALAR_DECLARATION.sub("", printed)
    printed = _BLOCK_DESCRIPTION.sub(_as_comment, printed)
    printed = _LINE_DESCRIPTION.sub(_as_comment, printed)
    if not printed.lstrip().startswith("schema {"):
        core = schema._schema  # graphql-core's schema: the root types by their GraphQL names
        roots = [
            ("query", core.query_type),
            ("mutation", core.mutation_type),
            ("subscription", core.subscription_type),
        ]
        lines = [f"  {op}: {root.name}" for op, root in roots if root is not None]
        printed = "schema {\n" + "\n".join(lines) + "\n}\n\n" + printed
    sdl = HEADER + "\n" + printed.rstrip() + "\n"
    problems = appsync_violations(sdl)
    if problems:
        raise ValueError("the exported SDL breaks AppSync's rules:\n" + "\n".join(problems))
    return sdl


def _as_comment(match: re.Match[str]) -> str:
    indent = match.group("indent")
    lines = (line.strip() for line in match.group("body").split("\n"))
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in lines)


def appsync_violations(sdl: str) -> list[str]:
    """What in `sdl` AppSync would refuse (an empty list when it is acceptable)."""
    problems: list[str] = []
    if '"""' in sdl:
        problems.append('uses """ descriptions: AppSync wants # comments')
    try:
        document = parse(sdl)
    except Exception as exc:  # graphql-core raises GraphQLSyntaxError
        return [*problems, f"does not parse: {exc}"]
    if not any(isinstance(d, SchemaDefinitionNode) for d in document.definitions):
        problems.append("has no schema { query mutation subscription } block")
    for d in document.definitions:
        if isinstance(d, DirectiveDefinitionNode):
            problems.append(f"declares directive @{d.name.value}: AppSync's are built in")
        elif isinstance(d, ScalarTypeDefinitionNode):
            kind = "AppSync's" if d.name.value in APPSYNC_SCALARS else "custom"
            problems.append(f"declares {kind} scalar {d.name.value}: AppSync allows none")
        elif isinstance(d, TypeExtensionNode):
            problems.append(f"extends {d.name.value}: AppSync refuses `extend`")
        elif isinstance(d, InterfaceTypeDefinitionNode) and d.interfaces:
            problems.append(f"interface {d.name.value} implements an interface")
        if isinstance(d, TypeDefinitionNode) and d.name.value.startswith("AWS"):
            problems.append(f"type {d.name.value}: names starting with AWS are reserved")
    return problems


def normalized(sdl: str) -> str:
    """`sdl` without comments or descriptions, definitions sorted by name: equal for two SDLs
    that define the same schema however they are laid out."""
    document = parse(sdl, no_location=True)
    definitions = list(document.definitions)
    for d in definitions:
        _drop_descriptions(d)

    def key(d: object) -> tuple[int, str]:
        name = getattr(d, "name", None)
        return (0 if isinstance(d, SchemaDefinitionNode) else 1, name.value if name else "")

    definitions.sort(key=key)
    return print_ast(DocumentNode(definitions=tuple(definitions))) + "\n"


def _drop_descriptions(node: object) -> None:
    # A freshly parsed document of our own: its (frozen) nodes can be edited in place.
    if hasattr(node, "description"):
        object.__setattr__(node, "description", None)
    for child in ("fields", "arguments", "values"):
        for sub in getattr(node, child, None) or ():
            _drop_descriptions(sub)


def contract_diff(schema: strawberry.Schema, contract: Path = CONTRACT_PATH) -> str:
    """A unified diff between the committed contract and the code's schema ("" if they agree)."""
    ours = normalized(export_sdl(schema)).splitlines(keepends=True)
    theirs = normalized(contract.read_text()).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(theirs, ours, fromfile=str(contract), tofile="schema (code)")
    )
