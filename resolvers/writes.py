"""The write mutations' work: validate against this region's projections (read local), then
start the saga in the primary region (write global). Nothing here touches a backend except
through the context's ports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile
from domain.currencies import SUPPORTED_CURRENCIES
from domain.errors import (
    BadRequestError,
    NotFoundError,
    OrderNotCancellableError,
)
from domain.model import Customer, Money, Order, OrderLine, OrderStatus, Product, StatusChange
from domain.saga import order_id_for
from resolvers.context import Context
from resolvers.ports import CheckoutAdmission


async def checkout(context: Context, command: Checkout) -> Order:
    """Start the checkout saga and answer with the order: as the projection has it when the
    same request came before, or PENDING as it will be created."""
    workflows = context.ports.workflows
    if isinstance(workflows, CheckoutAdmission):
        # Before any read: a saturated write path refuses at next to no cost.
        await workflows.admit_checkout()
    customer = await context.loaders.customers.load(command.customer_id)
    if customer is None:
        raise BadRequestError(f"customer {command.customer_id} does not exist")
    products = await context.loaders.products.load_many([ln.product_id for ln in command.lines])
    missing = [ln.product_id for ln, p in zip(command.lines, products, strict=True) if p is None]
    if missing:
        raise BadRequestError(f"unknown products: {', '.join(missing)}")
    known = [p for p in products if p is not None]
    currencies = {p.price.currency for p in known}
    if len(currencies) != 1:
        raise BadRequestError(f"an order is in one currency; these products are in {currencies}")
    if not currencies <= SUPPORTED_CURRENCIES:
        raise BadRequestError(f"currency {next(iter(currencies))} is not one the shop settles")

    first = await workflows.start_checkout(command, placed_in=context.ports.topology.region)
    order_id = order_id_for(command.customer_id, command.idempotency_key)
    # A repeat answers with the order as projected; a first start has none to read.
    existing = None if first else await context.loaders.orders.load(order_id)
    if existing is not None:
        return existing
    return pending_order(order_id, customer, command, known, context.ports.topology.region)


def pending_order(
    order_id: str,
    customer: Customer,
    command: Checkout,
    products: list[Product],
    placed_in: str,
    now: datetime | None = None,
) -> Order:
    """The order as the saga's first step will create it, from the projections' prices (the
    saga prices it from the relational model; the two agree unless a price just changed)."""
    at = now or datetime.now(UTC)
    lines = tuple(
        OrderLine(product_id=p.id, product_name=p.name, quantity=ln.quantity, unit_price=p.price)
        for ln, p in zip(command.lines, products, strict=True)
    )
    currency = products[0].price.currency
    total = Money(sum(ln.quantity * ln.unit_price.amount for ln in lines), currency)
    return Order(
        id=order_id,
        customer_id=customer.id,
        customer_name=customer.name,
        status=OrderStatus.PENDING,
        lines=lines,
        total=total,
        failure_reason=None,
        history=(StatusChange(OrderStatus.PENDING, at),),
        placed_in=placed_in,
        created_at=at,
        updated_at=at,
        version=0,
    )


async def cancel_order(
    context: Context, command: CancelOrder, authorize: Callable[[Order], None]
) -> Order:
    """Start the cancellation saga of a CONFIRMED order; answer with the order as projected
    (its CANCELLED state follows through the projection and subscriptions). `authorize`
    raises when the caller may not act on the order's customer: it runs before anything
    about the order is told or started."""
    order = await context.loaders.orders.load(command.order_id)
    if order is None:
        raise NotFoundError(f"order {command.order_id} does not exist")
    authorize(order)
    if order.status is OrderStatus.CANCELLED:
        return order  # cancelled already: asking again changes nothing
    if order.status is not OrderStatus.CONFIRMED:
        raise OrderNotCancellableError(
            f"order {order.id} is {order.status.value}: only a CONFIRMED order can be cancelled"
        )
    await context.ports.workflows.start_cancellation(command)
    return order


async def update_customer_profile(
    context: Context, command: UpdateCustomerProfile
) -> tuple[str, datetime]:
    if await context.loaders.customers.load(command.customer_id) is None:
        raise NotFoundError(f"customer {command.customer_id} does not exist")
    return await context.ports.profiles.submit(command)
