"""python -m services.ingest: serves the public API."""

from __future__ import annotations

import uvloop
from aiohttp import web

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.observability import configure_logging


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log)
    uvloop.install()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )


if __name__ == "__main__":
    main()
