"""The region's change-stream publisher signs its publish* calls as a principal of its own,
derived from the deployment's token secret (which every instance already shares), so the
API can tell the stream's publications from any other IAM caller's without one more secret
to distribute.

Why it matters: each instance drops a stream publication whose item version it has already
delivered (replays after a restart or a lease takeover). Only the stream's own publications
may feed that memory: a publish* call by an operator (AppSync delivers those too) must never
make the instance refuse the real changes that follow it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def stream_publisher_credentials(token_secret: str) -> tuple[str, str]:
    """(access key id, secret key) of the region's stream publisher."""

    def derive(purpose: bytes) -> bytes:
        return hmac.new(token_secret.encode(), purpose, hashlib.sha256).digest()

    akid = "AKIAHEMISPHEREPUB" + derive(b"hemisphere/stream-publisher/akid").hex()[:3].upper()
    secret = base64.urlsafe_b64encode(derive(b"hemisphere/stream-publisher/secret")).decode()
    return akid, secret.rstrip("=")
