"""The demo shop's contents: a catalogue, customers and past orders, as plain values.

Everything derives from fixed tables, a fixed base date and a fixed random seed, so two
seeded databases hold the same snapshots (tests and docs can name p-0001, c-0001, o-0001).
Pure: no I/O, so the plan can be checked without a database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.model import Money, OrderStatus

CURRENCY = "USD"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")

# The catalogue is "as of" this instant; orders follow over the next weeks.
BASE_DATE = datetime(2024, 1, 1, tzinfo=UTC)
_ORDER_SEED = 20240101


@dataclass(frozen=True, slots=True)
class ProductSeed:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: Money
    available: int


@dataclass(frozen=True, slots=True)
class CustomerSeed:
    id: str
    name: str
    email: str
    home_region: str
    loyalty_points: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderSeed:
    id: str
    customer_id: str
    lines: tuple[tuple[str, int], ...]
    status: OrderStatus
    placed_in: str
    idempotency_key: str
    history: tuple[tuple[OrderStatus, datetime, str | None], ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Category:
    """makers x items = 30 products; `items` are (name, base cents, blurb). Each maker (or
    edition) costs `step` percent more than the one before."""

    name: str
    code: str
    makers: tuple[str, ...]
    items: tuple[tuple[str, int, str], ...]
    maker_first: bool = True
    step: int = 7


_CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "books",
        "BOOK",
        ("Paperback", "Hardcover", "Collector's Edition"),
        (
            ("The Quiet Orchard", 1499, "A family saga set among the apple farms of Vermont"),
            ("Salt and Starlight", 1599, "A sailor's memoir of the long Pacific crossings"),
            ("A Field Guide to Clouds", 1299, "Every cloud you will meet, photographed"),
            ("The Cartographer's Daughter", 1699, "A mystery hidden in an 18th-century map"),
            ("Practical Sourdough", 1899, "Starters, schedules and forty breads"),
            ("Systems of the Deep Sea", 2199, "How life thrives where light never reaches"),
            ("Midnight at the Lighthouse", 1399, "A thriller on a storm-cut island"),
            ("The Patient Gardener", 1799, "Growing a garden that grows itself"),
            ("Notes from a Small Kitchen", 1999, "Recipes for two burners and one shelf"),
            ("Calm Programming", 2499, "Writing software that is easy to change"),
        ),
        maker_first=False,
        step=70,
    ),
    _Category(
        "electronics",
        "ELEC",
        ("Aurora", "Voltway", "Nimbus", "Quanta", "Helix", "Orbit"),
        (
            ("Wireless Earbuds", 7999, "Noise cancelling, 30 hours with the case"),
            ("Bluetooth Speaker", 5999, "Waterproof, room-filling sound"),
            ("65W USB-C Charger", 3499, "Charges a laptop and a phone at once"),
            ("Mechanical Keyboard", 10999, "Hot-swappable switches, aluminium frame"),
            ("4K Webcam", 12999, "Auto-framing and a privacy shutter"),
        ),
    ),
    _Category(
        "garden",
        "GARD",
        ("Evergreen", "Fernhill", "Meadowbrook", "Willow & Sage", "Greenthumb", "Rootstock"),
        (
            ("Pruning Shears", 2499, "Bypass blades that stay sharp all season"),
            ("Raised Garden Bed", 8999, "Cedar, 4 x 8 ft, tool-free assembly"),
            ("Hose Reel Cart", 5499, "Holds 150 ft of hose on two wheels"),
            ("Ceramic Planter", 3299, "Glazed, with a drainage hole and saucer"),
            ("Seed Starter Kit", 1999, "72 cells, dome and heat mat"),
        ),
    ),
    _Category(
        "kitchen",
        "KITC",
        ("Copperline", "Hearth & Co.", "Saltbox", "Ironwood", "Larder", "Brightside"),
        (
            ("8-inch Chef's Knife", 6999, "Forged high-carbon steel, full tang"),
            ("12-inch Cast Iron Skillet", 4499, "Pre-seasoned, oven safe"),
            ("Pour-Over Coffee Set", 3999, "Dripper, carafe and 100 filters"),
            ("Stainless Mixing Bowls", 2999, "Set of five, nesting, non-slip base"),
            ("Bamboo Cutting Board", 2499, "End grain with a juice groove"),
        ),
    ),
    _Category(
        "music",
        "MUSC",
        ("Harmonia", "Bluebird", "Cadence", "Resonant", "Tempo", "Echo Valley"),
        (
            ("Acoustic Guitar", 24999, "Solid spruce top, gig bag included"),
            ("Concert Ukulele", 8999, "Mahogany body, Aquila strings"),
            ("Studio Headphones", 14999, "Closed-back, flat response for mixing"),
            ("Cajon Drum", 11999, "Birch body with adjustable snare wires"),
            ("Vinyl Care Kit", 2499, "Brush, cleaning fluid and a stylus cleaner"),
        ),
    ),
    _Category(
        "outdoors",
        "OUTD",
        ("Summit Ridge", "Trailhead", "Northbound", "Cascade", "Alpine Loop", "Basecamp"),
        (
            ("Trekking Poles", 7999, "Carbon, cork grips, collapse to 24 inches"),
            ("2-Person Tent", 22999, "Freestanding, 3-season, 4 lb"),
            ("Insulated Bottle 32 oz", 3499, "Cold for 24 hours, hot for 12"),
            ("400-Lumen Headlamp", 3999, "Rechargeable, red night mode"),
            ("Down Sleeping Bag", 27999, "Rated to 20 F, packs to a loaf"),
        ),
    ),
    _Category(
        "toys",
        "TOYS",
        ("Tumbleweed", "Brightkite", "Little Oak", "Pipsqueak", "Marblehead", "Sunnyside"),
        (
            ("Wooden Train Set", 4999, "52 pieces of beech track and a bridge"),
            ("Building Blocks 500 pc", 3999, "Compatible with the big brands"),
            ("Plush Bear", 1999, "Soft, washable, 14 inches of hug"),
            ("1000-Piece Puzzle", 2299, "A harbour at dusk, linen-finish pieces"),
            ("Remote Control Car", 5999, "All-terrain, 20 mph, two batteries"),
        ),
    ),
    _Category(
        "apparel",
        "APPR",
        ("Fieldstone", "Harbor & Pine", "Loomwell", "Northwind", "Thread & Timber", "Bayside"),
        (
            ("Merino Crew Sweater", 8999, "Fine merino, warm without the itch"),
            ("Packable Rain Jacket", 11999, "Waterproof, breathable, stuffs in a pocket"),
            ("Canvas Sneakers", 5999, "Vulcanized sole, organic canvas"),
            ("Organic Cotton Tee", 2499, "Heavyweight, pre-shrunk"),
            ("Wool Beanie", 2999, "Ribbed, one size"),
        ),
    ),
)

_FIRST_NAMES = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Keiko", "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Okafor", "Rossi", "Petrov", "Garcia", "Haddad", "Hopper", "Tanaka", "Silva",
    "Berg", "Sato", "Murphy", "Cohen", "Iyer", "Novak", "Costa", "Walsh", "Moreno", "Khan",
    "Nguyen", "Farouk", "Lindqvist", "Zhang", "Ortega", "Demir",
)  # fmt: skip

PRODUCT_COUNT = 240
CUSTOMER_COUNT = 50
ORDER_COUNT = 20
# Orders that failed at payment (the saga released their stock and gave up).
_FAILED_ORDERS = frozenset({8, 16})
# c-0001 gets every fifth order: the README's examples list its orders.
_FEATURED_CUSTOMER_EVERY = 5


def _price(base_cents: int, step: int, variant: int) -> Money:
    """`step` percent more per variant, rounded to a .99 price."""
    cents = base_cents * (100 + step * variant) // 100
    return Money(amount=cents // 100 * 100 + 99, currency=CURRENCY)


def products() -> list[ProductSeed]:
    """p-0001..p-0240, 30 per category, category by category."""
    result: list[ProductSeed] = []
    for category in _CATEGORIES:
        for item, base, blurb in category.items:
            for variant, maker in enumerate(category.makers):
                number = len(result) + 1
                # Books read "Title (Edition)"; everything else "Maker Item".
                name = f"{maker} {item}" if category.maker_first else f"{item} ({maker})"
                result.append(
                    ProductSeed(
                        id=f"p-{number:04d}",
                        sku=f"SKU-{category.code}-{number:04d}",
                        name=name,
                        description=f"{blurb}.",
                        category=category.name,
                        price=_price(base, category.step, variant),
                        # Every 60th product is sold out, so the demo can show a refusal.
                        available=0 if number % 60 == 0 else 5 + (number * 37) % 150,
                    )
                )
    assert len(result) == PRODUCT_COUNT
    return result


def _customer_name(index: int) -> str:
    # Index i and i+25 share a first name but never a last name: 50 distinct people.
    first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(3 * index + index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
    return f"{first} {last}"


def orders() -> list[OrderSeed]:
    """o-0001..o-0020 over the weeks after BASE_DATE, mostly CONFIRMED."""
    rng = random.Random(_ORDER_SEED)
    in_stock = [p.id for p in products() if p.available > 0]
    result: list[OrderSeed] = []
    for number in range(1, ORDER_COUNT + 1):
        if number % _FEATURED_CUSTOMER_EVERY == 1:
            customer_number = 1
        else:
            customer_number = rng.randint(2, CUSTOMER_COUNT)
        picked = rng.sample(in_stock, rng.randint(1, 3))
        lines = tuple((product_id, rng.randint(1, 3)) for product_id in picked)
        created_at = BASE_DATE + timedelta(
            days=2 * number, hours=rng.randint(8, 20), minutes=rng.randint(0, 59)
        )
        failed = number in _FAILED_ORDERS
        history: tuple[tuple[OrderStatus, datetime, str | None], ...]
        if failed:
            history = (
                (OrderStatus.PENDING, created_at, None),
                (OrderStatus.RESERVED, created_at + timedelta(milliseconds=900), None),
                (OrderStatus.FAILED, created_at + timedelta(milliseconds=2600),
                 "PAYMENT_DECLINED"),
            )  # fmt: skip
        else:
            history = tuple(
                (status, created_at + timedelta(milliseconds=ms), None)
                for status, ms in (
                    (OrderStatus.PENDING, 0),
                    (OrderStatus.RESERVED, 900),
                    (OrderStatus.AUTHORIZED, 2100),
                    (OrderStatus.CAPTURED, 2900),
                    (OrderStatus.CONFIRMED, 3400),
                )
            )
        result.append(
            OrderSeed(
                id=f"o-{number:04d}",
                customer_id=f"c-{customer_number:04d}",
                lines=lines,
                status=OrderStatus.FAILED if failed else OrderStatus.CONFIRMED,
                placed_in=REGIONS[(customer_number - 1) % len(REGIONS)],
                idempotency_key=f"seed-o-{number:04d}",
                history=history,
                created_at=created_at,
            )
        )
    return result


def customers() -> list[CustomerSeed]:
    """c-0001..c-0050, regions in turn; points are one per whole dollar of their confirmed
    orders, as of their last one (their profile's last change)."""
    prices = {p.id: p.price.amount for p in products()}
    points: dict[str, int] = {}
    last_change: dict[str, datetime] = {}
    for order in orders():
        if order.status is OrderStatus.CONFIRMED:
            cents = sum(prices[product_id] * quantity for product_id, quantity in order.lines)
            points[order.customer_id] = points.get(order.customer_id, 0) + cents // 100
            last_change[order.customer_id] = order.history[-1][1]
    result: list[CustomerSeed] = []
    for index in range(CUSTOMER_COUNT):
        customer_id = f"c-{index + 1:04d}"
        result.append(
            CustomerSeed(
                id=customer_id,
                name=_customer_name(index),
                email=f"customer{index + 1}@example.com",
                home_region=REGIONS[index % len(REGIONS)],
                loyalty_points=points.get(customer_id, 0),
                updated_at=last_change.get(customer_id, BASE_DATE),
            )
        )
    return result
