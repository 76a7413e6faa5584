"""The regional stack: everything one region runs, deployed once per region with the same
template (the region is the stack's own, the primary a parameter).

Both front ends are in it: the AppSync API (schema, data sources, functions, resolvers:
appsync_api.py) and the containers (ECS Fargate behind an Application Load Balancer whose
health check is /readyz, and Redis for the subscription fan-out: containers.py), each with
its least-privilege IAM roles. Here: the stack's parameters and the ARNs both halves name,
and what stands behind them, the sagas' state machines (workflows/*.asl.json) and task
queue, the profile-update bus, rule and queues. A region that is not primary forwards
profile updates to the primary's bus and starts sagas there; promoting a region is a stack
update of PrimaryRegion in every region.
"""

from __future__ import annotations

from typing import Any

from hemisphere.appsync_export import cfn
from hemisphere.appsync_export.cfn import allow, get_att, policy, ref, role, sub
from workflows.definitions import SAGAS, load_definition

# What adapters/eventbridge.py names (the containers create the same if missing).
PROFILE_RULE_NAME = "customer-profile-update-requested"
PROFILE_TARGET_ID = "profile-updates-queue"
PROFILE_EVENT_PATTERN = {
    "source": ["hemisphere.api"],
    "detail-type": ["CustomerProfileUpdateRequested"],
}
CONTAINER_PORT = 8000

PARAMETERS: dict[str, Any] = {
    "PrimaryRegion": {
        "Type": "String",
        "Description": "The region that takes writes (its Step Functions, bus and Aurora writer)",
        "AllowedPattern": "^[a-z]{2}(-[a-z]+)+-[0-9]$",
    },
    "TableName": {
        "Type": "String",
        "Default": "hemisphere",
        "Description": "The projections global table (from the global stack); also the prefix "
        "of the state machines and task queue, as HEMISPHERE_TABLE is for the containers",
    },
    "EventBusName": {"Type": "String", "Default": "hemisphere"},
    "ContainerImage": {
        "Type": "String",
        "Description": "The Hemisphere image (deploy/Dockerfile), e.g. ACCOUNT.dkr.ecr.REGION"
        ".amazonaws.com/hemisphere:TAG",
    },
    "ApiDesiredCount": {"Type": "Number", "Default": 2, "MinValue": 0},
    "ApiCpu": {"Type": "String", "Default": "512", "AllowedValues": ["256", "512", "1024", "2048"]},
    "ApiMemory": {"Type": "String", "Default": "1024"},
    "WorkerCpu": {"Type": "String", "Default": "512", "AllowedValues": ["256", "512", "1024"]},
    "WorkerMemory": {"Type": "String", "Default": "1024"},
    "CacheNodeType": {"Type": "String", "Default": "cache.t4g.small"},
    "VpcId": {"Type": "AWS::EC2::VPC::Id"},
    "PublicSubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "Subnets of the load balancer (two zones at least)",
    },
    "PrivateSubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "Subnets of the tasks and of Redis (with a route to the AWS APIs)",
    },
    "AppSecretArn": {
        "Type": "String",
        "Description": "Secrets Manager secret (JSON) with DATABASE_URL (this region's Aurora "
        "endpoint), HEMISPHERE_API_KEYS, HEMISPHERE_IAM_CREDENTIALS, HEMISPHERE_TOKEN_SECRET",
    },
    "AuroraClusterArn": {
        "Type": "String",
        "Description": "The primary Aurora cluster's ARN (global stack output PrimaryClusterArn)",
    },
    "AuroraSecretArn": {
        "Type": "String",
        "Description": "Its Data API secret (global stack output PrimaryClusterSecretArn)",
    },
    "DatabaseName": {"Type": "String", "Default": "hemisphere"},
    "PaymentsUrl": {"Type": "String", "Description": "The card provider's API"},
    # AppSync keys expire: between 1 and 365 days ahead, in epoch seconds rounded down to the
    # hour. CloudFormation cannot compute "now + N days", so the deployer passes it, e.g.
    # $(( ($(date +%s) + 365*86400) / 3600 * 3600 )); 0 leaves AppSync's default (7 days).
    # Rotate before it lapses: a stack update with a new value.
    "ApiKeyExpires": {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "Description": "When the API key expires, in epoch seconds rounded down to the hour, "
        "1 to 365 days ahead (0: AppSync's default, 7 days from creation)",
    },
    "OidcIssuer": {
        "Type": "String",
        "Description": "Issuer of the OPENID_CONNECT tokens the API accepts",
    },
    "OidcCustomerClaim": {
        "Type": "String",
        "Default": "sub",
        "MinLength": 1,
        "Description": "The OPENID_CONNECT token claim holding the caller's customer id (the "
        "containers' HEMISPHERE_OIDC_CUSTOMER_CLAIM): a token caller acts only on that customer",
    },
    "CognitoUserPoolId": {
        "Type": "String",
        "AllowedPattern": "[\\w-]+_[0-9a-zA-Z]+",
        "Description": "The Cognito user pool of AMAZON_COGNITO_USER_POOLS callers (its "
        "`admins` group may upsertProduct; customer id from custom:customerId)",
    },
    "LambdaAuthorizerArn": {
        "Type": "String",
        "Description": "The AWS_LAMBDA authorizer function (AppSync's request/response "
        "contract; customer id from resolverContext.customerId)",
    },
    "LambdaAuthorizerTtlSeconds": {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "MaxValue": 3600,
        "Description": "How long an authorizer answer is cached per token (0: not cached; the "
        "function's ttlOverride wins)",
    },
    "LambdaAuthorizerTokenRegex": {
        "Type": "String",
        "Default": "",
        "Description": "Tokens not matching it are refused without calling the authorizer "
        "(AppSync's identityValidationExpression; empty: every token is passed on)",
    },
    "FrontEnd": {
        "Type": "String",
        "Default": "containers",
        "AllowedValues": ["containers", "appsync"],
        "Description": "What clients call: the containers behind the load balancer, or AppSync "
        "(both are deployed; this decides where the stream publisher triggers subscriptions)",
    },
    "CertificateArn": {
        "Type": "String",
        "Default": "",
        "Description": "ACM certificate for HTTPS on the load balancer (empty: HTTP only)",
    },
}

