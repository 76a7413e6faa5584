"""Which tokens this API accepts (OIDC, Cognito user pools), and the development issuer that
`hemisphere serve` runs on its own port when no real one is configured."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hemisphere.http.jwt_auth import TokenVerifier, token_issuers
from hemisphere.local_issuer import LocalIssuer
from hemisphere.settings import Settings


def token_verifier(settings: Settings) -> tuple[TokenVerifier | None, list[Route]]:
    """The verifier of the configured issuers (None when there are none), and the routes of
    the local issuer's discovery documents when this process is the issuer."""
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
    verifier = TokenVerifier(issuers) if issuers else None
    return verifier, _discovery_routes(issuer) if issuer else []


def _discovery_routes(issuer: LocalIssuer) -> list[Route]:
    async def configuration(request: Request) -> Response:
        return JSONResponse(issuer.openid_configuration())

    async def jwks(request: Request) -> Response:
        return JSONResponse(issuer.jwks())

    return [
        Route("/.well-known/openid-configuration", configuration, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
