"""python -m services.dialer: places due calls through the telephony provider."""

from __future__ import annotations

import asyncio

import uvloop

from services.dialer.app import create_app
from services.dialer.settings import DialerSettings
from shared.observability import configure_logging
from shared.process import tune_collector
from shared.shutdown import serve_until_signalled


def main() -> None:
    settings = DialerSettings()
    configure_logging("dialer", settings.log)
    uvloop.install()
    app = create_app(settings)
    # Once the app is up, so what it made at start-up is frozen too.
    app.after_startup(_tune_collector)
    asyncio.run(serve_until_signalled(app.start, app.stop, settings.shutdown))


async def _tune_collector() -> None:
    tune_collector()


if __name__ == "__main__":
    main()
