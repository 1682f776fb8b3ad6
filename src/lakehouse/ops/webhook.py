"""An alert event sent to a webhook: one JSON POST, within the webhook's timeout,
retried with a doubling pause (0.5 s, 1 s, 2 s...) on network errors, timeouts, 408, 429
and 5xx answers. The address is a secret: errors name only its scheme and host."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    import httpx

    from lakehouse.settings.model import Webhook

FIRST_PAUSE = 0.5
MAX_PAUSE = 5.0
RETRIED = {408, 425, 429}


class WebhookError(LakehouseError):
    """A webhook that did not take an event after its retries."""


def where(hook: Webhook) -> str:
    """The webhook as errors and logs show it: scheme and host, no path or credentials."""
    parts = urlsplit(hook.url.get_secret_value())
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def post(hook: Webhook, payload: dict[str, Any], client: httpx.Client | None = None) -> int:
    """POST ``payload`` as JSON; the attempts it took. Raises ``WebhookError``."""
    import httpx  # here: every command imports this module, few send an alert

    headers = {k: v.get_secret_value() for k, v in hook.headers.items()}
    headers.setdefault("Content-Type", "application/json")
    body = orjson.dumps(payload, default=str)
    own = client is None
    http = client or httpx.Client(timeout=hook.timeout)
    problem = ""
    try:
        for attempt in range(hook.retries + 1):
            if attempt:
                time.sleep(min(MAX_PAUSE, FIRST_PAUSE * 2 ** (attempt - 1)))
            try:
                answer = http.post(
                    hook.url.get_secret_value(), content=body, headers=headers, timeout=hook.timeout
                )
            except httpx.TimeoutException:
                problem = f"no answer within {hook.timeout:g} s"
                continue
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if answer.is_success:
                return attempt + 1
            problem = f"it answered {answer.status_code}"
            if answer.status_code < 500 and answer.status_code not in RETRIED:
                break  # the receiver refuses this event: trying again will not help
    finally:
        if own:
            http.close()
    raise WebhookError(
        f"webhook {where(hook)} did not take the alert event: {problem} "
        f"(after {hook.retries + 1} attempt{'s' if hook.retries else ''})",
        "the event stays pending in system.alerts and is sent again at the next evaluation "
        "(lakehouse alerts evaluate); check the receiver and alerts.webhooks in lakehouse.yaml",
    )
