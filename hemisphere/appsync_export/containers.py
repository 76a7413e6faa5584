"""The regional stack's container half: the Hemisphere image on ECS Fargate (the API behind an
Application Load Balancer whose health check is /readyz; the primary's workers; the stream
publisher), Redis for the subscription fan-out, and each service's own IAM role.

Configuration reaches the containers as the environment `hemisphere api|worker|publisher`
read (see README, "Configuration"); secrets come from one Secrets Manager secret.

It stays one module over 400 lines: one CloudFormation builder whose parts (roles, tasks,
services, security groups, load balancer) name each other's logical ids.
"""

from __future__ import annotations

from typing import Any

from hemisphere.appsync_export.cfn import allow, get_att, if_, policy, ref, role, sub
from hemisphere.appsync_export.regional import (
    CONTAINER_PORT,
    TABLE_ARN,
    TABLE_INDEXES_ARN,
    TABLE_STREAMS_ARN,
    executions_arn,
    machine_arn,
)
from workflows.definitions import SAGAS

SECRET_KEYS = (
    "DATABASE_URL",
    "HEMISPHERE_API_KEYS",
    "HEMISPHERE_IAM_CREDENTIALS",
    "HEMISPHERE_TOKEN_SECRET",
)
HEALTH_CHECK_PATH = "/readyz"

_HERE = "${AWS::Region}"
_QUEUES_ARN = sub("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${TableName}-*")
_BUS_QUEUES_ARN = sub(
    "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${EventBusName}-profile-updates*"
)
_BUS_ARN = get_att("ProfileUpdatesBus", "Arn")
_PRIMARY_BUS_ARN = sub(
    "arn:${AWS::Partition}:events:${PrimaryRegion}:${AWS::AccountId}:event-bus/${EventBusName}"
)
_RULES_ARN = sub(
    "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${EventBusName}/*"
)


def _reads() -> list[dict[str, Any]]:
    return [
        allow(
            [
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:DescribeTable",
            ],
            [TABLE_ARN, TABLE_INDEXES_ARN],
        )
    ]


def _start_up() -> list[dict[str, Any]]:
    """What every instance checks or puts in place at start (idempotently): the state machines
    and task queue of this region, the profile-update bus, rule and queues."""
    here = [machine_arn(saga, _HERE) for saga in SAGAS]
    return [
        allow(["states:ListStateMachines"], ["*"]),
        allow(
            [
                "states:DescribeStateMachine",
                "states:UpdateStateMachine",
                "states:CreateStateMachine",
            ],
            here,
        ),
        allow(["iam:PassRole"], [get_att("StateMachineRole", "Arn")]),
        allow(
            [
                "sqs:GetQueueUrl",
                "sqs:CreateQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
            ],
            [_QUEUES_ARN, _BUS_QUEUES_ARN],
        ),
        allow(["events:CreateEventBus", "events:DescribeEventBus"], [_BUS_ARN]),
        allow(["events:PutRule", "events:PutTargets", "events:DescribeRule"], [_RULES_ARN]),
    ]


def _writes() -> list[dict[str, Any]]:
    """The mutations: start sagas in the primary, put profile updates on a bus."""
    return [
        allow(
            ["states:StartExecution"],
            [machine_arn(saga) for saga in SAGAS] + [machine_arn(saga, _HERE) for saga in SAGAS],
        ),
        allow(
            ["states:DescribeExecution"],
            [executions_arn(saga) for saga in SAGAS]
            + [executions_arn(saga, _HERE) for saga in SAGAS],
        ),
        allow(["events:PutEvents"], [_BUS_ARN, _PRIMARY_BUS_ARN]),
    ]


def _workers() -> list[dict[str, Any]]:
    here = [machine_arn(saga, _HERE) for saga in SAGAS]
    return [
        allow(
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:SendMessage",
            ],
            [_QUEUES_ARN, _BUS_QUEUES_ARN],
        ),
        allow(
            ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"], here
        ),
        allow(["states:ListExecutions"], here),
        allow(["states:StartExecution"], here),
        allow(
            [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ],
            [TABLE_ARN],
        ),
    ]


