"""python -m services.ingest: serves the public API."""

from __future__ import annotations

import uvloop
from aiohttp import web

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.observability import configure_logging
from shared.process import tune_collector


async def _tune_collector(app: web.Application) -> None:
    """Tunes the collector once the app's resources are up (3.5% of the call path's
    instructions went to walking young objects with the default thresholds)."""
    tune_collector()


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log)
    uvloop.install()
    app = create_app(settings)
    # After create_app's own start-up (its resources come first), so that is frozen too.
    app.on_startup.append(_tune_collector)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        # aiohttp closes a connection that has not sent a whole request head this long after
        # it opened or after its previous answer (the slow-header client), and an idle one.
        keepalive_timeout=settings.header_timeout_seconds,
    )


if __name__ == "__main__":
    main()
