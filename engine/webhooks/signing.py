"""Standard Webhooks signatures (https://www.standardwebhooks.com), via the reference `standardwebhooks`
library, so merchants can verify with the same library in their language."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    """A signing secret in the spec's `whsec_<base64>` form (24 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(secret: str, message_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    timestamp = int(at.timestamp())
    signature = Webhook(secret).sign(message_id, dt.datetime.fromtimestamp(timestamp, dt.UTC), body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature,
            "content-type": "application/json"}
