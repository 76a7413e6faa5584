"""DynamoDB's TransactWriteItems on the local endpoint, at the cost of the items it touches.

moto (5.x) makes a transaction atomic by deep-copying every table it names before writing and
putting the copies back when a write fails. A table's copy includes all its items and its
whole stream (moto keeps every record it ever made), so each transaction costs time in
proportion to everything the region ever wrote. The checkpoints of the stream publisher and
of the replicators are transactions, several a second in every region: a `hemisphere up`
under a steady checkout load spent half of a secondary's endpoint CPU deep-copying its table,
and the stream reads waiting behind it made replication lag grow with the run (seconds, then
tens of seconds).

Here a transaction works as DynamoDB describes it: first every condition is checked against
the items as they are (a failed one cancels the transaction with the reasons of each
operation, and nothing has been written); then the writes are made, with an undo record of
just the items they touch (and of where each stream ended), used only if a write still fails
(an invalid update expression): then those items and streams are put back as they were.
Errors, their reasons and the stream records of a committed transaction are moto's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
MAX_ITEMS = 100


@dataclass
class _Operation:
    kind: str
    spec: dict[str, Any]
    table: Any  # moto's Table
    key: dict[str, Any]


@dataclass
class _Undo:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any  # the item as it was (a copy), or None if there was none


def install_transactions_by_item() -> None:
    """Replace moto's DynamoDBBackend.transact_write_items (see the module docstring)."""
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > MAX_ITEMS:
        raise TooManyTransactionsException()
    operations: list[_Operation] = []
    targets: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, spec = next(iter(entry.items()))
        if kind not in _OPERATIONS:
            raise MockValidationException("Unsupported transaction operation")
        table = backend.get_table(spec["TableName"])
        key = _key_of(table, kind, spec)
        target = (str(spec["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        operations.append(_Operation(kind, spec, table, key))

    reasons = [_check(backend, operation) for operation in operations]
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    undo: list[_Undo] = []
    stream_ends = {
        id(op.table): (op.table, len(op.table.stream_shard.items))
        for op in operations
        if op.table.stream_shard is not None
    }
    for index, operation in enumerate(operations):
        if operation.kind == "ConditionCheck":
            continue
        hash_key, range_key = backend.get_keys_value(operation.table, operation.key)
        before = operation.table.get_item(hash_key, range_key)
        undo.append(_Undo(operation.table, hash_key, range_key, copy.deepcopy(before)))
        try:
            _write(backend, operation)
        except Exception as error:
            _roll_back(undo, stream_ends.values())
            if isinstance(error, MockValidationException | MultipleTransactionsException):
                raise
            failed: list[tuple[str | None, str | None, dict[str, Any] | None]] = [
                (None, None, None)
            ] * len(operations)
            code = "ConditionalCheckFailed" if "ConditionalCheck" in type(error).__name__ else None
            failed[index] = (code or type(error).__name__, str(error), None)
            raise TransactionCanceledException(failed) from error


def _key_of(table: Any, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        key: dict[str, Any] = spec["Key"]
        return key
    attributes = spec["Item"]
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _check(
    backend: Any, operation: _Operation
) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """The reason this operation cancels the transaction, or (None, None, None)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed, MockValidationException

    spec = operation.spec
    condition = spec.get("ConditionExpression")
    if condition is None:
        return (None, None, None)
    try:
        current = backend.get_item(spec["TableName"], operation.key)
        expression = get_filter_expression(
            condition, spec.get("ExpressionAttributeNames"), spec.get("ExpressionAttributeValues")
        )
        if expression.expr(current):
            return (None, None, None)
        old = None
        if spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
            old = current.to_json()["Attributes"]
        return ("ConditionalCheckFailed", ConditionalCheckFailed(item=old).message, old)
    except MockValidationException:
        raise
    except Exception as error:
        return (type(error).__name__, str(error), None)


def _write(backend: Any, operation: _Operation) -> None:
    spec = operation.spec
    names, values = spec.get("ExpressionAttributeNames"), spec.get("ExpressionAttributeValues")
    table_name = spec["TableName"]
    # The condition again, as each write is made: the server runs DynamoDB's actions one at a
    # time (hemisphere/moto/atomic_items.py), but this function does not rely on it; a write
    # that fails is rolled back and the transaction cancelled, as moto's own would be.
    condition = spec.get("ConditionExpression")
    if operation.kind == "Put":
        backend.put_item(
            table_name,
            spec["Item"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif operation.kind == "Delete":
        backend.delete_item(
            table_name,
            operation.key,
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    else:
        backend.update_item(
            table_name,
            operation.key,
            update_expression=spec["UpdateExpression"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _roll_back(undo: list[_Undo], streams: Any) -> None:
    for entry in reversed(undo):
        items = entry.table.items
        if entry.item is None:
            if entry.range_key is not None:
                items.get(entry.hash_key, {}).pop(entry.range_key, None)
            else:
                items.pop(entry.hash_key, None)
        elif entry.range_key is not None:
            items[entry.hash_key][entry.range_key] = entry.item
        else:
            items[entry.hash_key] = entry.item
    for table, end in streams:
        del table.stream_shard.items[end:]
