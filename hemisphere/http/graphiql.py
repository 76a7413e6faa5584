"""GraphiQL for browsers on GET /graphql: Strawberry's page, opening on an example of the shop,
with the local API key already in the headers editor."""

from __future__ import annotations

import json

from strawberry.http.ides import get_graphql_ide_html

EXAMPLE_QUERY = """\
# Welcome to Hemisphere: the shop's AppSync contract, served from this region's projections.
# Press the play button to run the query; the x-api-key header is in the Headers tab below.

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


def graphiql_page(api_key: str | None) -> str:
    html = get_graphql_ide_html(graphql_ide="graphiql")
    html = html.replace(
        "parameters.q || EXAMPLE_QUERY", f"parameters.q || {json.dumps(EXAMPLE_QUERY)}"
    )
    if api_key is not None:
        headers = json.dumps(json.dumps({"x-api-key": api_key}, indent=2))
        html = html.replace(
            "React.useState(parameters.headers)", f"React.useState(parameters.headers || {headers})"
        )
        html = html.replace(
            "const defaultHeaders = {};",
            f'const defaultHeaders = {{"x-api-key": {json.dumps(api_key)}}};',
        )
    return html.replace("<title>Strawberry GraphiQL</title>", "<title>Hemisphere GraphiQL</title>")
