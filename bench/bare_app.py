"""The bare baseline of the API benchmarks: aiohttp on uvloop, the same route, the same body
parsing (orjson, an object with a `to`), a token check, and a 201 with a small JSON answer;
no validation, Redis or Kafka.

python -m bench.bare_app --port P --token T
"""

from __future__ import annotations

import argparse

import orjson
import uvloop
from aiohttp import web


def create_app(token: str) -> web.Application:
    expected = f"Bearer {token}"

    async def make_call(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        body = orjson.loads(await request.read())
        if not isinstance(body, dict) or not isinstance(body.get("to"), str):
            return web.Response(status=422)
        answer = {
            "campaign_call": {
                "id": "00000000-0000-0000-0000-000000000000",
                "campaign_id": request.match_info["campaign_id"],
                "to": body["to"],
                "status": "queued",
            }
        }
        return web.Response(body=orjson.dumps(answer), status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/campaigns/{campaign_id}/call", make_call)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(
        create_app(args.token), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
