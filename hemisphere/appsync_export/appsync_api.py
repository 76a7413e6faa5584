"""The regional stack's AppSync half: the GraphQL API with its five auth modes, the schema,
the API key, and the data sources, functions and resolvers of the export's plan
(hemisphere.appsync_export.plan), each data source with a role that may do what it does."""

from __future__ import annotations

from typing import Any

from hemisphere.appsync_export import cfn
from hemisphere.appsync_export.bundle import APPSYNC_JS_RUNTIME, bundle
from hemisphere.appsync_export.cfn import allow, get_att, policy, ref, role, sub
from hemisphere.appsync_export.plan import (
    DATA_SOURCES,
    FUNCTIONS,
    LOCAL,
    PRIMARY_AURORA,
    PRIMARY_STEP_FUNCTIONS,
    PROFILE_UPDATES_BUS,
    PROJECTIONS,
    RESOLVERS,
    DataSource,
    Function,
    Resolver,
)
from hemisphere.appsync_export.regional import (
    TABLE_ARN,
    TABLE_INDEXES_ARN,
    executions_arn,
    logical_id,
    machine_arn,
)
from workflows.definitions import SAGAS


def _data_source_id(source: DataSource) -> str:
    return f"{source.name}DataSource"


def _function_id(function: Function) -> str:
    return f"{logical_id(function.name)}Function"


def _resolver_id(resolver: Resolver) -> str:
    return f"{resolver.type_name}{logical_id(resolver.field_name)}Resolver"


def appsync_resources(sdl: str) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "GraphQLApi": {
            "Type": "AWS::AppSync::GraphQLApi",
            "Properties": {
                "Name": sub("${TableName}-${AWS::Region}"),
                "AuthenticationType": "API_KEY",
                "AdditionalAuthenticationProviders": [
                    {"AuthenticationType": "AWS_IAM"},
                    {
                        "AuthenticationType": "OPENID_CONNECT",
                        "OpenIDConnectConfig": {"Issuer": ref("OidcIssuer")},
                    },
                    # Every mode the contract names is configured: its directives name five.
                    {
                        "AuthenticationType": "AMAZON_COGNITO_USER_POOLS",
                        "UserPoolConfig": {
                            "UserPoolId": ref("CognitoUserPoolId"),
                            "AwsRegion": ref("AWS::Region"),
                        },
                    },
                    {
                        "AuthenticationType": "AWS_LAMBDA",
                        "LambdaAuthorizerConfig": {
                            "AuthorizerUri": ref("LambdaAuthorizerArn"),
                            "AuthorizerResultTtlInSeconds": ref("LambdaAuthorizerTtlSeconds"),
                            "IdentityValidationExpression": cfn.if_(
                                "HasTokenRegex", ref("LambdaAuthorizerTokenRegex"), cfn.NO_VALUE
                            ),
                        },
                    },
                ],
                # What the resolvers read as ctx.env: where they are and where writes go.
                "EnvironmentVariables": {
                    "REGION": ref("AWS::Region"),
                    "PRIMARY_REGION": ref("PrimaryRegion"),
                    "TABLE_NAME": ref("TableName"),
                    "CHECKOUT_STATE_MACHINE_ARN": machine_arn("checkout"),
                    "CANCEL_STATE_MACHINE_ARN": machine_arn("cancel"),
                    # Whose customer an OIDC caller is (js/lib/caller.js).
                    "OIDC_CUSTOMER_CLAIM": ref("OidcCustomerClaim"),
                },
                "XrayEnabled": True,
            },
        },
        # AppSync may call the authorizer (the console adds this; a template must).
        "LambdaAuthorizerPermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": ref("LambdaAuthorizerArn"),
                "Principal": "appsync.amazonaws.com",
                "SourceArn": get_att("GraphQLApi", "Arn"),
            },
        },
        "GraphQLSchema": {
            "Type": "AWS::AppSync::GraphQLSchema",
            "Properties": {"ApiId": get_att("GraphQLApi", "ApiId"), "Definition": sdl},
        },
        "ApiKey": {
            "Type": "AWS::AppSync::ApiKey",
            "Properties": {
                "ApiId": get_att("GraphQLApi", "ApiId"),
                "Description": "Public catalogue and region reads (the default mode)",
                "Expires": cfn.if_("ApiKeyHasExpiry", ref("ApiKeyExpires"), ref("AWS::NoValue")),
            },
        },
    }
    for source in DATA_SOURCES:
        resources.update(_data_source(source))
    for function in FUNCTIONS:
        resources[_function_id(function)] = {
            "Type": "AWS::AppSync::FunctionConfiguration",
            "Properties": {
                "ApiId": get_att("GraphQLApi", "ApiId"),
                "Name": function.name,
                "DataSourceName": get_att(_data_source_id(function.data_source), "Name"),
                "Runtime": {
                    "Name": APPSYNC_JS_RUNTIME["name"],
                    "RuntimeVersion": APPSYNC_JS_RUNTIME["runtimeVersion"],
                },
                "Code": bundle(function.source),
            },
        }
    for resolver in RESOLVERS:
        properties: dict[str, Any] = {
            "ApiId": get_att("GraphQLApi", "ApiId"),
            "TypeName": resolver.type_name,
            "FieldName": resolver.field_name,
            "Runtime": {
                "Name": APPSYNC_JS_RUNTIME["name"],
                "RuntimeVersion": APPSYNC_JS_RUNTIME["runtimeVersion"],
            },
            "Code": bundle(resolver.source),
        }
        if resolver.is_pipeline:
            properties["Kind"] = "PIPELINE"
            properties["PipelineConfig"] = {
                "Functions": [get_att(_function_id(f), "FunctionId") for f in resolver.functions]
            }
        else:
            assert resolver.data_source is not None
            properties["Kind"] = "UNIT"
            properties["DataSourceName"] = get_att(_data_source_id(resolver.data_source), "Name")
        resources[_resolver_id(resolver)] = {
            "Type": "AWS::AppSync::Resolver",
            # A resolver can only attach to a field the schema already has.
            "DependsOn": "GraphQLSchema",
            "Properties": properties,
        }
    return resources


