"""python -m services.scheduler: applies the campaign rules and releases due calls."""

from __future__ import annotations

import asyncio

import uvloop

from services.scheduler.app import create_app
from services.scheduler.settings import SchedulerSettings
from shared.observability import configure_logging
from shared.shutdown import serve_until_signalled


def main() -> None:
    settings = SchedulerSettings()
    configure_logging("scheduler", settings.log)
    uvloop.install()
    app = create_app(settings)
    asyncio.run(serve_until_signalled(app.start, app.stop, settings.shutdown))


if __name__ == "__main__":
    main()
