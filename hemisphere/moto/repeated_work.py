"""Work moto's emulators repeat on every request that gives the same answer each time: done
once here, with what moto computes otherwise unchanged.

- **JSONPath expressions.** moto's Step Functions interpreter parses each JSONPath of a state
  (`$.orderId`, a ResultPath) every time it evaluates it, and jsonpath-ng builds a new PLY
  parser, LALR tables included, for every parse: 10 % of moto's CPU in the write benchmark
  (`bench/write_path.py`, py-spy `--gil` on the endpoint). The parsed expression is an
  immutable tree (finding and updating touch only the data), so one per text is kept and
  shared by every execution's thread.
- **An item's size check.** moto's DynamoDB `Item` sets its attributes one by one into a dict
  that sums the size of every attribute already in it at each insertion: quadratic in the
  attributes, nested maps and lists measured again each time (2 % of moto's CPU in the same
  run, an order item having a dozen attributes). Here the attributes are converted, summed
  once, and refused past the same limit with the same error.
- **A queue's attributes.** moto's SQS answers a request for some of a queue's attributes by
  building all of them (message counts included, each a pass over the queue's messages)
  three times over, and a ReceiveMessage asks for the retention period that way for every
  message it looks at: quadratic in the queue's depth (13 % of moto's CPU in the same run,
  the saga steps' receives). Here the attributes are built once per request, and the
  retention period is read where they read it.
"""

from __future__ import annotations

import functools
from typing import Any, Final

# Distinct JSONPath texts kept: the paths of every state machine of a deployment.
MAX_JSON_PATHS: Final = 4096


def install_json_path_cache() -> None:
    """Parse each JSONPath text once, in both places moto's interpreter parses them."""
    from jsonpath_ng.ext.parser import parse as parse_extended
    from jsonpath_ng.parser import parse
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # The modules imported `parse` by name: their own bindings are the ones to replace.
    setattr(json_path, "parse", functools.lru_cache(MAX_JSON_PATHS)(parse_extended))  # noqa: B010
    setattr(result_path, "parse", functools.lru_cache(MAX_JSON_PATHS)(parse))  # noqa: B010


def install_linear_item_size_check() -> None:
    """Build moto's DynamoDB items with one size check instead of one per attribute."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def size_of(value: Any) -> int:
        # As LimitedSizeDict.__setitem__ counts a key or a value.
        if type(value) is DynamoType:
            return int(value.size())
        return int(bytesize(str(value)))

    def item_init(
        item: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
    ) -> None:
        item.hash_key = hash_key
        item.range_key = range_key
        converted = {key: DynamoType(value) for key, value in attrs.items()}
        total = sum(size_of(key) + size_of(value) for key, value in converted.items())
        # LimitedSizeDict's own limit (moto's measure of DynamoDB's 400 KB).
        if total > 405000:
            raise ItemSizeTooLarge
        item.attrs = LimitedSizeDict()
        dict.update(item.attrs, converted)  # checked above; later writes check themselves

    Item.__init__ = item_init  # type: ignore[method-assign,assignment]


def install_queue_attributes_once() -> None:
    """Build a queue's attributes once per request, and never for its retention period."""
    from moto.core.utils import unix_time
    from moto.sqs.exceptions import InvalidAttributeName
    from moto.sqs.models import Message, SQSBackend

    def get_queue_attributes(
        backend: SQSBackend, queue_name: str, attribute_names: list[str]
    ) -> dict[str, Any]:
        # moto's own checks and answer, with `queue.attributes` built once.
        queue = backend.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid or invalid == "":
            raise InvalidAttributeName(invalid)
        everything: dict[str, Any] = queue.attributes
        if "All" in attribute_names:
            return everything
        return {
            name: everything[name]
            for name in attribute_names
            if name in everything and everything[name] is not None
        }

    def is_message_valid_based_on_retention_period(
        backend: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        # Set by moto's Queue._set_attributes, as every attribute is (no declaration).
        retention: Any = backend.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
        sent: Any = message.sent_timestamp
        return bool(int(retention) + sent / 1000 > unix_time())

    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign,assignment]
    retained: Any = is_message_valid_based_on_retention_period
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


def install_all() -> None:
    install_json_path_cache()
    install_linear_item_size_check()
    install_queue_attributes_once()
