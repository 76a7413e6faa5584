"""CloudFormation building blocks: intrinsic functions in their long form (so a template is
plain data that any YAML loader reads back), IAM policy shapes, and the YAML writer."""

from __future__ import annotations

from typing import Any

import yaml

Template = dict[str, Any]


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def if_(condition: str, then: Any, otherwise: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, then, otherwise]}


def equals(left: Any, right: Any) -> dict[str, Any]:
    return {"Fn::Equals": [left, right]}


def not_(condition: dict[str, Any]) -> dict[str, Any]:
    return {"Fn::Not": [condition]}


NO_VALUE = ref("AWS::NoValue")


def assume_role(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def allow(actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def policy(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "PolicyName": name,
        "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
    }


def role(service: str, *policies: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An IAM role that `service` assumes, with only the inline policies given."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": assume_role(service),
            "Policies": list(policies),
            **extra,
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (schema, resolver code, SQL), plain otherwise; no
    anchors and aliases, which CloudFormation rejects (a shared value is written twice)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _string)


def to_yaml(template: Template, header: str) -> str:
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return comment + body
