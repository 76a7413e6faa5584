"""The GraphQL documents of the contract's publish* mutations, built from the committed SDL.

The change-stream publisher sends each change as its aggregate's publish mutation
(domain.aggregates), selecting every field, recursively: AppSync passes a subscriber only what
the triggering mutation selected, so the publisher selects everything any subscriber may ask
for. Built from the SDL rather than written out, so a field added to a type is published the
day it is added.
"""

from __future__ import annotations

from functools import cache

from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    TypeNode,
    parse,
)

from domain.aggregates import AGGREGATES
from schema.export import CONTRACT_PATH


def _named(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def _object_types(document: DocumentNode) -> dict[str, ObjectTypeDefinitionNode]:
    return {
        d.name.value: d for d in document.definitions if isinstance(d, ObjectTypeDefinitionNode)
    }


def selection_set(document: DocumentNode, type_name: str) -> str:
    """Every field of `type_name`, recursively into object-typed fields: `{ id price {
    amount currency } ... }`."""
    types = _object_types(document)

    def fields(name: str) -> str:
        parts = []
        for f in types[name].fields or ():
            inner = _named(f.type)
            parts.append(f"{f.name.value} {fields(inner)}" if inner in types else f.name.value)
        return "{ " + " ".join(parts) + " }"

    return fields(type_name)


def publication_documents(contract: DocumentNode | None = None) -> dict[str, str]:
    """The GraphQL document of each publish mutation, by mutation name (of the committed
    contract unless `contract` is given)."""
    if contract is None:
        return dict(_committed_documents())
    mutation_fields: dict[str, FieldDefinitionNode] = {
        f.name.value: f for f in _object_types(contract)["Mutation"].fields or ()
    }
    documents = {}
    for aggregate in AGGREGATES:
        mutation = aggregate.publish_mutation
        definition = mutation_fields[mutation]
        (argument,) = definition.arguments or ()
        input_type = _named(argument.type)
        documents[mutation] = (
            f"mutation {mutation[0].upper()}{mutation[1:]}($input: {input_type}!) "
            f"{{ {mutation}(input: $input) {selection_set(contract, _named(definition.type))} }}"
        )
    return documents


@cache
def _committed_documents() -> dict[str, str]:
    # Parsed once per process: every publisher (and every test's) asks for the same ones.
    return publication_documents(parse(CONTRACT_PATH.read_text()))
