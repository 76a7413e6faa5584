"""Who the benchmarks' clients are under contract v2: the API key reads only the catalog, so a
client that places or reads orders acts as their customer, with a token of the development
issuer (hemisphere/local_issuer.py), as a shop's frontend would after its user signed in.

A token is made once per customer and kept until it nears its expiry: signing is an RSA
operation, which a real client does not pay per request either (and which would count as
load-generator CPU here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hemisphere.local_issuer import ISSUER_FILE, CustomerTokens, LocalIssuer, issuer_of


def serve_tokens(data_dir: Path) -> CustomerTokens:
    """The tokens of the issuer a `hemisphere serve` with data in `data_dir` runs."""
    issuer = issuer_of(data_dir)
    if issuer is None:
        raise RuntimeError(
            f"{data_dir / ISSUER_FILE} is missing: this serve runs no development issuer "
            "(HEMISPHERE_OIDC_ISSUER or a Cognito user pool is set?)"
        )
    return CustomerTokens(issuer)


@contextmanager
def issuer_on_a_port(directory: Path, host: str = "127.0.0.1") -> Iterator[LocalIssuer]:
    """A development issuer whose discovery documents this process serves (a thread), for an
    API instance that is not `hemisphere serve` (which serves its own): give the instance
    HEMISPHERE_OIDC_ISSUER=issuer.issuer and it fetches the key set from here, once."""
    issuer: LocalIssuer | None = None

    class Discovery(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert issuer is not None
            document = issuer.documents().get(self.path)
            body = json.dumps(document).encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # not one line per key-set fetch on the benchmark's output

    server = ThreadingHTTPServer((host, 0), Discovery)
    issuer = LocalIssuer(directory, f"http://{host}:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="issuer", daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
