"""GraphiQL for browsers on GET /graphql: Strawberry's page, opening on an example of the shop,
with the local API key already in the headers editor."""

from __future__ import annotations

import json
import re
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

STATIC_DIR = Path(__file__).with_name("static") / "graphiql"
STATIC_PATH = "/graphiql/static"

# Strawberry's page loads its scripts from unpkg; we serve the same files (static/graphiql).
_LOCAL_ASSETS = {
    "react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    "react-dom@18.2.0/umd/react-dom.production.min.js": "react-dom.production.min.js",
    "js-cookie@3.0.5/dist/js.cookie.min.js": "js.cookie.min.js",
    "graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    "graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    "@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    "@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": "plugin-explorer.umd.js",
}
_CDN_URL = re.compile(r"https://unpkg\.com/(?P<asset>[^\"]+)")

EXAMPLE_QUERY = """\
# Welcome to Hemisphere: the shop's AppSync contract,
# served from this region's projections.
# Press the play button to run the query; the API key
# is in the Headers tab below.

query Shop {
  region { region primaryRegion readOnly epoch }
  product(id: "p-0001") { id name category price { amount currency } available }
  products(category: "books", limit: 5) { items { id name price { amount } } nextToken }
  customer(id: "c-0001") { id name email loyaltyPoints }
  ordersByCustomer(customerId: "c-0001", limit: 3) {
    items { id status total { amount currency } lines { productName quantity } }
    nextToken
  }
}
"""


class PagePatchError(RuntimeError):
    """Strawberry's GraphiQL page no longer has the text a patch replaces (a new version):
    the page must not be served silently unpatched."""


# GraphiQL's fetcher sends the headers editor's headers with each HTTP request, but its
# WebSocket client is made once, with fixed connection parameters. One client per distinct
# set of headers makes subscriptions carry the credentials the user typed (browsers cannot
# set headers on a WebSocket: they travel in connection_init, as Apollo and urql send them).
_FETCHER = """\
      const fetchers = new Map();
      function fetcherFor(headers) {
        const key = JSON.stringify(headers || {});
        if (!fetchers.has(key)) {
          fetchers.set(key, GraphiQL.createFetcher({
            url: fetchURL,
            headers: defaultHeaders,
            subscriptionUrl,
            wsConnectionParams: headers || {},
          }));
        }
        return fetchers.get(key);
      }
      const fetcher = (params, options) => fetcherFor(options && options.headers)(params, options);
"""
_STRAWBERRY_FETCHER = """\
      const fetcher = GraphiQL.createFetcher({
        url: fetchURL,
        headers: defaultHeaders,
        subscriptionUrl,
      });
"""


def graphiql_page(api_key: str | None, token: str | None = None) -> str:
    """Strawberry's page with our example, our assets, and subscriptions that use the
    headers editor's credentials; `api_key` and `token` (a demo customer's, from the
    development issuer) prefill that editor: the local default only."""
    html = get_graphql_ide_html(graphql_ide="graphiql")
    html = _patch(
        html, "parameters.q || EXAMPLE_QUERY", f"parameters.q || {json.dumps(EXAMPLE_QUERY)}"
    )
    html = _patch(html, _STRAWBERRY_FETCHER, _FETCHER)
    prefilled = {"x-api-key": api_key} if api_key is not None else {}
    if token is not None:
        # Sent with the key, the token decides (a JWT is tried first): the demo customer's
        # own data reads as well as the catalog.
        prefilled["Authorization"] = token
    if prefilled:
        headers = json.dumps(json.dumps(prefilled, indent=2))
        html = _patch(
            html,
            "React.useState(parameters.headers)",
            f"React.useState(parameters.headers || {headers})",
        )
    html = _CDN_URL.sub(_local_asset, html)
    return _patch(html, "<title>Strawberry GraphiQL</title>", "<title>Hemisphere GraphiQL</title>")


def _patch(html: str, old: str, new: str) -> str:
    if old not in html:
        raise PagePatchError(f"Strawberry's GraphiQL page has no {old.strip()[:60]!r} any more")
    return html.replace(old, new)


def _local_asset(match: re.Match[str]) -> str:
    # An asset we do not ship (a newer Strawberry page) still loads from the CDN.
    local = _LOCAL_ASSETS.get(match["asset"])
    return f"{STATIC_PATH}/{local}" if local else match[0]
