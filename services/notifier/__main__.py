"""python -m services.notifier: delivers signed webhooks for call events."""

from __future__ import annotations

import asyncio

import uvloop

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.observability import configure_logging


def main() -> None:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log)
    uvloop.install()
    asyncio.run(create_app(settings).run())


if __name__ == "__main__":
    main()
