"""The ingest service with its request metrics and access lines turned off, for
`python -m bench ingest_instructions --metrics off`: what they cost per request is the
difference from the service as it runs. The route frames still read the clock when a request
starts and call their route's counts; the counting, the call results and the access lines do
nothing.

python -m bench.ingest_unmetered
"""

from __future__ import annotations

from typing import Any

from services.ingest import __main__ as ingest
from services.ingest.metrics import IngestMetrics, RouteMeter


def _nothing(*args: Any) -> None:
    return None


def main() -> None:
    RouteMeter.observe = _nothing  # type: ignore[method-assign,assignment]
    IngestMetrics.call_decided = _nothing  # type: ignore[method-assign,assignment]
    ingest.main()


if __name__ == "__main__":
    main()
