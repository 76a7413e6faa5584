"""One API instance on external backends, as a deployment runs it (no tests here):

    python -m tests.support.fanout_runner --port 8101

Configuration comes from the environment (DATABASE_URL, AWS_ENDPOINT_URL, REDIS_URL,
HEMISPHERE_*), the app from hemisphere.app.create_app with bootstrap's wiring (the Redis
broker, the change-stream publisher), served as `hemisphere serve` serves it. Unlike serve it
starts no embedded backend and neither seeds nor rebuilds, so that several instances can share
one set of backends; its publisher calls this very instance unless HEMISPHERE_PUBLISH_URL
says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace

import uvicorn

from hemisphere.app import create_app
from hemisphere.http.ws_protocol import LeanWebSocketsProtocol
from hemisphere.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings.from_env(os.environ)
    if settings.publish_url is None:
        settings = replace(settings, publish_url=f"http://127.0.0.1:{args.port}/graphql")
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: one line per publication.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # As `hemisphere serve` runs it: uvicorn's loop (uvloop), websockets-sansio made lean, no
    # permessage-deflate (hemisphere.roles.serving.uvicorn_config).
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="on",
        ws=LeanWebSocketsProtocol,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
