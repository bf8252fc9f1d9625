"""python -m services.dialer: places due calls through the telephony provider."""

from __future__ import annotations

import asyncio

import uvloop

from services.dialer.app import create_app
from services.dialer.settings import DialerSettings
from shared.observability import configure_logging


def main() -> None:
    settings = DialerSettings()
    configure_logging("dialer", settings.log)
    uvloop.install()
    asyncio.run(create_app(settings).run())


if __name__ == "__main__":
    main()
