"""The single-table design of the projections, and conversion to and from DynamoDB's wire format.

Pure: no I/O. One table holds every projection:

    item           pk              sk         gsi1pk / gsi1sk                   gsi2pk / gsi2sk
    Product        PRODUCT#<id>    A          CATEGORY#<category> / <id>        PRODUCTS / <id>
    Customer       CUSTOMER#<id>   A          -                                 -
    Order          ORDER#<id>      A          CUSTOMER#<customerId> /           -
                                              <createdAt ISO>#<id>
    RegionControl  CONTROL         TOPOLOGY   -                                 -

gsi1 is overloaded (products by category, orders by customer); its partition prefixes keep
the two apart. Timestamps are encoded by domain.codec with a fixed width (microseconds, `Z`), so
`<createdAt ISO>#<id>` sorts chronologically and ScanIndexForward=False lists newest first.

The aggregates' key prefixes and `kind`s are domain.aggregates' (one registry); which indexes
each is on is this module's. Every entity item carries `kind`, `version` and its snapshot in
domain.codec's plain format (camelCase keys), so an item reads like the GraphQL object it
serves and a stream image can be turned back into a snapshot without knowing the key layout.

The wire converter is our own rather than boto3's TypeSerializer/TypeDeserializer: those
produce Decimals (which the model would convert again) and are several times slower on the
read path that every query takes. It covers the shapes the codec produces: str, int, bool,
None, list and dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from domain import codec
from domain.aggregates import BY_NAME, ORDER, PRODUCT, Aggregate, Snapshot, snapshot_of
from domain.events import Event
from domain.model import Order, Product, RegionControl

# A plain item: attribute name -> str | int | bool | None | list | dict.
Item = dict[str, Any]
# One attribute value on the wire, e.g. {"S": "x"}, {"N": "3"}, {"M": {...}}.
WireValue = dict[str, Any]
WireItem = dict[str, WireValue]
S = TypeVar("S", bound=Snapshot)

PK: Final = "pk"
SK: Final = "sk"
GSI1: Final = "gsi1"
GSI1_PK: Final = "gsi1pk"
GSI1_SK: Final = "gsi1sk"
GSI2: Final = "gsi2"
GSI2_PK: Final = "gsi2pk"
GSI2_SK: Final = "gsi2sk"

# The sort key of an entity's own item. A single letter: entities have one item each today, and
# a short constant leaves room for sibling items (sk `LINE#...`) without renaming this one.
ENTITY_SK: Final = "A"
CONTROL_PK: Final = "CONTROL"
CONTROL_SK: Final = "TOPOLOGY"
ALL_PRODUCTS: Final = "PRODUCTS"

KIND_REGION_CONTROL: Final = "RegionControl"

# The key attributes of each index, i.e. what a LastEvaluatedKey of a query on it contains.
INDEX_KEYS: Final[Mapping[str, frozenset[str]]] = {
    GSI1: frozenset({PK, SK, GSI1_PK, GSI1_SK}),
    GSI2: frozenset({PK, SK, GSI2_PK, GSI2_SK}),
}


# --- keys -------------------------------------------------------------------------------------


def entity_key(aggregate: Aggregate[Any], entity_id: str) -> dict[str, str]:
    """The key of an aggregate's item: `PRODUCT#<id>` / `A` (prefix from domain.aggregates)."""
    return {PK: f"{aggregate.key_prefix}#{entity_id}", SK: ENTITY_SK}


def control_key() -> dict[str, str]:
    return {PK: CONTROL_PK, SK: CONTROL_SK}


def category_partition(category: str) -> str:
    return f"CATEGORY#{category}"


