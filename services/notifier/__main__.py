"""python -m services.notifier: delivers signed webhooks for call events."""

from __future__ import annotations

import asyncio

import uvloop

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.observability import configure_logging
from shared.shutdown import serve_until_signalled


def main() -> None:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log)
    uvloop.install()
    app = create_app(settings)
    asyncio.run(serve_until_signalled(app.start, app.stop, settings.shutdown))


if __name__ == "__main__":
    main()
