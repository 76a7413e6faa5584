"""HTTP probes for deploy/test-image, standard library only (it runs with the host's python3
inside the container's network namespace): prints "STATUS BODY" on one line.

    http_probe.py get URL
    http_probe.py graphql URL API_KEY QUERY     (API_KEY "" sends none)
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> str:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return f"{status} {payload.decode(errors='replace').replace(chr(10), ' ')}"


def main(argv: list[str]) -> int:
    match argv:
        case ["get", url]:
            print(request(url))
        case ["graphql", url, api_key, query]:
            headers = {"content-type": "application/json"}
            if api_key:
                headers["x-api-key"] = api_key
            print(request(url, json.dumps({"query": query}).encode(), headers))
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as error:  # refused, reset, timed out: not up yet
        print(f"000 {error}")
        sys.exit(1)