def customer_orders_partition(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


# --- snapshots -> items -----------------------------------------------------------------------


def _product_indexes(product: Product) -> Item:
    return {
        GSI1_PK: category_partition(product.category),
        GSI1_SK: product.id,
        GSI2_PK: ALL_PRODUCTS,
        GSI2_SK: product.id,
    }


def _order_indexes(order: Order) -> Item:
    return {
        GSI1_PK: customer_orders_partition(order.customer_id),
        GSI1_SK: f"{codec.encode_time(order.created_at)}#{order.id}",
    }


# The index attributes of the aggregates that are listed by an index (see the table above);
# the others (customers) are only ever read by key.
_INDEXES: Final[Mapping[str, Callable[[Any], Item]]] = {
    PRODUCT.name: _product_indexes,
    ORDER.name: _order_indexes,
}


def snapshot_item(aggregate: Aggregate[S], snapshot: S) -> Item:
    """The item of an aggregate's snapshot: keyed, `kind`-ed and indexed."""
    indexes = _INDEXES.get(aggregate.name)
    return {
        **entity_key(aggregate, snapshot.id),
        "kind": aggregate.name,
        **(indexes(snapshot) if indexes is not None else {}),
        **aggregate.to_plain(snapshot),
    }


def event_to_item(event: Event) -> Item:
    """The item that projects `event`: its snapshot, keyed and indexed."""
    return snapshot_item(*snapshot_of(event))


def region_control_item(control: RegionControl) -> Item:
    return {
        **control_key(),
        "kind": KIND_REGION_CONTROL,
        # Replication is last writer wins by `version`: a newer epoch replaces an older one
        # in every region, and the same epoch written again is a no-op.
        "version": control.epoch,
        "primaryRegion": control.primary_region,
        "epoch": control.epoch,
        "readOnly": control.read_only,
    }


# --- items -> snapshots -----------------------------------------------------------------------
# codec's *_from_plain (Aggregate.from_plain) read the attributes they know by name and ignore
# the key attributes.


def region_control_from_item(item: Item) -> RegionControl:
    return RegionControl(
        primary_region=str(item["primaryRegion"]),
        epoch=int(item["epoch"]),
        read_only=bool(item.get("readOnly", False)),
    )


def aggregate_of_item(item: Item) -> Aggregate[Any] | None:
    """The aggregate an item projects, by its `kind`; None for control items (topology, the
    stream publisher's lease and checkpoints) and anything else."""
    kind = item.get("kind")
    return BY_NAME.get(kind) if isinstance(kind, str) else None


def snapshot_from_item(item: Item) -> Snapshot | RegionControl:
    """Any item back to its snapshot, by its `kind` (for stream images, whose key we ignore)."""
    aggregate = aggregate_of_item(item)
    if aggregate is not None:
        snapshot: Snapshot = aggregate.from_plain(item)
        return snapshot
    if item.get("kind") == KIND_REGION_CONTROL:
        return region_control_from_item(item)
    raise ValueError(f"unknown item kind {item.get('kind')!r}")


# --- wire format ------------------------------------------------------------------------------


def to_wire(value: Any) -> WireValue:
    """A plain value as a DynamoDB attribute value."""
    # bool before int: bool is a subclass of int, and {"N": "True"} is not a number.
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_wire(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_wire(v) for v in value]}
    # Floats are refused rather than rounded: money is in minor units, and a float that
    # crept into a snapshot is a bug to surface, not to store.
    raise TypeError(f"cannot store {type(value).__name__} in a projection item")


def from_wire(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as a plain value (numbers as int)."""
    # One key per attribute value; the branches are ordered by how often each type occurs.
    ((tag, inner),) = value.items()
    if tag == "S":
        return inner
    if tag == "N":
        try:
            return int(inner)
        except ValueError:
            # Not written by us (we only store ints); read rather than fail.
            return float(inner)
    if tag == "M":
        return {k: from_wire(v) for k, v in inner.items()}
    if tag == "L":
        return [from_wire(v) for v in inner]
    if tag == "NULL":
        return None
    if tag == "BOOL":
        return bool(inner)
    raise ValueError(f"unsupported DynamoDB attribute type {tag!r}")


def item_to_wire(item: Mapping[str, Any]) -> WireItem:
    return {name: to_wire(value) for name, value in item.items()}


def item_from_wire(item: Mapping[str, Mapping[str, Any]]) -> Item:
    return {name: from_wire(value) for name, value in item.items()}


def key_to_wire(key: Mapping[str, str]) -> WireItem:
    return {name: {"S": value} for name, value in key.items()}
