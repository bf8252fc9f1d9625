"""python -m services.ingest: serves the public API."""

from __future__ import annotations

import gc

import uvloop
from aiohttp import web

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.observability import configure_logging


async def _tune_collector(app: web.Application) -> None:
    """The collector's settings for a serving process, once the app's resources are up.

    What start-up made (phone metadata, compiled patterns, clients) lives as long as the
    process: the collector need not walk it again on every full collection. Young objects are
    collected every 50,000 allocations, not 700: under load the requests in flight keep
    thousands of objects alive, which the default walks again and again (3.5% of the call
    path's instructions). Cycles are rare; they wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


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
    )


if __name__ == "__main__":
    main()
