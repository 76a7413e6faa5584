"""The global stack, deployed once (in the primary region): what spans every region.

- the projections as a DynamoDB global table: keys and indexes as adapters/dynamodb/table.py
  creates them, streams on (NEW_AND_OLD_IMAGES: the publisher and global tables need both),
  one replica per region;
- the relational model as an Aurora PostgreSQL global database: the global cluster and its
  primary cluster (Data API on, for AppSync's upsertProduct); each other region adds a
  secondary cluster to it (aurora-secondary.yaml);
- (routing_template) Route 53 latency records, one per region, each with a health check on
  the region's /readyz, deployed once the regions give their endpoints.
"""

from __future__ import annotations

from typing import Any

from adapters.dynamodb import items
from hemisphere.appsync_export.cfn import get_att, ref, sub

HEALTH_CHECK_PATH = "/readyz"


def region_key(region: str) -> str:
    """us-east-1 -> UsEast1: a region as part of a parameter or resource name."""
    return "".join(part.capitalize() for part in region.split("-"))


def _index(name: str, pk: str, sk: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def _table(regions: list[str]) -> dict[str, Any]:
    attributes = [items.PK, items.SK, items.GSI1_PK, items.GSI1_SK, items.GSI2_PK, items.GSI2_SK]
    return {
        "Type": "AWS::DynamoDB::GlobalTable",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "TableName": ref("TableName"),
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"} for name in attributes
            ],
            "KeySchema": [
                {"AttributeName": items.PK, "KeyType": "HASH"},
                {"AttributeName": items.SK, "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                _index(items.GSI1, items.GSI1_PK, items.GSI1_SK),
                _index(items.GSI2, items.GSI2_PK, items.GSI2_SK),
            ],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "Replicas": [
                {
                    "Region": region,
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                }
                for region in regions
            ],
        },
    }


def _aurora() -> dict[str, Any]:
    return {
        "GlobalDatabase": {
            "Type": "AWS::RDS::GlobalCluster",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "GlobalClusterIdentifier": ref("TableName"),
                "Engine": "aurora-postgresql",
                "EngineVersion": ref("AuroraEngineVersion"),
                "StorageEncrypted": True,
            },
        },
        "DatabaseSubnetGroup": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "Properties": {
                "DBSubnetGroupDescription": "Hemisphere's Aurora cluster",
                "SubnetIds": ref("DatabaseSubnetIds"),
            },
        },
        "PrimaryCluster": {
            "Type": "AWS::RDS::DBCluster",
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": {
                "GlobalClusterIdentifier": ref("GlobalDatabase"),
                "Engine": "aurora-postgresql",
                "EngineVersion": ref("AuroraEngineVersion"),
                "DatabaseName": ref("DatabaseName"),
                "MasterUsername": "hemisphere",
                "ManageMasterUserPassword": True,
                "StorageEncrypted": True,
                # The RDS Data API: AppSync's upsertProduct runs its statement through it.
                "EnableHttpEndpoint": True,
                "DBSubnetGroupName": ref("DatabaseSubnetGroup"),
                "VpcSecurityGroupIds": ref("DatabaseSecurityGroupIds"),
                "ServerlessV2ScalingConfiguration": {
                    "MinCapacity": ref("AuroraMinCapacity"),
                    "MaxCapacity": ref("AuroraMaxCapacity"),
                },
                "BackupRetentionPeriod": 7,
            },
        },
        # The cluster holds the data (and is snapshotted); an instance is compute alone.
        "PrimaryInstance": {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "DBClusterIdentifier": ref("PrimaryCluster"),
                "DBInstanceClass": "db.serverless",
                "Engine": "aurora-postgresql",
            },
        },
    }


def _routing(regions: list[str]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for region in regions:
        key = region_key(region)
        resources[f"{key}HealthCheck"] = {
            "Type": "AWS::Route53::HealthCheck",
            "Properties": {
                "HealthCheckConfig": {
                    "Type": "HTTP",
                    "FullyQualifiedDomainName": ref(f"{key}HealthCheckHost"),
                    "Port": 80,
                    "ResourcePath": HEALTH_CHECK_PATH,
                    "RequestInterval": 10,
                    "FailureThreshold": 3,
                },
                "HealthCheckTags": [{"Key": "Name", "Value": sub(f"${{TableName}}-{region}")}],
            },
        }
        resources[f"{key}LatencyRecord"] = {
            "Type": "AWS::Route53::RecordSet",
            "Properties": {
                "HostedZoneId": ref("HostedZoneId"),
                "Name": ref("DomainName"),
                "Type": "CNAME",
                "TTL": "60",
                "SetIdentifier": region,
                "Region": region,
                "HealthCheckId": ref(f"{key}HealthCheck"),
                "ResourceRecords": [ref(f"{key}Endpoint")],
            },
        }
    return resources


def global_template(regions: list[str], primary: str) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Hemisphere, global part: the projections' DynamoDB global table and the "
        f"Aurora PostgreSQL global database. Deploy first, in {primary} (the primary region).",
        "Parameters": {
            "TableName": {"Type": "String", "Default": "hemisphere"},
            "DatabaseName": {"Type": "String", "Default": "hemisphere"},
            "AuroraEngineVersion": {"Type": "String", "Default": "16.4"},
            "AuroraMinCapacity": {"Type": "Number", "Default": 0.5},
            "AuroraMaxCapacity": {"Type": "Number", "Default": 8},
            "DatabaseSubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
            "DatabaseSecurityGroupIds": {"Type": "List<AWS::EC2::SecurityGroup::Id>"},
        },
        "Resources": {"ProjectionsTable": _table(regions), **_aurora()},
        "Outputs": {
            "TableName": {"Value": ref("ProjectionsTable")},
            "TableStreamArn": {"Value": get_att("ProjectionsTable", "StreamArn")},
            "GlobalClusterIdentifier": {"Value": ref("GlobalDatabase")},
            "PrimaryClusterArn": {"Value": get_att("PrimaryCluster", "DBClusterArn")},
            "PrimaryClusterSecretArn": {
                "Value": get_att("PrimaryCluster", "MasterUserSecret.SecretArn")
            },
            "PrimaryClusterEndpoint": {"Value": get_att("PrimaryCluster", "Endpoint.Address")},
        },
    }


