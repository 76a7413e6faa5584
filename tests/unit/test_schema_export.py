"""The exported SDL: what AppSync accepts, and equal to the committed contract."""

from pathlib import Path

import pytest

from resolvers.schema import build_schema
from schema.export import CONTRACT_PATH, appsync_violations, contract_diff, export_sdl

SHARED_CONTRACT = Path(__file__).parents[3] / "shared" / "contract" / "appsync-schema.graphql"


def test_export_keeps_appsyncs_rules() -> None:
    sdl = export_sdl(build_schema())
    assert appsync_violations(sdl) == []
    assert sdl.count("schema {") == 1 and '"""' not in sdl
    assert "scalar " not in sdl and "directive @" not in sdl and "extend " not in sdl
    assert '@aws_subscribe(mutations: ["publishOrder"])' in sdl
    assert "upsertProduct(input: ProductInput!): Product @aws_iam" in sdl


def test_code_matches_the_committed_contract() -> None:
    assert contract_diff(build_schema()) == ""


def test_committed_contract_is_the_production_one() -> None:
    if not SHARED_CONTRACT.exists():
        pytest.skip("no production contract beside this checkout")
    production, committed = SHARED_CONTRACT.read_text(), CONTRACT_PATH.read_text()
    assert committed == production


def test_drift_is_shown(tmp_path: Path) -> None:
    drifted = tmp_path / "appsync.graphql"
    drifted.write_text(CONTRACT_PATH.read_text().replace("  sku: String!\n", "", 1))
    diff = contract_diff(build_schema(), drifted)
    assert "+  sku: String!" in diff


def test_violations_are_named() -> None:
    bad = "scalar AWSDateTime\ndirective @aws_iam on OBJECT\ntype AWSThing { a: Int }\n"
    bad += 'extend type AWSThing { b: Int }\n"""doc"""\ntype Q { a: Int }'
    problems = " | ".join(appsync_violations(bad))
    for word in ("schema {", "AWSDateTime", "@aws_iam", "AWSThing", "extend", '"""'):
        assert word in problems
