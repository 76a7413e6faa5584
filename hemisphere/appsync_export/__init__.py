"""`hemisphere export appsync`: the same contract as a deployable AppSync API (SDL, APPSYNC_JS
resolvers, CloudFormation for the global part and for each region)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any]) -> None:
    from hemisphere.appsync_export.command import add_export_command

    add_export_command(commands)
