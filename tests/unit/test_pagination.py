import pytest

from domain.errors import BadRequestError
from resolvers.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageTokens, page_limit


def test_limits() -> None:
    assert page_limit(None) == DEFAULT_LIMIT == 20
    assert page_limit(7) == 7
    assert page_limit(10_000) == MAX_LIMIT == 100
    for bad in (0, -1):
        with pytest.raises(BadRequestError):
            page_limit(bad)


def test_tokens_round_trip_and_are_opaque() -> None:
    tokens = PageTokens("secret")
    cursor = {"pk": "PRODUCT#p-0001", "sk": "A", "gsi2pk": "PRODUCTS"}
    token = tokens.issue("products:", cursor)
    assert token is not None and "PRODUCT#" not in token
    assert tokens.open("products:", token) == cursor
    assert tokens.issue("products:", None) is None
    assert tokens.open("products:", None) is None


def test_tokens_are_tamper_evident_and_bound_to_their_query() -> None:
    tokens = PageTokens("secret")
    token = tokens.issue("products:books", {"pk": "x"})
    assert token is not None
    with pytest.raises(BadRequestError):
        tokens.open("products:music", token)
    with pytest.raises(BadRequestError):
        PageTokens("another secret").open("products:books", token)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(BadRequestError):
        tokens.open("products:books", forged)
    with pytest.raises(BadRequestError):
        tokens.open("products:books", "")
