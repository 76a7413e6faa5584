from subscriptions.triggers import arguments_match


def test_omitted_arguments_match_anything() -> None:
    assert arguments_match({"id": None, "customerId": None}, {"id": "o-1", "customerId": "c-1"})


def test_every_given_argument_must_equal_the_result_field() -> None:
    result = {"id": "o-1", "customerId": "c-1"}
    assert arguments_match({"customerId": "c-1"}, result)
    assert not arguments_match({"customerId": "c-2"}, result)
    assert not arguments_match({"id": "o-1", "customerId": "c-2"}, result)
    assert not arguments_match({"category": "books"}, result)