CONDITIONS: dict[str, Any] = {
    "IsPrimary": cfn.equals(ref("AWS::Region"), ref("PrimaryRegion")),
    "IsSecondary": cfn.not_(cfn.equals(ref("AWS::Region"), ref("PrimaryRegion"))),
    "HasCertificate": cfn.not_(cfn.equals(ref("CertificateArn"), "")),
    "HasTokenRegex": cfn.not_(cfn.equals(ref("LambdaAuthorizerTokenRegex"), "")),
    "AppSyncInFront": cfn.equals(ref("FrontEnd"), "appsync"),
    "ApiKeyHasExpiry": cfn.not_(cfn.equals(ref("ApiKeyExpires"), "0")),
}

# Queues hold work in flight, not data of record (that is PostgreSQL's): deleting them with
# the stack is right; four days of retention outlast any outage a saga or profile update waits.
QUEUE_POLICIES = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
RETENTION_SECONDS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600

TABLE_ARN = sub(
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}"
)
TABLE_INDEXES_ARN = sub(
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}/index/*"
)
TABLE_STREAMS_ARN = sub(
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}/stream/*"
)


def machine_arn(saga: str, region: str = "${PrimaryRegion}") -> dict[str, Any]:
    return sub(
        f"arn:${{AWS::Partition}}:states:{region}:${{AWS::AccountId}}:stateMachine:"
        f"${{TableName}}-{saga}"
    )


def executions_arn(saga: str, region: str = "${PrimaryRegion}") -> dict[str, Any]:
    return sub(
        f"arn:${{AWS::Partition}}:states:{region}:${{AWS::AccountId}}:execution:"
        f"${{TableName}}-{saga}:*"
    )


def logical_id(name: str) -> str:
    """A CloudFormation logical id from a camelCase name."""
    return name[0].upper() + name[1:]


# -- sagas, queues, bus -------------------------------------------------------------------------


def workflow_resources() -> dict[str, Any]:
    resources: dict[str, Any] = {
        "SagaTaskQueue": {
            "Type": "AWS::SQS::Queue",
            **QUEUE_POLICIES,
            "Properties": {
                "MessageRetentionPeriod": RETENTION_SECONDS,
                "QueueName": sub("${TableName}-saga-tasks"),
                "VisibilityTimeout": 20,
                "SqsManagedSseEnabled": True,
            },
        },
        "StateMachineRole": role(
            "states.amazonaws.com",
            policy("SendSagaTasks", allow(["sqs:SendMessage"], [get_att("SagaTaskQueue", "Arn")])),
        ),
    }
    for saga in SAGAS:
        resources[f"{logical_id(saga)}StateMachine"] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": sub(f"${{TableName}}-{saga}"),
                "StateMachineType": "STANDARD",
                "RoleArn": get_att("StateMachineRole", "Arn"),
                "Definition": load_definition(saga),
                "DefinitionSubstitutions": {"TaskQueueUrl": ref("SagaTaskQueue")},
            },
        }
    return resources


def event_resources() -> dict[str, Any]:
    primary_bus_arn = sub(
        "arn:${AWS::Partition}:events:${PrimaryRegion}:${AWS::AccountId}:event-bus/${EventBusName}"
    )
    return {
        "ProfileUpdatesBus": {
            "Type": "AWS::Events::EventBus",
            "Properties": {"Name": ref("EventBusName")},
        },
        "ProfileUpdatesDeadLetters": {
            "Type": "AWS::SQS::Queue",
            **QUEUE_POLICIES,
            "Properties": {
                "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
                "QueueName": sub("${EventBusName}-profile-updates-dlq"),
                "SqsManagedSseEnabled": True,
            },
        },
        "ProfileUpdatesQueue": {
            "Type": "AWS::SQS::Queue",
            **QUEUE_POLICIES,
            "Properties": {
                "MessageRetentionPeriod": RETENTION_SECONDS,
                "QueueName": sub("${EventBusName}-profile-updates"),
                "VisibilityTimeout": 30,
                "ReceiveMessageWaitTimeSeconds": 20,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": get_att("ProfileUpdatesDeadLetters", "Arn"),
                    "maxReceiveCount": 10,
                },
            },
        },
        # The primary delivers profile updates to its worker's queue ...
        "ProfileUpdatesToQueueRule": {
            "Type": "AWS::Events::Rule",
            "Condition": "IsPrimary",
            "Properties": {
                "Name": PROFILE_RULE_NAME,
                "EventBusName": ref("ProfileUpdatesBus"),
                "EventPattern": PROFILE_EVENT_PATTERN,
                "State": "ENABLED",
                "Targets": [
                    {"Id": PROFILE_TARGET_ID, "Arn": get_att("ProfileUpdatesQueue", "Arn")}
                ],
            },
        },
        "ProfileUpdatesQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Condition": "IsPrimary",
            "Properties": {
                "Queues": [ref("ProfileUpdatesQueue")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ProfileUpdatesFromEventBridge",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": get_att("ProfileUpdatesQueue", "Arn"),
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": get_att("ProfileUpdatesToQueueRule", "Arn")
                                }
                            },
                        }
                    ],
                },
            },
        },
        # ... a secondary forwards them to the primary's bus (cross-region target).
        "ForwardToPrimaryRole": {
            **role(
                "events.amazonaws.com",
                policy("PutOnPrimaryBus", allow(["events:PutEvents"], [primary_bus_arn])),
            ),
            "Condition": "IsSecondary",
        },
        "ProfileUpdatesToPrimaryRule": {
            "Type": "AWS::Events::Rule",
            "Condition": "IsSecondary",
            "Properties": {
                "Name": "forward-profile-updates-to-primary",
                "EventBusName": ref("ProfileUpdatesBus"),
                "EventPattern": PROFILE_EVENT_PATTERN,
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "primary-bus",
                        "Arn": primary_bus_arn,
                        "RoleArn": get_att("ForwardToPrimaryRole", "Arn"),
                    }
                ],
            },
        },
    }
