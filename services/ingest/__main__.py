"""python -m services.ingest: serves the public API."""

from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.observability import configure_logging
from shared.process import tune_collector
from shared.shutdown import serve_until_signalled


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
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        # Stopping: the listener closes, requests under way get the drain budget to be
        # answered, then the resources close (the pending hand-off is sent first).
        shutdown_timeout=settings.shutdown.drain_seconds,
        # aiohttp closes a connection that has not sent a whole request head this long after
        # it opened or after its previous answer (the slow-header client), and an idle one.
        keepalive_timeout=settings.header_timeout_seconds,
    )

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()

    asyncio.run(serve_until_signalled(start, runner.cleanup, settings.shutdown))


if __name__ == "__main__":
    main()
