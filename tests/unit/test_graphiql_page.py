"""GraphiQL's page: Strawberry's, patched by string replacement. Each patch must apply (a new
Strawberry page fails here, not silently in a browser), and subscriptions must use the
credentials of the headers editor, not a key baked into the page."""

from __future__ import annotations

import pytest

from hemisphere.http import graphiql
from hemisphere.http.graphiql import PagePatchError, graphiql_page


def test_subscriptions_use_the_headers_editors_credentials() -> None:
    page = graphiql_page(None)
    # One WebSocket client per set of headers, its connection_init carrying them.
    assert "fetcherFor(options && options.headers)" in page
    assert "wsConnectionParams: headers || {}" in page
    assert "x-api-key" not in page  # nothing baked in when the key is not ours to show


def test_the_local_key_only_prefills_the_headers_editor() -> None:
    page = graphiql_page("da2-localkeylocalkeylocalkey00")
    assert page.count("da2-localkeylocalkeylocalkey00") == 1
    assert "React.useState(parameters.headers ||" in page
    assert "Hemisphere GraphiQL" in page and "https://unpkg.com/graphiql" not in page


@pytest.mark.parametrize(
    "gone",
    ["parameters.q || EXAMPLE_QUERY", "subscriptionUrl,\n      });", "<title>Strawberry GraphiQL"],
)
def test_a_patch_that_no_longer_applies_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    page = graphiql.get_graphql_ide_html(graphql_ide="graphiql")
    assert gone in page
    monkeypatch.setattr(
        graphiql, "get_graphql_ide_html", lambda graphql_ide: page.replace(gone, "changed")
    )
    with pytest.raises(PagePatchError):
        graphiql_page("da2-localkeylocalkeylocalkey00")
