"""Who may call this API: the Authenticator of the configured modes (API keys with their
expiry, IAM, the token issuers (OIDC, Cognito user pools), the Lambda authorizer), and the
development issuer that `hemisphere serve` runs on its own port when no real one is
configured."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.lambda_authorizer import HttpAuthorizerTransport, LambdaFunctionTransport
from domain.auth import AuthMode
from hemisphere.aws_credentials import aws_credentials
from hemisphere.http.authn import Authenticator
from hemisphere.http.jwt_auth import TokenIssuer, TokenVerifier, token_issuers
from hemisphere.http.lambda_authorizer import TIMEOUT_SECONDS, LambdaAuthorizer
from hemisphere.http.lambda_authorizer_ports import AuthorizerTransport
from hemisphere.local_issuer import LocalIssuer
from hemisphere.publisher_identity import stream_publisher_credentials
from hemisphere.settings import Settings

# The accountId of an authorizer's requestContext when no function ARN names one.
LOCAL_ACCOUNT_ID = "000000000000"


def authenticator_for(settings: Settings) -> tuple[Authenticator, list[Route]]:
    """The API's Authenticator (its `aclose` belongs to the app's lifespan), and the routes of
    the local issuer's discovery documents when this process is the issuer."""
    assert settings.token_secret is not None
    tokens, issuers, routes = _tokens(settings)
    authenticator = Authenticator(
        settings.api_keys,
        settings.iam_credentials,
        region=settings.region,
        stream_publisher=stream_publisher_credentials(settings.token_secret),
        tokens=tokens,
        token_issuers=issuers,
        lambda_authorizer=lambda_authorizer(settings),
        api_key_expiry=settings.api_key_expiry,
    )
    return authenticator, routes


def _tokens(settings: Settings) -> tuple[TokenVerifier | None, list[str], list[Route]]:
    issuer = (
        LocalIssuer(settings.data_dir, settings.oidc_issuer)
        if settings.local_issuer and settings.oidc_issuer is not None
        else None
    )
    issuers = token_issuers(
        oidc_issuer=settings.oidc_issuer,
        oidc_client_id=settings.oidc_client_id,
        oidc_customer_claim=settings.oidc_customer_claim,
        cognito_user_pool_id=settings.cognito_user_pool_id,
        cognito_client_id=settings.cognito_client_id,
        cognito_jwks_url=settings.cognito_jwks_url,
        local_jwks=issuer.jwks() if issuer else None,
    )
    if issuer is not None:
        # Its user pool flavour too: tokens with groups (the catalog's `admins` are a Cognito
        # group in the contract) are AMAZON_COGNITO_USER_POOLS tokens.
        issuers.append(local_user_pool(issuer))
    verifier = TokenVerifier(issuers) if issuers else None
    names = [i.issuer for i in issuers]
    return verifier, names, _discovery_routes(issuer) if issuer else []


def lambda_authorizer(settings: Settings) -> LambdaAuthorizer | None:
    """The AWS_LAMBDA authorizer the settings name (None: the mode is off)."""
    transport: AuthorizerTransport
    account = LOCAL_ACCOUNT_ID
    if settings.lambda_authorizer_arn is not None:
        account = settings.lambda_authorizer_arn.split(":")[4]
        transport = LambdaFunctionTransport(
            settings.lambda_authorizer_arn,
            endpoint_url=settings.aws_endpoint_url,
            credentials=aws_credentials(settings),
            timeout_seconds=TIMEOUT_SECONDS,
        )
    elif settings.lambda_authorizer_url is not None:
        transport = HttpAuthorizerTransport(
            settings.lambda_authorizer_url, timeout_seconds=TIMEOUT_SECONDS
        )
    else:
        return None
    assert settings.token_secret is not None
    return LambdaAuthorizer(
        transport,
        # A key of its own, derived from the deployment's shared secret: every instance names
        # a token's caller alike, and the name reveals nothing of the token.
        principal_key=hmac.new(
            settings.token_secret.encode(), b"hemisphere/lambda-principal", hashlib.sha256
        ).digest(),
        api_id=settings.appsync_api_id,
        account_id=account,
        ttl_seconds=settings.lambda_authorizer_ttl_seconds,
        token_regex=settings.lambda_authorizer_token_regex,
    )


def local_user_pool(issuer: LocalIssuer) -> TokenIssuer:
    """The development issuer as a Cognito user pool (hemisphere.local_issuer)."""
    return TokenIssuer(
        mode=AuthMode.AMAZON_COGNITO_USER_POOLS,
        issuer=issuer.user_pool_issuer,
        customer_claim="custom:customerId",
        groups_claim="cognito:groups",
        jwks=issuer.jwks(),
    )


def _discovery_routes(issuer: LocalIssuer) -> list[Route]:
    documents = issuer.documents()

    async def published(request: Request) -> Response:
        return JSONResponse(documents[request.url.path])

    return [Route(path, published, methods=["GET"]) for path in documents]
