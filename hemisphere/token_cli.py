"""`hemisphere token CUSTOMER_ID [--groups admins] [--user-pool] [--data-dir DIR]`: a token
from the development issuer of the `hemisphere serve` whose data is in DIR, for the
Authorization header: OPENID_CONNECT, or with groups (or --user-pool) a Cognito user pool
token (AMAZON_COGNITO_USER_POOLS), as the catalog's `admins` group needs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hemisphere.local_issuer import issuer_of
from hemisphere.settings import SettingsError


def register(commands: Any) -> None:
    token = commands.add_parser(
        "token", help="print a token for a demo customer from serve's development issuer"
    )
    token.add_argument("customer_id", help="the customer the token speaks for, e.g. c-0001")
    token.add_argument(
        "--groups", default="", help="comma-separated groups (cognito:groups), e.g. admins"
    )
    token.add_argument(
        "--user-pool",
        action="store_true",
        help="a Cognito user pool token (implied by --groups) rather than an OIDC one",
    )
    token.add_argument("--data-dir", type=Path, default=Path(".hemisphere"))
    token.add_argument("--seconds", type=int, default=3600, help="how long it is valid")
    token.set_defaults(run=_token)


def _token(args: argparse.Namespace) -> int:
    issuer = issuer_of(args.data_dir)
    if issuer is None:
        raise SettingsError(
            f"no development issuer in {args.data_dir}: start `hemisphere serve` (or `hemisphere "
            "up`) there first "
            "(it is off when HEMISPHERE_OIDC_ISSUER or a Cognito user pool is configured)"
        )
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    user_pool = args.user_pool or bool(groups)
    print(issuer.token(args.customer_id, groups, seconds=args.seconds, user_pool=user_pool))
    return 0
