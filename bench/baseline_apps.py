"""The two in-memory baselines of bench/read_path.py, each served by uvicorn on 127.0.0.1.

    python bench/baseline_apps.py strawberry --port P --data DATA.json [--loop asyncio|uvloop]
    python bench/baseline_apps.py starlette  --port P --data DATA.json [--loop asyncio|uvloop]

- `strawberry`: a plain Strawberry schema with default settings (no parser or validation
  cache, no extensions) and the same shape as Hemisphere's for the benchmark's two queries
  (Product, Money, ProductConnection; async resolvers, as Hemisphere's are), served by
  `strawberry.asgi.GraphQL` mounted on Starlette. Its data are the products read from the
  running Hemisphere once, kept in memory.
- `starlette`: the ceiling. A bare Starlette POST endpoint that returns the precomputed
  response bytes of each known request body (and 400 for any other body).

DATA.json (written by read_path.py): {"products": [...], "next_tokens": {"50": "..."},
"responses": {"<request body>": "<response body>"}}.

By default uvicorn runs exactly as `hemisphere serve` runs it (`asyncio.run(server.serve())`,
which is the standard asyncio loop with uvicorn >= 0.36, and httptools), so that the ratios
compare the apps, not the servers. `--loop uvloop` uses `uvicorn.Server.run()` instead.
"""

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@strawberry.type
class Money:
    amount: int
    currency: str


@strawberry.type
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str | None
    category: str
    price: Money
    available: int
    updated_at: str
    version: int


@strawberry.type
class ProductConnection:
    items: list[Product]
    next_token: str | None


@dataclass
class Catalog:
    """The products in id order, and Hemisphere's nextToken for each known offset (so the
    responses are the very bytes Hemisphere sends)."""

    products: list[Product] = field(default_factory=list)
    by_id: dict[str, Product] = field(default_factory=dict)
    token_of_offset: dict[int, str] = field(default_factory=dict)
    offset_of_token: dict[str, int] = field(default_factory=dict)

    def load(self, data: dict[str, Any]) -> None:
        self.products = [_product(raw) for raw in data["products"]]
        self.by_id = {p.id: p for p in self.products}
        self.token_of_offset = {int(k): v for k, v in data.get("next_tokens", {}).items()}
        self.offset_of_token = {v: k for k, v in self.token_of_offset.items()}

    def page(self, limit: int, token: str | None) -> ProductConnection:
        start = 0
        if token is not None:
            start = self.offset_of_token.get(token, int(token) if token.isdigit() else 0)
        end = start + limit
        next_token = None
        if end < len(self.products):
            next_token = self.token_of_offset.get(end, str(end))
        return ProductConnection(items=self.products[start:end], next_token=next_token)


CATALOG = Catalog()


def _product(raw: dict[str, Any]) -> Product:
    return Product(
        id=strawberry.ID(raw["id"]),
        sku=raw.get("sku", ""),
        name=raw["name"],
        description=raw.get("description"),
        category=raw["category"],
        price=Money(amount=raw["price"]["amount"], currency=raw["price"]["currency"]),
        available=raw["available"],
        updated_at=raw.get("updatedAt", ""),
        version=raw.get("version", 1),
    )


@strawberry.type
class Query:
    @strawberry.field
    async def product(self, id: strawberry.ID) -> Product | None:
        return CATALOG.by_id.get(id)

    @strawberry.field
    async def products(
        self, limit: int | None = None, next_token: str | None = None
    ) -> ProductConnection:
        size = DEFAULT_LIMIT if limit is None else max(0, min(limit, MAX_LIMIT))
        return CATALOG.page(size, next_token)


def strawberry_app() -> Starlette:
    schema = strawberry.Schema(query=Query)  # default settings: no caches, no extensions
    return Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])])


def starlette_app(responses: dict[str, str]) -> Starlette:
    by_body = {body.encode(): text.encode() for body, text in responses.items()}

    async def graphql(request: Request) -> Response:
        answer = by_body.get(await request.body())
        if answer is None:
            return Response(
                b'{"errors":[{"message":"unknown request body"}]}',
                status_code=400,
                media_type="application/json",
            )
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=["strawberry", "starlette"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()

    data = json.loads(args.data.read_text())
    if args.app == "strawberry":
        CATALOG.load(data)
        app = strawberry_app()
    else:
        app = starlette_app(data["responses"])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    if args.loop == "uvloop":
        server.run()
    else:
        asyncio.run(server.serve())


if __name__ == "__main__":
    main()