def _data_source(source: DataSource) -> dict[str, Any]:
    name = _data_source_id(source)
    properties: dict[str, Any] = {
        "ApiId": get_att("GraphQLApi", "ApiId"),
        "Name": source.name,
        "Description": source.purpose,
        "Type": source.kind.value,
    }
    resources: dict[str, Any] = {}
    if source is PROJECTIONS:
        properties["DynamoDBConfig"] = {
            "TableName": ref("TableName"),
            "AwsRegion": ref("AWS::Region"),
        }
        access = [
            allow(
                ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
                [TABLE_ARN, TABLE_INDEXES_ARN],
            )
        ]
    elif source is PRIMARY_STEP_FUNCTIONS:
        properties["HttpConfig"] = {
            "Endpoint": sub("https://states.${PrimaryRegion}.amazonaws.com/"),
            "AuthorizationConfig": {
                "AuthorizationType": "AWS_IAM",
                "AwsIamConfig": {
                    "SigningRegion": ref("PrimaryRegion"),
                    "SigningServiceName": "states",
                },
            },
        }
        access = [
            allow(["states:StartExecution"], [machine_arn(saga) for saga in SAGAS]),
            allow(["states:DescribeExecution"], [executions_arn(saga) for saga in SAGAS]),
        ]
    elif source is PROFILE_UPDATES_BUS:
        properties["EventBridgeConfig"] = {"EventBusArn": get_att("ProfileUpdatesBus", "Arn")}
        access = [allow(["events:PutEvents"], [get_att("ProfileUpdatesBus", "Arn")])]
    elif source is PRIMARY_AURORA:
        properties["RelationalDatabaseConfig"] = {
            "RelationalDatabaseSourceType": "RDS_HTTP_ENDPOINT",
            "RdsHttpEndpointConfig": {
                "AwsRegion": ref("PrimaryRegion"),
                "DbClusterIdentifier": ref("AuroraClusterArn"),
                "DatabaseName": ref("DatabaseName"),
                "AwsSecretStoreArn": ref("AuroraSecretArn"),
                "Schema": "public",
            },
        }
        access = [
            allow(["rds-data:ExecuteStatement"], [ref("AuroraClusterArn")]),
            allow(["secretsmanager:GetSecretValue"], [ref("AuroraSecretArn")]),
        ]
    elif source is LOCAL:
        access = []
    else:
        raise ValueError(f"no CloudFormation for data source {source.name}")
    if access:
        resources[f"{name}Role"] = role(
            "appsync.amazonaws.com", policy(f"{source.name}Access", *access)
        )
        properties["ServiceRoleArn"] = get_att(f"{name}Role", "Arn")
    resources[name] = {"Type": "AWS::AppSync::DataSource", "Properties": properties}
    return resources
