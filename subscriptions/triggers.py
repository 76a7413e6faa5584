"""AppSync's `@aws_subscribe` argument semantics: every argument the subscriber gave must equal
the same-named top-level field of the mutation's result; an omitted (null) argument matches
anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def arguments_match(arguments: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    return all(value is None or result.get(name) == value for name, value in arguments.items())
