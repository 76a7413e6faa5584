"""AppSync's request limits, priced on the parsed document before validation (schema.limits)."""

from __future__ import annotations

import pytest

from resolvers.schema import build_schema
from schema.limits import MAX_TOKENS, QueryLimits, check_limits

SCHEMA = build_schema()._schema
DEFAULTS = QueryLimits()
README_QUERY = """query Shop($token: String) {
  region { region primaryRegion readOnly epoch }
  customer(id: "c-0001") { id name email loyaltyPoints }
  products(category: "books", limit: 5, nextToken: $token) {
    items { id name price { amount currency } available }
    nextToken
  }
  ordersByCustomer(customerId: "c-0001", limit: 3) {
    items {
      id status total { amount currency } lines { productName quantity } history { status at }
    }
    nextToken
  }
}"""


def refusal(query: str, limits: QueryLimits = DEFAULTS, **variables: object) -> str | None:
    exceeded = check_limits(SCHEMA, query, None, limits, variables or None)
    return None if exceeded is None else exceeded.message


def aliases(count: int, selection: str) -> str:
    return "{ " + " ".join(f"a{i}: {selection}" for i in range(count)) + " }"


def test_the_contracts_queries_pass_the_default_limits() -> None:
    assert refusal(README_QUERY) is None
    assert refusal('{ product(id: "p-0001") { id name price { amount currency } } }') is None


def test_an_alias_bomb_is_refused_by_its_size_before_it_is_even_parsed_whole() -> None:
    bomb = aliases(10_000, "region { epoch }")  # 240 KB: it held the process for ~10 s
    message = refusal(bomb)
    assert message is not None and f"more than {MAX_TOKENS} tokens" in message


def test_lists_count_once_per_element_a_page_holds() -> None:
    """200 aliases of products(limit: 100) failed the request after 4 s of work."""
    message = refusal(aliases(200, "products(limit: 100) { items { id name } }"))
    assert message is not None and "resolvers" in message
    # A page's size counts: the same selection with small pages passes.
    assert refusal(aliases(10, "products(limit: 5) { items { id name } }")) is None
    # A page given by a variable is priced by its value (and capped at 100 as the resolvers do).
    query = (
        "query($n: Int) { "
        + " ".join(f"a{i}: products(limit: $n) {{ items {{ id name }} }}" for i in range(60))
        + " }"
    )
    assert refusal(query, n=5) is None
    assert refusal(query, n=100) is not None


def test_a_fragment_bomb_is_priced_without_being_expanded() -> None:
    levels = 60  # 2**60 fields once expanded
    fragments = " ".join(
        f"fragment F{i} on RegionInfo {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ region {{ ...F0 }} }} {fragments} fragment F{levels} on RegionInfo {{ epoch }}"
    message = refusal(query)
    assert message is not None and "resolvers" in message


@pytest.mark.parametrize(("limit", "refused"), [(0, False), (5, False), (4, True)])
def test_query_depth(limit: int, refused: bool) -> None:
    # ordersByCustomer 1, items 2, lines 3, unitPrice 4, amount 5
    query = '{ ordersByCustomer(customerId: "c-1") { items { lines { unitPrice { amount } } } } }'
    message = refusal(query, QueryLimits(depth=limit))
    assert message == (
        "The query has a depth of 5, over this API's limit of 4." if refused else None
    )


def test_depth_counts_through_fragments() -> None:
    query = """{ ordersByCustomer(customerId: "c-1") { ...Page } }
      fragment Page on OrderConnection { items { lines { unitPrice { amount } } } }"""
    assert refusal(query, QueryLimits(depth=5)) is None
    assert refusal(query, QueryLimits(depth=4)) is not None


def test_introspection_can_be_turned_off() -> None:
    query = "{ __schema { queryType { name } } }"
    assert refusal(query) is None
    message = refusal(query, QueryLimits(introspection=False))
    assert message is not None and "introspection" in message
    typed = '{ product(id: "p-1") { __typename id } }'
    assert refusal(typed, QueryLimits(introspection=False)) is None  # __typename is no schema


def test_zero_means_no_limit_and_broken_documents_are_left_to_validation() -> None:
    assert (
        refusal(aliases(200, "products(limit: 100) { items { id } }"), QueryLimits(resolvers=0))
        is None
    )
    assert refusal("{ product(id: ") is None
    assert refusal("{ nope { x } }") is None
    assert refusal('fragment A on Product { ...A } { product(id: "1") { ...A } }') is None