def _stream() -> list[dict[str, Any]]:
    return [
        allow(["dynamodb:ListStreams"], ["*"]),
        allow(
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            [TABLE_STREAMS_ARN],
        ),
        # The publisher's lease and checkpoints are items of the table.
        allow(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], [TABLE_ARN]),
    ]


def _environment(role_name: str) -> list[dict[str, Any]]:
    environment: list[dict[str, Any]] = [
        {"Name": "HEMISPHERE_REGION", "Value": ref("AWS::Region")},
        {"Name": "HEMISPHERE_PRIMARY_REGION", "Value": ref("PrimaryRegion")},
        {"Name": "HEMISPHERE_TABLE", "Value": ref("TableName")},
        {"Name": "HEMISPHERE_EVENT_BUS", "Value": ref("EventBusName")},
        {"Name": "HEMISPHERE_STATE_MACHINE_ROLE_ARN", "Value": get_att("StateMachineRole", "Arn")},
        {"Name": "HEMISPHERE_PAYMENTS_URL", "Value": ref("PaymentsUrl")},
        {
            "Name": "REDIS_URL",
            "Value": sub(
                "rediss://${Redis.PrimaryEndPoint.Address}:${Redis.PrimaryEndPoint.Port}/0"
            ),
        },
        # The API runs no workers: they are a service of their own, in the primary only.
        {"Name": "HEMISPHERE_RUN_WORKERS", "Value": "false"},
        # The same callers as AppSync's: the contract's five modes, configured alike.
        {"Name": "HEMISPHERE_OIDC_ISSUER", "Value": ref("OidcIssuer")},
        {"Name": "HEMISPHERE_OIDC_CUSTOMER_CLAIM", "Value": ref("OidcCustomerClaim")},
        {"Name": "HEMISPHERE_COGNITO_USER_POOL_ID", "Value": ref("CognitoUserPoolId")},
        {"Name": "HEMISPHERE_LAMBDA_AUTHORIZER_ARN", "Value": ref("LambdaAuthorizerArn")},
        {
            "Name": "HEMISPHERE_LAMBDA_AUTHORIZER_TTL_SECONDS",
            "Value": ref("LambdaAuthorizerTtlSeconds"),
        },
        {
            "Name": "HEMISPHERE_LAMBDA_AUTHORIZER_TOKEN_REGEX",
            "Value": ref("LambdaAuthorizerTokenRegex"),
        },
    ]
    if role_name == "publisher":
        # The stream publisher calls the publish* mutations of the front end that clients
        # subscribe through, so that its subscriptions fire (the API runs none of its own).
        environment.append(
            {
                "Name": "HEMISPHERE_PUBLISH_URL",
                "Value": if_(
                    "AppSyncInFront",
                    get_att("GraphQLApi", "GraphQLUrl"),
                    sub("http://${LoadBalancer.DNSName}/graphql"),
                ),
            }
        )
    return environment


def _task(name: str, command: list[str], cpu: str, memory: str, task_role: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "Name": "hemisphere",
        "Image": ref("ContainerImage"),
        "Command": command,
        "Essential": True,
        "Environment": _environment(name),
        "Secrets": [
            {"Name": key, "ValueFrom": sub(f"${{AppSecretArn}}:{key}::")} for key in SECRET_KEYS
        ],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref("LogGroup"),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": name,
            },
        },
        # The image's STOPSIGNAL is SIGTERM; the processes drain within
        # HEMISPHERE_SHUTDOWN_TIMEOUT (10 s), well inside ECS's 30 s stop timeout.
        "StopTimeout": 30,
    }
    if name == "api":
        container["PortMappings"] = [{"ContainerPort": CONTAINER_PORT, "Protocol": "tcp"}]
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": sub(f"${{TableName}}-{name}"),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": ref(cpu),
            "Memory": ref(memory),
            "ExecutionRoleArn": get_att("TaskExecutionRole", "Arn"),
            "TaskRoleArn": get_att(task_role, "Arn"),
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
            "ContainerDefinitions": [container],
        },
    }


