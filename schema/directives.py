"""AppSync's directives: declared for Strawberry, never printed as definitions (AppSync knows
them), and used on types and fields exactly as in the contract."""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location

from domain.auth import AuthMode

_ON = [Location.OBJECT, Location.FIELD_DEFINITION]


@strawberry.schema_directive(locations=_ON, name="aws_api_key", print_definition=False)
class AwsApiKey:
    pass


@strawberry.schema_directive(locations=_ON, name="aws_iam", print_definition=False)
class AwsIam:
    pass


@strawberry.schema_directive(locations=_ON, name="aws_oidc", print_definition=False)
class AwsOidc:
    pass


@strawberry.schema_directive(locations=_ON, name="aws_lambda", print_definition=False)
class AwsLambda:
    pass


@strawberry.schema_directive(locations=_ON, name="aws_cognito_user_pools", print_definition=False)
class AwsCognitoUserPools:
    # UNSET, not None: a bare `@aws_cognito_user_pools` prints no argument.
    cognito_groups: list[str] | None = strawberry.directive_field(
        name="cognito_groups", default=strawberry.UNSET
    )


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION], name="aws_subscribe", print_definition=False
)
class AwsSubscribe:
    mutations: list[str]


_DIRECTIVE_OF_MODE: dict[AuthMode, type] = {
    AuthMode.API_KEY: AwsApiKey,
    AuthMode.AWS_IAM: AwsIam,
    AuthMode.OPENID_CONNECT: AwsOidc,
    AuthMode.AWS_LAMBDA: AwsLambda,
    AuthMode.AMAZON_COGNITO_USER_POOLS: AwsCognitoUserPools,
}


def auth_directives(*modes: AuthMode) -> list[object]:
    """The directive instances that declare which modes may read a type or field."""
    return [_DIRECTIVE_OF_MODE[mode]() for mode in modes]


def modes_of(directives: list[object] | tuple[object, ...]) -> frozenset[AuthMode]:
    """The auth modes that a list of directive instances grants."""
    by_class = {cls: mode for mode, cls in _DIRECTIVE_OF_MODE.items()}
    return frozenset(by_class[type(d)] for d in directives if type(d) in by_class)
