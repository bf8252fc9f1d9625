"""The dialer's HTTP side: carriers' status callbacks, served by every copy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.dialer.adapters.carrier_twilio import STATUS_CALLBACK_PATH as TWILIO_STATUS_PATH
from services.dialer.domain.twilio import event_from_status, signature_matches
from services.dialer.handlers import DialHandler

log = logging.getLogger(__name__)

HANDLER: web.AppKey[DialHandler] = web.AppKey("handler", DialHandler)


def create_http_app(
    handler: DialHandler, twilio_auth_token: str | None, public_url: str
) -> web.Application:
    """The callback endpoint exists when a Twilio account is configured."""
    app = web.Application()
    app[HANDLER] = handler
    if twilio_auth_token:
        app.router.add_post(
            TWILIO_STATUS_PATH, _twilio_status(twilio_auth_token, public_url.rstrip("/"))
        )
    return app


def _twilio_status(
    auth_token: str, public_url: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def on_twilio_status(request: web.Request) -> web.Response:
        form = await request.post()
        params = [(name, value) for name, value in form.items() if isinstance(value, str)]
        # Signed over the URL the carrier was given, which a proxy in front may not pass on.
        url = public_url + request.path_qs
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature_matches(url, params, auth_token, signature):
            log.warning("carrier callback with a missing or wrong signature refused")
            return web.Response(status=403, text="signature does not match")
        event = event_from_status(dict(params))
        if event is None:
            return web.Response(status=200)
        if not await request.app[HANDLER].on_carrier_event("twilio", event):
            # The carrier retries anything but a 2xx, and no retry will make this call known.
            log.info("callback for unknown carrier call %s ignored", event.carrier_call_id)
        return web.Response(status=200)

    return on_twilio_status