def _service(
    name: str, task: str, count: Any, *, condition: str | None = None, balanced: bool = False
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Cluster": ref("Cluster"),
        "ServiceName": name,
        "LaunchType": "FARGATE",
        "TaskDefinition": ref(task),
        "DesiredCount": count,
        "DeploymentConfiguration": {
            "MinimumHealthyPercent": 100,
            "MaximumPercent": 200,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        },
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": ref("PrivateSubnetIds"),
                "SecurityGroups": [ref("TaskSecurityGroup")],
            }
        },
    }
    resource: dict[str, Any] = {"Type": "AWS::ECS::Service", "Properties": properties}
    if balanced:
        properties["LoadBalancers"] = [
            {
                "ContainerName": "hemisphere",
                "ContainerPort": CONTAINER_PORT,
                "TargetGroupArn": ref("ApiTargetGroup"),
            }
        ]
        properties["HealthCheckGracePeriodSeconds"] = 120
        resource["DependsOn"] = ["HttpListener"]
    if condition:
        resource["Condition"] = condition
    return resource


def _security_group(description: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {"GroupDescription": description, "VpcId": ref("VpcId")}
    if ingress:
        properties["SecurityGroupIngress"] = ingress
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": properties}


def container_resources() -> dict[str, Any]:
    return {
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            # Logs outlive the stack: what happened before a teardown stays readable.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"LogGroupName": sub("/hemisphere/${TableName}"), "RetentionInDays": 30},
        },
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": ref("TableName")}},
        # -- network -------------------------------------------------------------------------
        "LoadBalancerSecurityGroup": _security_group(
            "Clients to the load balancer",
            [
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"},
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"},
            ],
        ),
        "TaskSecurityGroup": _security_group(
            "The load balancer to the API tasks",
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": CONTAINER_PORT,
                    "ToPort": CONTAINER_PORT,
                    "SourceSecurityGroupId": ref("LoadBalancerSecurityGroup"),
                }
            ],
        ),
        "RedisSecurityGroup": _security_group(
            "The tasks to Redis",
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "SourceSecurityGroupId": ref("TaskSecurityGroup"),
                }
            ],
        ),
        # -- Redis (the subscription fan-out between the API's instances) --------------------
        "RedisSubnetGroup": {
            "Type": "AWS::ElastiCache::SubnetGroup",
            "Properties": {
                "Description": "Hemisphere's Redis",
                "SubnetIds": ref("PrivateSubnetIds"),
            },
        },
        # Pub/sub only: nothing in Redis outlives a connection, so it is not kept.
        "Redis": {
            "Type": "AWS::ElastiCache::ReplicationGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "ReplicationGroupDescription": "Subscription fan-out between API instances",
                "Engine": "redis",
                "CacheNodeType": ref("CacheNodeType"),
                "NumCacheClusters": 2,
                "AutomaticFailoverEnabled": True,
                "MultiAZEnabled": True,
                "TransitEncryptionEnabled": True,
                "AtRestEncryptionEnabled": True,
                "CacheSubnetGroupName": ref("RedisSubnetGroup"),
                "SecurityGroupIds": [ref("RedisSecurityGroup")],
            },
        },
        # -- the load balancer ---------------------------------------------------------------
        "LoadBalancer": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Type": "application",
                "Scheme": "internet-facing",
                "Subnets": ref("PublicSubnetIds"),
                "SecurityGroups": [ref("LoadBalancerSecurityGroup")],
                # WebSocket subscriptions idle between keep-alives.
                "LoadBalancerAttributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "300"}],
            },
        },
        "ApiTargetGroup": {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "VpcId": ref("VpcId"),
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": CONTAINER_PORT,
                "HealthCheckPath": HEALTH_CHECK_PATH,
                "HealthCheckIntervalSeconds": 10,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "Matcher": {"HttpCode": "200"},
                "TargetGroupAttributes": [
                    # Longer than HEMISPHERE_SHUTDOWN_TIMEOUT: a draining task finishes first.
                    {"Key": "deregistration_delay.timeout_seconds", "Value": "15"}
                ],
            },
        },
        "HttpListener": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": ref("LoadBalancer"),
                "Port": 80,
                "Protocol": "HTTP",
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref("ApiTargetGroup")}],
            },
        },
        "HttpsListener": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Condition": "HasCertificate",
            "Properties": {
                "LoadBalancerArn": ref("LoadBalancer"),
                "Port": 443,
                "Protocol": "HTTPS",
                "Certificates": [{"CertificateArn": ref("CertificateArn")}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref("ApiTargetGroup")}],
            },
        },
        # -- roles ---------------------------------------------------------------------------
        "TaskExecutionRole": role(
            "ecs-tasks.amazonaws.com",
            policy(
                "PullImageWriteLogsReadSecret",
                allow(
                    [
                        "ecr:GetAuthorizationToken",
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchGetImage",
                    ],
                    ["*"],
                ),
                allow(["logs:CreateLogStream", "logs:PutLogEvents"], [get_att("LogGroup", "Arn")]),
                allow(["secretsmanager:GetSecretValue"], [ref("AppSecretArn")]),
            ),
        ),
        "ApiTaskRole": role(
            "ecs-tasks.amazonaws.com",
            policy(
                "Api",
                *_reads(),
                *_start_up(),
                *_writes(),
                allow(["lambda:InvokeFunction"], [ref("LambdaAuthorizerArn")]),
            ),
        ),
        "WorkerTaskRole": {
            **role(
                "ecs-tasks.amazonaws.com",
                policy("Workers", *_reads(), *_start_up(), *_writes(), *_workers()),
            ),
            "Condition": "IsPrimary",
        },
        "PublisherTaskRole": role(
            "ecs-tasks.amazonaws.com", policy("StreamPublisher", *_reads(), *_stream())
        ),
        # -- tasks and services --------------------------------------------------------------
        "ApiTask": _task(
            "api",
            ["api", "--host", "0.0.0.0", "--port", str(CONTAINER_PORT)],
            "ApiCpu",
            "ApiMemory",
            "ApiTaskRole",
        ),
        "WorkerTask": {
            **_task("worker", ["worker"], "WorkerCpu", "WorkerMemory", "WorkerTaskRole"),
            "Condition": "IsPrimary",
        },
        "PublisherTask": _task(
            "publisher", ["publisher"], "WorkerCpu", "WorkerMemory", "PublisherTaskRole"
        ),
        "ApiService": _service("api", "ApiTask", ref("ApiDesiredCount"), balanced=True),
        "WorkerService": _service("worker", "WorkerTask", 1, condition="IsPrimary"),
        # One publisher per region: it holds a lease, a second one would only wait.
        "PublisherService": _service("publisher", "PublisherTask", 1),
    }


def container_outputs() -> dict[str, Any]:
    return {
        "LoadBalancerUrl": {
            "Description": "The containers' GraphQL endpoint (Route 53 latency record target)",
            "Value": if_(
                "HasCertificate",
                sub("https://${LoadBalancer.DNSName}/graphql"),
                sub("http://${LoadBalancer.DNSName}/graphql"),
            ),
        },
        "LoadBalancerDnsName": {"Value": get_att("LoadBalancer", "DNSName")},
        "HealthCheckUrl": {"Value": sub("http://${LoadBalancer.DNSName}" + HEALTH_CHECK_PATH)},
        "RedisEndpoint": {"Value": get_att("Redis", "PrimaryEndPoint.Address")},
    }
