"""`hemisphere export appsync`: every field has a resolver, the files and templates agree with
the schema, the single-table layout and the sagas they are made from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.dynamodb import items
from hemisphere.appsync_export.bundle import bundle, helpers
from hemisphere.appsync_export.export import Topology, write_export
from hemisphere.appsync_export.plan import FUNCTIONS, RESOLVERS
from hemisphere.cli import main
from resolvers.schema import build_schema
from schema.export import export_sdl
from workflows.definitions import SAGAS, load_definition

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
APPSYNC_CODE_LIMIT = 32_000  # characters


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    write_export(out, export_sdl(build_schema()), Topology(REGIONS, "us-east-1"))
    return out


def _template(exported: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((exported / "cloudformation" / name).read_text())
    return loaded


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def test_every_root_field_has_exactly_one_resolver() -> None:
    schema = build_schema()._schema
    fields = {
        (root.name, field)
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
        for field in root.fields
    }
    planned = [(r.type_name, r.field_name) for r in RESOLVERS]
    assert len(planned) == len(set(planned))
    assert set(planned) == fields


def test_the_export_writes_the_sdl_and_one_module_per_resolver_and_function(
    exported: Path,
) -> None:
    assert (exported / "schema.graphql").read_text() == export_sdl(build_schema())
    written = {p.relative_to(exported / "resolvers").as_posix() for p in exported.rglob("*.js")}
    assert written == {unit.output for unit in (*RESOLVERS, *FUNCTIONS)}
    for path in (exported / "resolvers").rglob("*.js"):
        text = path.read_text()
        assert re.search(r"^export function request\(", text, re.M), path
        assert re.search(r"^export function response\(", text, re.M), path
        # AppSync's limit on a resolver's or function's code.
        assert len(text) <= APPSYNC_CODE_LIMIT, path
        # AppSync resolves no import but its own.
        imports = re.findall(r"^import .* from '([^']+)';", text, re.M)
        assert set(imports) <= {"@aws-appsync/utils"}, path


def test_helpers_are_copied_only_where_used() -> None:
    region = bundle("resolvers/Query.region.js")
    checkout = bundle("functions/loadCheckout.js")
    assert "function sha256Hex" not in region and "function sha256Hex" in checkout
    assert "function orderIdFor" in checkout and "function cancelExecutionName" not in checkout
    declared = [name for helper in helpers() for name in helper.declares]
    assert len(declared) == len(set(declared)), "two helpers declare one name"


def test_the_manifest_names_every_resolver_with_its_data_source(exported: Path) -> None:
    manifest = json.loads((exported / "appsync.json").read_text())
    assert manifest["runtime"] == {"name": "APPSYNC_JS", "runtimeVersion": "1.0.0"}
    by_field = {(r["typeName"], r["fieldName"]): r for r in manifest["resolvers"]}
    assert by_field[("Mutation", "checkout")]["functions"] == [
        "loadCheckout",
        "startExecution",
        "compareExistingExecution",
    ]
    assert by_field[("Mutation", "upsertProduct")]["dataSource"] == "PrimaryAurora"
    assert manifest["dataSources"]["PrimaryAurora"] == "RELATIONAL_DATABASE"
    assert manifest["dataSources"]["PrimaryStepFunctions"] == "HTTP"
    assert manifest["dataSources"]["ProfileUpdatesBus"] == "AMAZON_EVENTBRIDGE"
    for resolver in manifest["resolvers"]:
        assert (exported / resolver["file"]).is_file()


def test_the_regional_stack_attaches_every_resolver_with_its_code(exported: Path) -> None:
    template = _template(exported, "regional.yaml")
    resolvers = _of_type(template, "AWS::AppSync::Resolver")
    attached = {
        (r["Properties"]["TypeName"], r["Properties"]["FieldName"]) for r in resolvers.values()
    }
    assert attached == {(r.type_name, r.field_name) for r in RESOLVERS}
    for resource in resolvers.values():
        props = resource["Properties"]
        path = exported / "resolvers" / f"{props['TypeName']}.{props['FieldName']}.js"
        assert props["Code"] == path.read_text()
        assert props["Runtime"] == {"Name": "APPSYNC_JS", "RuntimeVersion": "1.0.0"}
    [schema] = _of_type(template, "AWS::AppSync::GraphQLSchema").values()
    assert schema["Properties"]["Definition"] == (exported / "schema.graphql").read_text()


def test_the_state_machines_are_the_workflow_files(exported: Path) -> None:
    template = _template(exported, "regional.yaml")
    machines = _of_type(template, "AWS::StepFunctions::StateMachine")
    by_name = {m["Properties"]["StateMachineName"]["Fn::Sub"]: m for m in machines.values()}
    assert set(by_name) == {f"${{TableName}}-{saga}" for saga in SAGAS}
    for saga in SAGAS:
        properties = by_name[f"${{TableName}}-{saga}"]["Properties"]
        assert properties["Definition"] == load_definition(saga)
        assert set(properties["DefinitionSubstitutions"]) == {"TaskQueueUrl"}


def test_the_global_table_has_the_projection_layout(exported: Path) -> None:
    template = _template(exported, "global.yaml")
    [table] = _of_type(template, "AWS::DynamoDB::GlobalTable").values()
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": items.PK, "KeyType": "HASH"},
        {"AttributeName": items.SK, "KeyType": "RANGE"},
    ]
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]]
        for i in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        items.GSI1: [items.GSI1_PK, items.GSI1_SK],
        items.GSI2: [items.GSI2_PK, items.GSI2_SK],
    }
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [r["Region"] for r in props["Replicas"]] == list(REGIONS)


def test_every_region_has_a_latency_record_with_a_readyz_health_check(exported: Path) -> None:
    template = _template(exported, "routing.yaml")
    records = _of_type(template, "AWS::Route53::RecordSet")
    checks = _of_type(template, "AWS::Route53::HealthCheck")
    assert sorted(r["Properties"]["Region"] for r in records.values()) == sorted(REGIONS)
    for record in records.values():
        check = checks[record["Properties"]["HealthCheckId"]["Ref"]]
        assert check["Properties"]["HealthCheckConfig"]["ResourcePath"] == "/readyz"
    regional = _template(exported, "regional.yaml")
    [group] = _of_type(regional, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] == "/readyz"


def test_the_command_writes_the_export_and_refuses_a_primary_outside_the_regions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "appsync", "--out", str(tmp_path / "a"), "--regions", "eu-west-1"]) == 0
    assert (tmp_path / "a" / "cloudformation" / "regional.yaml").is_file()
    code = main(
        [
            "export",
            "appsync",
            "--out",
            str(tmp_path / "b"),
            "--regions",
            "eu-west-1",
            "--primary",
            "us-east-1",
        ]
    )
    assert code == 2
    assert "us-east-1 is not one of the regions" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_an_export_over_an_earlier_one_leaves_no_stale_resolver(tmp_path: Path) -> None:
    stale = tmp_path / "resolvers" / "Query.retired.js"
    stale.parent.mkdir(parents=True)
    stale.write_text("export function request() { return {}; }\n")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    write_export(tmp_path, export_sdl(build_schema()), Topology(REGIONS, "us-east-1"))
    assert not stale.exists() and keep.read_text() == "mine"
    assert (tmp_path / "resolvers" / "Query.product.js").is_file()


def test_ownership_is_in_every_resolver_of_customer_data(exported: Path) -> None:
    """Contract v2: AppSync's directives check the mode only; the resolvers check whose
    customer it is (js/lib/caller.js), with the OIDC claim the regional stack is given."""
    owned = [
        "Query.customer.js",
        "Query.order.js",
        "Query.ordersByCustomer.js",
        "functions/loadCheckout.js",
        "functions/loadProfileCustomer.js",
        "functions/loadCancellation.js",
        "Subscription.onOrderChanged.js",
        "Subscription.onCustomerChanged.js",
    ]
    for name in owned:
        text = (exported / "resolvers" / name).read_text()
        assert "// --- helpers from caller.js ---" in text, name
        assert "util.unauthorized()" in text, name
    public = ["Query.product.js", "Query.products.js", "Subscription.onProductChanged.js"]
    for name in public:
        assert "caller.js" not in (exported / "resolvers" / name).read_text(), name
    template = _template(exported, "regional.yaml")
    assert template["Parameters"]["OidcCustomerClaim"]["Default"] == "sub"
    [api] = _of_type(template, "AWS::AppSync::GraphQLApi").values()
    env = api["Properties"]["EnvironmentVariables"]
    assert env["OIDC_CUSTOMER_CLAIM"] == {"Ref": "OidcCustomerClaim"}


def test_the_sdl_keeps_upsert_product_to_iam_and_cognito_admins(exported: Path) -> None:
    # No resolver code checks this: AppSync's directive does, so the SDL must carry it.
    sdl = (exported / "schema.graphql").read_text()
    [line] = [ln for ln in sdl.splitlines() if ln.strip().startswith("upsertProduct(")]
    directives = line.split(":", 2)[-1]
    assert '@aws_cognito_user_pools(cognito_groups: ["admins"])' in directives
    assert "@aws_iam" in directives
    assert not any(d in directives for d in ("@aws_api_key", "@aws_oidc", "@aws_lambda"))


def test_appsync_and_the_containers_accept_every_mode_the_contract_names(exported: Path) -> None:
    """The SDL names five modes: AppSync must have each configured (and may call the Lambda
    authorizer), and the containers beside it must accept the same callers."""
    template = _template(exported, "regional.yaml")
    [api] = _of_type(template, "AWS::AppSync::GraphQLApi").values()
    modes = {api["Properties"]["AuthenticationType"]} | {
        p["AuthenticationType"] for p in api["Properties"]["AdditionalAuthenticationProviders"]
    }
    assert modes == {
        "API_KEY",
        "AWS_IAM",
        "OPENID_CONNECT",
        "AMAZON_COGNITO_USER_POOLS",
        "AWS_LAMBDA",
    }
    [permission] = _of_type(template, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "appsync.amazonaws.com"
    for task in _of_type(template, "AWS::ECS::TaskDefinition").values():
        [container] = task["Properties"]["ContainerDefinitions"]
        names = {e["Name"] for e in container["Environment"]}
        assert {
            "HEMISPHERE_OIDC_ISSUER",
            "HEMISPHERE_COGNITO_USER_POOL_ID",
            "HEMISPHERE_LAMBDA_AUTHORIZER_ARN",
        } <= names