def routing_template(regions: list[str]) -> dict[str, Any]:
    """Route 53 latency routing over the regions' front ends, each record with a health check
    on its region's /readyz: deployed last, once the regional stacks give their endpoints."""
    parameters: dict[str, Any] = {
        "HostedZoneId": {"Type": "AWS::Route53::HostedZone::Id"},
        "DomainName": {
            "Type": "String",
            "Description": "The name clients call, e.g. api.example.com",
        },
        "TableName": {"Type": "String", "Default": "hemisphere"},
    }
    for region in regions:
        key = region_key(region)
        parameters[f"{key}Endpoint"] = {
            "Type": "String",
            "Description": f"The front end clients reach in {region}: its load balancer's DNS "
            "name (regional output LoadBalancerDnsName) or AppSync custom domain",
        }
        parameters[f"{key}HealthCheckHost"] = {
            "Type": "String",
            "Description": f"The load balancer in {region} (LoadBalancerDnsName) whose "
            f"{HEALTH_CHECK_PATH} says whether the region serves",
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Hemisphere: Route 53 latency records with /readyz health checks, one "
        "per region. Deploy after the regional stacks.",
        "Parameters": parameters,
        "Resources": _routing(regions),
        "Outputs": {"ApiDomainName": {"Value": ref("DomainName")}},
    }


def aurora_secondary_template() -> dict[str, Any]:
    """A secondary cluster of the global database, deployed in each region but the primary's:
    a read-only replica there (the containers' DATABASE_URL), promotable on failover."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Hemisphere: this region's secondary cluster of the Aurora global database",
        "Parameters": {
            "GlobalClusterIdentifier": {"Type": "String"},
            "AuroraEngineVersion": {"Type": "String", "Default": "16.4"},
            "AuroraMinCapacity": {"Type": "Number", "Default": 0.5},
            "AuroraMaxCapacity": {"Type": "Number", "Default": 8},
            "DatabaseSubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
            "DatabaseSecurityGroupIds": {"Type": "List<AWS::EC2::SecurityGroup::Id>"},
            "KmsKeyId": {
                "Type": "String",
                "Description": "A KMS key of this region: an encrypted global database's "
                "secondary cluster needs one",
            },
        },
        "Resources": {
            "DatabaseSubnetGroup": {
                "Type": "AWS::RDS::DBSubnetGroup",
                "Properties": {
                    "DBSubnetGroupDescription": "Hemisphere's Aurora secondary cluster",
                    "SubnetIds": ref("DatabaseSubnetIds"),
                },
            },
            "SecondaryCluster": {
                "Type": "AWS::RDS::DBCluster",
                "DeletionPolicy": "Snapshot",
                "UpdateReplacePolicy": "Snapshot",
                "Properties": {
                    "GlobalClusterIdentifier": ref("GlobalClusterIdentifier"),
                    "Engine": "aurora-postgresql",
                    "EngineVersion": ref("AuroraEngineVersion"),
                    "StorageEncrypted": True,
                    "KmsKeyId": ref("KmsKeyId"),
                    "EnableHttpEndpoint": True,
                    "DBSubnetGroupName": ref("DatabaseSubnetGroup"),
                    "VpcSecurityGroupIds": ref("DatabaseSecurityGroupIds"),
                    "ServerlessV2ScalingConfiguration": {
                        "MinCapacity": ref("AuroraMinCapacity"),
                        "MaxCapacity": ref("AuroraMaxCapacity"),
                    },
                    # Kept when this cluster is promoted to be the writer.
                    "BackupRetentionPeriod": 7,
                },
            },
            "SecondaryInstance": {
                "Type": "AWS::RDS::DBInstance",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "DBClusterIdentifier": ref("SecondaryCluster"),
                    "DBInstanceClass": "db.serverless",
                    "Engine": "aurora-postgresql",
                },
            },
        },
        "Outputs": {
            "ClusterArn": {"Value": get_att("SecondaryCluster", "DBClusterArn")},
            "ReaderEndpoint": {"Value": get_att("SecondaryCluster", "ReadEndpoint.Address")},
        },
    }
