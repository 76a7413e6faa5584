"""hemisphere.moto.server: the local endpoint parses a state machine definition once and gives
every execution a program of its own."""

from __future__ import annotations

import threading

import pytest

from hemisphere.moto.server import ProgramCache
from workflows.definitions import definitions


class Node:
    def __init__(self, text: str) -> None:
        self.text = text
        self.children: list[str] = []


def test_each_definition_is_parsed_once_and_every_caller_gets_its_own_copy() -> None:
    parsed: list[str] = []

    def parse(text: str) -> Node:
        parsed.append(text)
        return Node(text)

    cache = ProgramCache(parse)
    first, second = cache.program("A"), cache.program("A")
    first.children.append("evaluated")  # one execution's state ...
    assert second.children == [] and cache.program("A").children == []  # ... is its own
    assert first is not second and first.text == second.text == "A"
    cache.program("B")
    assert parsed == ["A", "B"] and cache.parses == 2


def test_the_least_recently_used_definition_is_dropped_past_the_capacity() -> None:
    parsed: list[str] = []

    def parse(text: str) -> Node:
        parsed.append(text)
        return Node(text)

    cache = ProgramCache(parse, capacity=2)
    for text in ("A", "B", "A", "C", "A", "B"):
        cache.program(text)
    assert parsed == ["A", "B", "C", "B"]  # B was the least recently used when C came
    with pytest.raises(ValueError, match="capacity"):
        ProgramCache(Node, capacity=0)


def test_threads_share_the_parsed_definition() -> None:
    cache = ProgramCache(Node)
    programs: list[Node] = []
    threads = [
        threading.Thread(target=lambda: programs.append(cache.program("X"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(p) for p in programs}) == 8 and cache.parses <= 8


def test_moto_runs_the_sagas_definitions_from_the_cache() -> None:
    """With the real ASL parser: the checkout saga's program, parsed once, copied per run."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    text = definitions()["checkout"].replace("${TaskQueueUrl}", "http://127.0.0.1:1/q")
    cache = ProgramCache(lambda t: AmazonStateLanguageParser.parse(t)[0])
    one, two = cache.program(text), cache.program(text)
    assert cache.parses == 1
    assert type(one) is type(two) and one is not two
    # Copied from its pickle, not deep-copied: the same states, none of them shared.
    assert isinstance(cache._programs[text], bytes)
    assert one.states.states.keys() == two.states.states.keys()  # type: ignore[attr-defined]
    assert all(
        one.states.states[name] is not two.states.states[name]  # type: ignore[attr-defined]
        for name in one.states.states  # type: ignore[attr-defined]
    )


def test_a_program_that_cannot_be_pickled_is_deep_copied() -> None:
    def parse(text: str) -> Node:
        node = Node(text)
        node.hook = lambda: text  # type: ignore[attr-defined]  # not picklable
        return node

    cache = ProgramCache(parse)
    first, second = cache.program("A"), cache.program("A")
    first.children.append("evaluated")
    assert second.children == [] and first is not second and cache.parses == 1
