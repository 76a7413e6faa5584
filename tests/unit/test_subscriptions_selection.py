"""The mutation's selection as a mask, and what a subscriber sees of a snapshot through it."""

from __future__ import annotations

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from domain.codec import order_to_plain
from subscriptions.publication import SELECTION_KEY, change_message, selection_of
from subscriptions.selection import (
    ALL,
    Selected,
    covers,
    graphql_value,
    mask_from_json,
    mask_of,
    top_level,
    view,
)
from tests.support.fakes import make_customer, make_order, make_products

ORDER = make_order(1, make_customer(1), make_products(1)[0])


def field(name: str, *selections: object, **directives: dict[str, object]) -> SelectedField:
    return SelectedField(
        name=name, directives=directives, arguments={}, selections=list(selections)
    )


def test_mask_of_merges_fragments_and_honours_skip_and_include() -> None:
    selections = [
        field("id"),
        field("__typename"),
        field("total", field("amount")),
        InlineFragment(
            type_condition="Order", directives={}, selections=[field("total", field("currency"))]
        ),
        FragmentSpread(
            name="F", type_condition="Order", directives={}, selections=[field("status")]
        ),
        field("placedIn", skip={"if": True}),
        field("createdAt", include={"if": False}),
        field("updatedAt", include={"if": True}),
        field("lines", field("productId")),
    ]
    assert mask_of(selections) == {
        "id": True,
        "total": {"amount": True, "currency": True},
        "status": True,
        "updatedAt": True,
        "lines": {"productId": True},
    }


def test_a_mask_that_selects_everything_is_not_carried() -> None:
    plain = order_to_plain(ORDER)
    everything = mask_from_json(
        {
            **{name: True for name in plain},
            "lines": {
                "productId": True,
                "productName": True,
                "quantity": True,
                "unitPrice": {"amount": True, "currency": True},
            },
            "total": {"amount": True, "currency": True},
            "history": {"status": True, "at": True, "reason": True},
        }
    )
    assert covers(everything, plain)
    assert not covers({**everything, "total": {"amount": True}}, plain)
    assert not covers({k: v for k, v in everything.items() if k != "failureReason"}, plain)


def test_broker_message_round_trip() -> None:
    plain = order_to_plain(ORDER)
    message = change_message(plain, {"id": True})
    assert message[SELECTION_KEY] == {"id": True} and message["id"] == ORDER.id
    assert selection_of(message) == {"id": True}
    assert selection_of(plain) is ALL


def test_arguments_see_only_selected_top_level_fields() -> None:
    plain = order_to_plain(ORDER)
    assert top_level(plain, {"id": True}) == {"id": ORDER.id}
    assert top_level(plain, ALL) is plain


def test_graphql_value_is_the_response_form_restricted_to_the_mask() -> None:
    value = graphql_value(
        ORDER,
        {
            "id": True,
            "status": True,
            "total": {"amount": True},
            "createdAt": True,
            "history": {"status": True},
        },
    )
    assert value == {
        "id": "o-0001",
        "status": "CONFIRMED",
        "total": {"amount": 200},
        "createdAt": "2026-01-01T01:00:00.000Z",
        "history": [{"status": "PENDING"}, {"status": "CONFIRMED"}],
    }
    full = graphql_value(ORDER, ALL)
    assert full["lines"][0]["unitPrice"] == {"amount": 100, "currency": "USD"}
    assert full["failureReason"] is None and full["placedIn"] == "us-east-1"


def test_a_subscriber_sees_unselected_fields_as_null() -> None:
    seen = view(ORDER, {"id": True, "total": {"amount": True}, "lines": {"quantity": True}})
    assert isinstance(seen, Selected)
    assert seen.id == ORDER.id  # type: ignore[attr-defined]
    assert seen.status is None  # type: ignore[attr-defined]
    assert seen.total.amount == 200  # type: ignore[attr-defined]
    assert seen.total.currency is None  # type: ignore[attr-defined]
    assert [line.quantity for line in seen.lines] == [2]  # type: ignore[attr-defined]
    assert [line.product_id for line in seen.lines] == [None]  # type: ignore[attr-defined]
    assert not hasattr(seen, "__await__")
    assert view(ORDER, ALL) is ORDER
